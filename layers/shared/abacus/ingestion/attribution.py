"""Attribution at ingest: exposures reported as events.

For each launched experiment of the project (running, or complete: an exposure from its run may
arrive after the stop), an exposure event (`$feature_flag_called` with `$feature_flag` and
`$feature_flag_response`, or `$exposure` with the same properties or with `experiment` and
`variant`) records the user's first exposure: the earliest, whatever order they arrive in, so a
redelivered batch changes nothing. The exposure is the person's (identity/): recorded under the
root id of the event's distinct_id (the batch's senders' persons, cached per environment, else one
BatchGetItem of the persons table per 100 ids), then settled (a strongly consistent read of the
roots written under) in case a join moved that person meanwhile; in a group experiment, the
group's (experiments/units.py). What exposures.py refuses (a user with an override, a time before
the launch or after the stop) is no exposure, and counted as refused. Other events need no write
here: the nightly job finds the users who sent events since its last run through the events
table's by-receipt index (see nightly/page.py).

Refused too, each with its reason, rather than dropped: an exposure to a variant the experiment
does not have (UNKNOWN_VARIANT), to a draft (DRAFT) or an archived experiment (ARCHIVED), and a
`$exposure` naming no experiment of the project (UNKNOWN_EXPERIMENT). A `$feature_flag_called`
naming none is no refusal: PostHog's SDKs send it for every flag they evaluate, ordinary feature
flags (served by another PostHog, or the app's own) included, which are none of Abacus's business;
nor is one whose response is no variant (`false`: the user is not in the rollout).
"""

from collections import Counter
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import NamedTuple

from abacus.assignment.live_check import UNKNOWN_EXPERIMENT, Recorded
from abacus.core import breakdowns
from abacus.experiments import definitions, exposures, holdouts, lifecycle, units
from abacus.experiments.spec import ExperimentFields
from abacus.identity import joins
from abacus.storage import assignments
from abacus.storage.events import EventItem
from abacus.storage.experiments import ExperimentItem

FLAG_CALLED, EXPOSURE = "$feature_flag_called", "$exposure"
EXPOSURE_EVENTS = (FLAG_CALLED, EXPOSURE)
NO_GROUP = "no_group"  # the refusal of a group experiment's exposure that names no group of its type
# The refusals of exposures to no launched experiment's variant (the others are exposures.py's;
# UNKNOWN_EXPERIMENT is the live check's, which counts it per project).
UNKNOWN_VARIANT, DRAFT, ARCHIVED = "unknown_variant", lifecycle.DRAFT, lifecycle.ARCHIVED
REASONS = (
    UNKNOWN_EXPERIMENT, UNKNOWN_VARIANT, DRAFT, ARCHIVED, NO_GROUP,
    exposures.OVERRIDE, exposures.BEFORE_LAUNCH, exposures.AFTER_STOP, exposures.HELD_OUT,
)  # fmt: skip
PARALLEL_UPDATES = 16
# Archived experiments take nothing any more; drafts have not started.
LAUNCHED = (lifecycle.RUNNING, lifecycle.COMPLETE)


class FirstExposure(NamedTuple):
    variant: str
    at: datetime
    breakdown_values: list[breakdowns.Value] | None  # None: the experiment has no breakdowns
    # Reported by another id of the person than their root (one joined to it): the variant that id
    # was shown counts as at a join, first exposure winning (assignments.record_joined_exposure).
    by_joined_id: bool = False
    seen: frozenset[str] = frozenset()  # every variant the person's joined ids reported here


type FirstExposures = dict[tuple[str, str], FirstExposure]


class Refusals:
    """Exposure events that are none, by reason: of all the request's events (its answer, which
    counts a resent event again, as it counts it as a duplicate), and of its new events only by
    experiment key and reason (the live check's counters, to which a redelivery adds nothing)."""

    def __init__(self, new: Collection[tuple[str, str]]) -> None:
        self.by_reason: Counter[str] = Counter()
        self.new_by_key: Counter[tuple[str, str]] = Counter()  # (experiment key, reason)
        self._new = new

    def add(self, item: EventItem, key: str, reason: str) -> None:
        self.by_reason[reason] += 1
        if (item.user_id, item.uuid) in self._new:
            self.new_by_key[(key, reason)] += 1


class Attribution(NamedTuple):
    moved: int  # first exposures recorded or moved earlier
    refused: Refusals  # exposure events that are none, by reason
    # (experiment key, distinct_id): the exposure this request stored, the user's first or an earlier one
    recorded: dict[tuple[str, str], "Recorded"]
    launched: dict[str, ExperimentItem]  # the project's launched experiments, by key
    roots: dict[str, str]  # each distinct_id of the events: its person's root id
    experiments: dict[str, ExperimentItem]  # all the project's experiments, by key (drafts too)


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


def attribute(
    project_id: str, items: list[EventItem], now: datetime, new: Collection[tuple[str, str]] = ()
) -> Attribution:
    """Records the exposures the events report; says how many moved a first exposure and how
    many were refused, and why (`new`: the (user_id, uuid) of the events stored now)."""
    experiments = definitions.project_experiments(project_id)
    launched = {
        key: (item, definitions.definition(item)) for key, item in experiments.items() if item.status in LAUNCHED
    }
    roots = joins.roots(project_id, {item.distinct_id for item in items})
    refused = Refusals(new)
    firsts = _first_exposures(launched, experiments, items, roots, refused)
    items_of = {key: item for key, (item, _) in launched.items()}
    if not firsts:
        return Attribution(0, refused, {}, items_of, roots, experiments)

    def record(pair: tuple[tuple[str, str], FirstExposure]) -> str | None:
        (key, root), exposure = pair
        partition = launched[key][0].assignment_partition(root)
        variant, at, values = exposure.variant, exposure.at, exposure.breakdown_values
        if exposure.by_joined_id:
            return assignments.record_joined_exposure(partition, root, variant, at, values, exposure.seen)
        return assignments.record_exposure(partition, root, variant, at, values)

    # One small UpdateItem per reported exposure: sent in parallel, as each waits on the network.
    with ThreadPoolExecutor(max_workers=PARALLEL_UPDATES) as pool:
        outcomes = list(pool.map(record, firsts.items()))
    persons_exposed = [(items_of[key], unit) for key, unit in firsts if launched[key][1].group_type is None]
    joins.settle(project_id, persons_exposed, now)
    recorded = {
        pair: Recorded(exposure.variant, exposure.at, outcome == assignments.FIRST)
        for (pair, exposure), outcome in zip(firsts.items(), outcomes, strict=True)
        if outcome is not None
    }
    return Attribution(len(recorded), refused, recorded, items_of, roots, experiments)


def _first_exposures(
    launched: dict[str, tuple[ExperimentItem, ExperimentFields]],
    experiments: dict[str, ExperimentItem],
    items: list[EventItem],
    roots: dict[str, str],
    refused: Refusals,
) -> FirstExposures:
    """{(experiment key, root id): (variant, time, breakdown values)}: each person's earliest
    exposure the events report to a launched experiment, of one of its variants, that exposures.py
    does not refuse; the others added to `refused`, by reason."""
    firsts: FirstExposures = {}
    items_of = [item for item, _ in launched.values()]
    covering = {key: holdouts.covering(item, items_of) for key, (item, _) in launched.items()}
    for item in items:
        reported = _reported(item, launched, experiments, refused)
        if reported is None:
            continue
        key, variant = reported
        experiment, spec = launched[key]
        root = roots[item.distinct_id]
        unit = units.unit_of(spec, root, item.event_properties().get("$groups"))
        if unit is None:
            refused.add(item, key, NO_GROUP)  # a group experiment's exposure without a group of its type
            continue
        reason = exposures.refusal(experiment, spec, item.distinct_id, item.timestamp, covering[key], unit.hashed)
        if reason:
            refused.add(item, key, reason)
        else:
            _keep_first(firsts, key, item, unit.stored_as, variant, spec)
        if reason in (None, exposures.HELD_OUT):  # who saw an experiment a holdout covers: in its results
            for holdout in covering[key]:
                held = launched[holdout.key][1]
                if exposures.refusal(holdout, held, item.distinct_id, item.timestamp, (), root) is None:
                    _keep_first(firsts, holdout.key, item, root, holdouts.variant_in(holdout, root), None)
    return firsts


def _reported(
    item: EventItem,
    launched: dict[str, tuple[ExperimentItem, ExperimentFields]],
    experiments: dict[str, ExperimentItem],
    refused: Refusals,
) -> tuple[str, str] | None:
    """(experiment key, variant) of an exposure to one of the launched experiments' variants; an
    exposure to anything else is added to `refused` with its reason, unless it is none of
    Abacus's (an ordinary flag's `$feature_flag_called`)."""
    reported = exposure_of(item)
    if reported is None:
        return None
    key, variant = reported
    if key in launched:
        if variant in {v.key for v in launched[key][1].variants}:
            return reported
        refused.add(item, key, UNKNOWN_VARIANT)
    elif (experiment := experiments.get(key)) is not None:
        refused.add(item, key, DRAFT if experiment.status == lifecycle.DRAFT else ARCHIVED)
    elif item.event == EXPOSURE:
        refused.add(item, key, UNKNOWN_EXPERIMENT)
    return None


def _keep_first(
    firsts: FirstExposures, key: str, item: EventItem, root: str, variant: str, spec: ExperimentFields | None
) -> None:
    """The event's exposure, if it is the person's earliest of the experiment in this request (a
    person experiment's `spec`: None for a holdout's, whose variant is its hash's)."""
    pair = (key, root)
    by_joined_id = spec is not None and spec.group_type is None and item.distinct_id != root
    earlier = firsts.get(pair)
    seen = (earlier.seen if earlier else frozenset()) | ({variant} if by_joined_id else set())
    if earlier is None or item.timestamp < earlier.at:
        values = breakdowns.values_of(spec.breakdowns, item.event_properties()) if spec and spec.breakdowns else None
        firsts[pair] = FirstExposure(variant, item.timestamp, values, by_joined_id, seen)
    else:
        firsts[pair] = earlier._replace(seen=seen)
