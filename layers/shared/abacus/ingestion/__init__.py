"""Events arriving: a batch validated, each event stored exactly once (ingest), and exposures
reported as events attributed to their experiments (attribution).

May import: core, storage, experiments, assignment.
"""
