// posthog-node in a group experiment, as a B2B server app: each member of each company reads the
// flag with its company in `groups` (the SDK reports $feature_flag_called with $groups), and some
// members capture a purchase with `groups`.
// Usage: node posthog_node_groups.mjs '{"host", "token", "key", "members": [{"id", "company", "buys"}], "timeoutMs"}'
// Prints {member id: variant} as JSON.
import { PostHog } from 'posthog-node'

const { host, token, key, members, timeoutMs } = JSON.parse(process.argv[2])
const client = new PostHog(token, {
  host, flushAt: 20, flushInterval: 0, requestTimeout: timeoutMs, featureFlagsRequestTimeoutMs: timeoutMs,
})
const failures = []
client.on('error', (error) => failures.push(String(error)))
const seen = {}
for (const { id, company, buys } of members) {
  const groups = { company }
  seen[id] = await client.getFeatureFlag(key, id, { groups })
  if (buys) {
    client.capture({ distinctId: id, event: 'node-company-purchase', groups, properties: { amount: 100 } })
  }
}
await client.shutdown()
if (failures.length) {
  console.error(failures.join('\n'))
  process.exit(1)
}
console.log(JSON.stringify(seen))
