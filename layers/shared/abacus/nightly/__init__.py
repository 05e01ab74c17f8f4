"""The nightly job: a run of one experiment is planned, fanned out on SQS in units of work, worked
page by page and merged into that day's snapshot (runs, work_queue); the arithmetic from events to
users' values, to mergeable sums, to the statistics and the snapshot; percentile caps (capping) and
breakdowns (breakdown_sums, breakdown_analysis).

May import: core, storage, experiments, stats.
"""
