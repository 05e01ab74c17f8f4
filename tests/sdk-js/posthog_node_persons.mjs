// posthog-node joining a person's ids, as a server app does at sign-up: reads the anonymous id's
// flag, joins it to the user's id (identify with $anon_distinct_id, or alias), flushes, reads the
// user's flag, captures a purchase as the user.
// Usage: node posthog_node_persons.mjs '{"host", "token", "key", "people": [{"anon", "user", "join"}], "timeoutMs"}'
//   join: "identify", "alias" (alias({distinctId: user, alias: anon})) or "alias-anon"
//   (alias({distinctId: anon, alias: user})).
// Prints {"anon": {anon: variant}, "user": {user: variant}} as JSON.
import { PostHog } from 'posthog-node'

const { host, token, key, people, timeoutMs } = JSON.parse(process.argv[2])
const client = new PostHog(token, {
  host, flushAt: 20, flushInterval: 0, requestTimeout: timeoutMs, featureFlagsRequestTimeoutMs: timeoutMs,
})
const failures = []
client.on('error', (error) => failures.push(String(error)))
const anonVariants = {}
const userVariants = {}
for (const { anon, user, join } of people) {
  anonVariants[anon] = await client.getFeatureFlag(key, anon)
  if (join === 'identify') {
    client.identify({ distinctId: user, properties: { $anon_distinct_id: anon, email: `${user}@example.com` } })
  } else if (join === 'alias') {
    client.alias({ distinctId: user, alias: anon })
  } else {
    client.alias({ distinctId: anon, alias: user })
  }
  await client.flush()  // the join is made as the API stores the event
  userVariants[user] = await client.getFeatureFlag(key, user)
  client.capture({ distinctId: user, event: 'node-person-purchase', properties: { amount: 20 } })
}
await client.shutdown()
if (failures.length) {
  console.error(failures.join('\n'))
  process.exit(1)
}
console.log(JSON.stringify({ anon: anonVariants, user: userVariants }))
