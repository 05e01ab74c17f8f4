"""The nightly job: each experiment's snapshot from its exposed users' events.

Pure arithmetic, no storage: values (a user's events to their metric values), sums (per-variant
sufficient statistics that add up over pages; capping and breakdown_sums for percentile caps and
breakdowns), snapshot (merged sums to abacus.stats' inputs and the snapshot document;
breakdown_analysis for breakdowns), cutoffs (the calendar: cut-offs, snapshot dates, final
snapshots; no statistics). I/O: page (one page of users: their events read, their values written
back), runs (plan a run fanned out over SQS, work_queue: imports no statistics, so that
ResultsFunction, which plans, does not load scipy), computation (work and merge a run's units:
NightlyWorkerFunction).
abacus_local.nightly_inline runs the same steps in one process for the tests and benchmarks.

May import: core, storage, experiments, stats (values, sums and snapshot: no storage).
"""
