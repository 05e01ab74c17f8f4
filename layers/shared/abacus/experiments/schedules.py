"""Scheduled launches and stops: a draft's `starts_at`, a running experiment's `ends_at`.

AutomationFunction calls run_due() every minute. It reads the due experiments from the sparse
by-due index (storage/experiments.py: one Query, never a Scan), reads each one whole, and launches
or stops it through definitions.apply_to, the code of a launch or stop by hand, so with the same
checks (a layer's free share, a passed `ends_at`); the history names `schedule` as who acted. A
refused action is not tried again every minute: the refusal goes into the history and the
schedule is cleared, which takes the experiment out of the index. At most `limit` experiments a
call; the rest are the next minute's, the earliest first.
"""

import logging
from datetime import datetime
from typing import Literal, TypedDict

from abacus.core.errors import AbacusError
from abacus.experiments import definitions, lifecycle
from abacus.storage import experiments

BY = "schedule"  # the history's `by` of what a schedule does
logger = logging.getLogger(__name__)
Action = Literal["launch", "stop"]
# The status each scheduled action starts from, and the definition's field that schedules it.
SCHEDULED: dict[str, tuple[Action, str]] = {
    lifecycle.DRAFT: ("launch", "starts_at"),
    lifecycle.RUNNING: ("stop", "ends_at"),
}


class Failure(TypedDict):
    project_id: str
    key: str
    action: Action
    reason: str


class DueSummary(TypedDict):
    """What one run did: the experiments launched and stopped ("project/key"), the refusals."""

    launched: list[str]
    stopped: list[str]
    failed: list[Failure]
    raced: int  # changed by someone else meanwhile: looked at again next run if still due
    errors: int  # failed otherwise (DynamoDB): tried again next run, logged


def run_due(now: datetime, limit: int = 25) -> DueSummary:
    """Launches the drafts whose starts_at is at or before `now` and stops the running experiments
    whose ends_at is, at most `limit` of them (the earliest first)."""
    summary: DueSummary = {"launched": [], "stopped": [], "failed": [], "raced": 0, "errors": 0}
    for project_id, key in experiments.due(now, limit):
        item = experiments.get(project_id, key)  # strongly consistent: the index may lag a change
        scheduled = SCHEDULED.get(item.status) if item else None
        moment = item.scheduled_action() if item else None  # a bandit's recompute: abacus.nightly.bandit_runs
        if item is None or scheduled is None or moment is None or moment > now:
            continue  # changed since it was indexed: launched or stopped by hand, rescheduled
        action, field = scheduled
        name = f"{project_id}/{key}"
        version = item.version
        try:
            definitions.apply_to(item, action, now, by=BY, why={"scheduled": moment.isoformat()})
        except definitions.Raced:
            summary["raced"] += 1
            continue
        except AbacusError as refused:  # its checks refused it: recorded, and not tried again
            reason = refused.message
            summary["failed"].append({"project_id": project_id, "key": key, "action": action, "reason": reason})
            logger.warning("scheduled %s of %s refused: %s", action, name, reason)
            _record_refusal(project_id, key, version, action, field, reason, now)
            continue
        except Exception:
            logger.exception("scheduled %s of %s failed: tried again next run", action, name)
            summary["errors"] += 1
            continue
        summary["launched" if action == "launch" else "stopped"].append(name)
    return summary


def _record_refusal(
    project_id: str, key: str, version: int | None, action: Action, field: str, reason: str, now: datetime
) -> None:
    """The refusal in the history, and the schedule cleared, on the experiment as it was read
    (apply_to changed the copy it refused); nothing when it changed meanwhile: the next run sees it."""
    item = experiments.get(project_id, key)
    if item is None or item.version != version:
        return
    try:
        definitions.clear_schedule(item, field, now, BY, f"{action}_refused", {"reason": reason})
    except definitions.Raced:
        return
