// posthog-node evaluating flags locally, from the definitions it polls with the project's flags
// key (personalApiKey), never asking /flags/ (onlyEvaluateLocally) and sending no events.
// Usage: node posthog_node_local.mjs '{"host", "token", "flagsKey", "keys": [...], "users": [[id, properties], ...], "timeoutMs"}'
// Prints {"answers": {user: {key: variant, false or null}}} as JSON.
import { PostHog } from 'posthog-node'

const { host, token, flagsKey, keys, users, timeoutMs } = JSON.parse(process.argv[2])
// timeoutMs: as long as the API may take (the SDK gives up on its polls after 10 s).
const client = new PostHog(token, {
  host, personalApiKey: flagsKey, requestTimeout: timeoutMs, featureFlagsRequestTimeoutMs: timeoutMs,
})
const failures = []
client.on('error', (error) => failures.push(String(error)))
await client.reloadFeatureFlags()
const answers = {}
for (const [user, personProperties] of users) {
  answers[user] = {}
  for (const key of keys) {
    const value = await client.getFeatureFlag(key, user, {
      personProperties,
      onlyEvaluateLocally: true,
      sendFeatureFlagEvents: false,
    })
    answers[user][key] = value === undefined ? null : value
  }
}
await client.shutdown()
if (failures.length) {
  console.error(failures.join('\n'))
  process.exit(1)
}
console.log(JSON.stringify({ answers }))
