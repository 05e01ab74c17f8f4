"""Events arriving: a batch validated, each event stored exactly once (ingest), and exposures
reported as events attributed to their experiments (attribution), and the events' schemas (spec).

May import: core, storage, experiments, assignment, identity.
"""
