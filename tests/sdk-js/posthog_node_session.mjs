// posthog-node, as a server app uses it, against an Abacus API: reads each user's flag (the SDK
// reports the use as $feature_flag_called), captures a purchase for the buyers, flushes.
// Usage: node posthog_node_session.mjs '{"host", "token", "key", "users": [...], "buyers": [...], "timeoutMs"}'
// Prints {"variants": {user: variant or false}} as JSON.
import { PostHog } from 'posthog-node'

const { host, token, key, users, buyers, personProperties, timeoutMs } = JSON.parse(process.argv[2])
// timeoutMs: as long as the API may take (the SDK gives up on /flags/ after 3 s, on the rest after 10 s).
const client = new PostHog(token, {
  host, flushAt: 5, flushInterval: 0, requestTimeout: timeoutMs, featureFlagsRequestTimeoutMs: timeoutMs,
})
const failures = []
client.on('error', (error) => failures.push(String(error)))
const variants = {}
for (const user of users) {
  variants[user] = await client.getFeatureFlag(key, user, { personProperties })
  if (buyers.includes(user)) client.capture({ distinctId: user, event: 'node-purchase', properties: { amount: 20 } })
}
await client.shutdown()
if (failures.length) {
  console.error(failures.join('\n'))
  process.exit(1)
}
console.log(JSON.stringify({ variants }))
