"""Attribution at ingest: tell the experiments an event concerns that something happened.

For each running experiment of the project: an exposure event (`$feature_flag_called` with
`$feature_flag` and `$feature_flag_response`, or `$exposure` with the same properties or with
`experiment` and `variant`) records the user's first exposure; an event one of its metrics uses
marks the assigned user's values out of date, for the nightly job to recompute. Both are
idempotent, so a redelivered batch changes nothing that is counted, and order does not matter: an
event stored before its user's exposure is found when the exposure makes the values out of date.
"""

from datetime import datetime

from abacus import assignment, experiments, keys, lifecycle
from abacus.storage import assignments
from abacus.storage.events import EventItem

EXPOSURE_EVENTS = ("$feature_flag_called", "$exposure")


def exposure_of(item: EventItem) -> tuple[str, str] | None:
    """(experiment key, variant) that an exposure event reports, or None."""
    if item.event not in EXPOSURE_EVENTS:
        return None
    properties = item.properties or {}
    key = properties.get("$feature_flag", properties.get("experiment"))
    variant = properties.get("$feature_flag_response", properties.get("variant"))
    if isinstance(key, str) and isinstance(variant, str):
        return key, variant
    return None


def attribute(project_id: str, items: list[EventItem]) -> dict[str, int]:
    """Records exposures and marks out-of-date values; returns how many of each were written."""
    running = {
        key: item
        for key, item in assignment.project_experiments(project_id).items()
        if item.status == lifecycle.RUNNING
    }
    specs = {key: experiments.definition(item) for key, item in running.items()}
    exposures: dict[tuple[str, str], tuple[str, datetime]] = {}
    activity: set[tuple[str, str]] = set()
    for item in items:
        reported = exposure_of(item)
        if reported and reported[0] in specs and reported[1] in {v.key for v in specs[reported[0]].variants}:
            pair = (reported[0], item.distinct_id)
            if pair not in exposures or item.timestamp < exposures[pair][1]:
                exposures[pair] = (reported[1], item.timestamp)
        for key, spec in specs.items():
            if item.event in {spec.primary_metric.event, *(m.event for m in spec.secondary_metrics)}:
                activity.add((key, item.distinct_id))
    recorded = sum(
        assignments.record_exposure(keys.experiment_id(project_id, key), distinct_id, variant, at)
        for (key, distinct_id), (variant, at) in exposures.items()
    )
    marked = sum(
        assignments.note_activity(keys.experiment_id(project_id, key), distinct_id) for key, distinct_id in activity
    )
    return {"exposures": recorded, "marked": marked}
