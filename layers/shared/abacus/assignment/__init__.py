"""Which variant a user sees, stickily (sticky), and the live check's counters of first exposures
and metric events (live_check), which /assign and /events both add to, and the request /assign
takes (spec).

May import: core, storage, experiments, identity.
"""
