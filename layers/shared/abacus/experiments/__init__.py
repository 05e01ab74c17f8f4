"""Experiments themselves: their definitions (create, change, launch, stop, ship, archive,
describe), the statuses and what each lets change (lifecycle), targeting, experiment layers
(mutually exclusive experiments), holdouts, plans (exposures per variant), what counts as an
exposure, and the request schemas an experiment is written in (spec: its fields, create, patch,
launch and ship; metrics_spec: metrics, caps, funnels, filters, guardrails, targeting groups).

May import: core, storage.
"""
