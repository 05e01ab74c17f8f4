"""Attribution at ingest: exposures reported as events.

For each launched experiment of the project (running, or complete: an exposure from its run may
arrive after the stop), an exposure event (`$feature_flag_called` with `$feature_flag` and
`$feature_flag_response`, or `$exposure` with the same properties or with `experiment` and
`variant`) records the user's first exposure: the earliest, whatever order they arrive in, so a
redelivered batch changes nothing. What exposures.py refuses (a user with an override, a time
before the launch or after the stop) is no exposure, and counted as refused. Other events need
no write here: the nightly job finds the users who sent events since its last run through the
events table's by-receipt index (see nightly/page.py).
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import NamedTuple

from abacus.assignment.live_check import Recorded
from abacus.core import breakdowns
from abacus.experiments import definitions, exposures, holdouts, lifecycle
from abacus.experiments.spec import ExperimentFields
from abacus.storage import assignments
from abacus.storage.events import EventItem
from abacus.storage.experiments import ExperimentItem

EXPOSURE_EVENTS = ("$feature_flag_called", "$exposure")
PARALLEL_UPDATES = 16
# Archived experiments take nothing any more; drafts have not started.
LAUNCHED = (lifecycle.RUNNING, lifecycle.COMPLETE)


class FirstExposure(NamedTuple):
    variant: str
    at: datetime
    breakdown_values: list[breakdowns.Value] | None  # None: the experiment has no breakdowns


type FirstExposures = dict[tuple[str, str], FirstExposure]


class Attribution(NamedTuple):
    moved: int  # first exposures recorded or moved earlier
    refused: Counter[str]  # exposure events that are none, by exposures.py's reason
    # (experiment key, distinct_id): the exposure this request stored, the user's first or an earlier one
    recorded: dict[tuple[str, str], "Recorded"]
    launched: dict[str, ExperimentItem]  # the project's launched experiments, by key


def exposure_of(item: EventItem) -> tuple[str, str] | None:
    """(experiment key, variant) that an exposure event reports, or None."""
    if item.event not in EXPOSURE_EVENTS:
        return None
    properties = item.event_properties()
    key = properties.get("$feature_flag", properties.get("experiment"))
    variant = properties.get("$feature_flag_response", properties.get("variant"))
    if isinstance(key, str) and isinstance(variant, str):
        return key, variant
    return None


def attribute(project_id: str, items: list[EventItem]) -> Attribution:
    """Records the exposures the events report; says how many moved a first exposure and how
    many were refused."""
    launched = {
        key: (item, definitions.definition(item))
        for key, item in definitions.project_experiments(project_id).items()
        if item.status in LAUNCHED
    }
    firsts, refused = _first_exposures(launched, items)
    items_of = {key: item for key, (item, _) in launched.items()}
    if not firsts:
        return Attribution(0, refused, {}, items_of)

    def record(pair: tuple[tuple[str, str], FirstExposure]) -> str | None:
        (key, distinct_id), exposure = pair
        return assignments.record_exposure(launched[key][0].assignment_partition(distinct_id), distinct_id, *exposure)

    # One small UpdateItem per reported exposure: sent in parallel, as each waits on the network.
    with ThreadPoolExecutor(max_workers=PARALLEL_UPDATES) as pool:
        outcomes = list(pool.map(record, firsts.items()))
    recorded = {
        pair: Recorded(exposure.variant, exposure.at, outcome == assignments.FIRST)
        for (pair, exposure), outcome in zip(firsts.items(), outcomes, strict=True)
        if outcome is not None
    }
    return Attribution(len(recorded), refused, recorded, items_of)


def _first_exposures(
    launched: dict[str, tuple[ExperimentItem, ExperimentFields]], items: list[EventItem]
) -> tuple[FirstExposures, Counter[str]]:
    """{(experiment key, distinct_id): (variant, time, breakdown values)}: each user's earliest
    exposure the events report to a launched experiment, of one of its variants, that exposures.py
    does not refuse; and how many it refused, by reason."""
    firsts: FirstExposures = {}
    refused: Counter[str] = Counter()
    items_of = [item for item, _ in launched.values()]
    covering = {key: holdouts.covering(item, items_of) for key, (item, _) in launched.items()}
    for item in items:
        reported = exposure_of(item)
        if reported is None or reported[0] not in launched:
            continue
        key, variant = reported
        experiment, spec = launched[key]
        if variant not in {v.key for v in spec.variants}:
            continue
        reason = exposures.refusal(experiment, spec, item.distinct_id, item.timestamp, covering[key])
        if reason:
            refused[reason] += 1
        else:
            _keep_first(firsts, key, item, variant, spec)
        if reason in (None, exposures.HELD_OUT):  # who saw an experiment a holdout covers: in its results
            for holdout in covering[key]:
                if exposures.refusal(holdout, launched[holdout.key][1], item.distinct_id, item.timestamp) is None:
                    _keep_first(firsts, holdout.key, item, holdouts.variant_in(holdout, item.distinct_id), None)
    return firsts, refused


def _keep_first(firsts: FirstExposures, key: str, item: EventItem, variant: str, spec: ExperimentFields | None) -> None:
    """The event's exposure, if it is the user's earliest of the experiment in this request."""
    pair = (key, item.distinct_id)
    if pair not in firsts or item.timestamp < firsts[pair].at:
        values = breakdowns.values_of(spec.breakdowns, item.event_properties()) if spec and spec.breakdowns else None
        firsts[pair] = FirstExposure(variant, item.timestamp, values)
