"""Attribution at ingest: exposures reported as events.

For each running experiment of the project, an exposure event (`$feature_flag_called` with
`$feature_flag` and `$feature_flag_response`, or `$exposure` with the same properties or with
`experiment` and `variant`) records the user's first exposure: the earliest, whatever order they
arrive in, so a redelivered batch changes nothing; what exposures.py refuses (a user with an
override) is no exposure. Other events need no write here: the nightly
job finds the users who sent events since its last run through the events table's by-receipt
index (see nightly.py).
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from abacus import assignment, experiments, exposures, keys, lifecycle
from abacus.schemas import ExperimentFields
from abacus.storage import assignments
from abacus.storage.events import EventItem

EXPOSURE_EVENTS = ("$feature_flag_called", "$exposure")
PARALLEL_UPDATES = 16


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


def attribute(project_id: str, items: list[EventItem]) -> int:
    """Records the exposures the events report; returns how many moved a first exposure."""
    running = {
        key: item
        for key, item in assignment.project_experiments(project_id).items()
        if item.status == lifecycle.RUNNING
    }
    specs = {key: experiments.definition(item) for key, item in running.items()}
    firsts = _first_exposures(specs, items)
    if not firsts:
        return 0
    # One small UpdateItem per reported exposure: sent in parallel, as each waits on the network.
    with ThreadPoolExecutor(max_workers=PARALLEL_UPDATES) as pool:
        return sum(
            pool.map(
                lambda pair: assignments.record_exposure(
                    keys.experiment_id(project_id, pair[0][0]), pair[0][1], pair[1][0], pair[1][1]
                ),
                firsts.items(),
            )
        )


def _first_exposures(
    specs: dict[str, ExperimentFields], items: list[EventItem]
) -> dict[tuple[str, str], tuple[str, datetime]]:
    """{(experiment key, distinct_id): (variant, time)}: each user's earliest exposure the events
    report to an experiment in `specs`, of one of its variants, that exposures.py does not refuse."""
    firsts: dict[tuple[str, str], tuple[str, datetime]] = {}
    for item in items:
        reported = exposure_of(item)
        if reported is None or reported[0] not in specs:
            continue
        key, variant = reported
        spec = specs[key]
        if variant not in {v.key for v in spec.variants} or exposures.refusal(spec, item.distinct_id):
            continue
        pair = (key, item.distinct_id)
        if pair not in firsts or item.timestamp < firsts[pair][1]:
            firsts[pair] = (variant, item.timestamp)
    return firsts
