"""The foundations every package stands on: table keys and the patterns of user-given keys,
numbers (JSON in and out, the bounds on values), settings read from the environment, the API's
errors, PostHog-compatible hashing, the TTL cache, retention (when a value can no longer change),
planning and the always-valid test's mixture (standard library only, shared with the stats layer),
breakdown values, the event properties never stored, timeouts, and the JSON documents
that cross modules as TypedDicts (documents: analyses, snapshots, results; answers: the API's other
answers).

May import: the standard library and pydantic; no other package of Abacus. AssignFunction and
IngestFunction import it on every cold start: keep it light.
"""
