"""Results as the API, the console and the operator read them: snapshots by date, the daily
history, recomputing now (snapshots), the signed keys of console sessions and report links
(signing), and the text and HTML report (report).

May import: core, storage, experiments, nightly, stats.
"""
