"""A running bandit's recomputes on its own schedule (issue 34): every `reweight_every_hours`
(1 to 24), besides the nightly run, its results are computed up to now through the nightly job's
queue, and the worker reweights it from the snapshot (reweight.py).

AutomationFunction calls start_due() every minute, after the scheduled launches and stops. A
running bandit sits in the experiments' by-due index at its next recompute
(storage.experiments.ExperimentItem.bandit_run_due), so finding the due ones is the same one
Query. Each due bandit's next time is saved first, on the experiment's version: two invocations
never both start it, and a run that cannot be queued is tried again at the next time rather than
every minute. Imports no statistics."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from abacus.experiments import bandit_weights, definitions
from abacus.nightly import runs, work_queue
from abacus.storage import experiments
from abacus.storage.experiments import ChangedMeanwhile

logger = logging.getLogger(__name__)


def start_due(now: datetime, send: Callable[[list[dict[str, Any]]], None], limit: int = 25) -> list[str]:
    """Starts the recompute of each running bandit due by `now` (at most `limit` of the earliest
    due experiments are looked at); "project/key" of those started."""
    started = []
    for project_id, key in experiments.due(now, limit):
        item = experiments.get(project_id, key)  # strongly consistent: the index may lag a change
        due = item.bandit_run_due() if item is not None else None
        if item is None or due is None or due > now:
            continue
        allocation = bandit_weights.allocation_of(definitions.definition(item))
        if allocation is None:
            continue
        following = now + timedelta(hours=allocation.reweight_every_hours)
        item.bandit = {**(item.bandit or {}), "next_run": int(following.timestamp())}
        try:
            experiments.save(item)
        except ChangedMeanwhile:
            continue  # changed meanwhile (another invocation took it, a change by hand): seen next minute
        try:
            send([unit.to_json() for unit in runs.plan(item, now, now)])
        except work_queue.NotSent:  # nothing waits on the run: its header expires with the others
            logger.exception("bandit recompute not queued: tried again at its next time", extra={"key": key})
            continue
        started.append(f"{project_id}/{key}")
    return started
