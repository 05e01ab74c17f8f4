"""PostHog's wire formats and nothing else: capture payloads turned into Abacus's events (capture),
the feature-flag API's requests and answers (flags), remote config (config), the local
evaluation document PostHog's server SDKs poll (local_evaluation), and posthog-js's browser
bundles (scripts).

May import: core, storage, experiments, assignment, ingestion.
"""
