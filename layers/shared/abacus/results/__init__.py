"""Results as the API, the console and the operator read them: snapshots by date, the daily
history, recomputing now (snapshots), the signed keys of console sessions and report links
(signing), the results in one statement (decision_card: pure, also the alerts'), and the report
as a person reads it, in a terminal or a page (report/).

May import: core, storage, experiments, nightly, stats.
"""
