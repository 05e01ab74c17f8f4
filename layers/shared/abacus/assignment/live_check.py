"""The live check (the console's Implementation page): from launch on, per variant, the first
exposures, the metric events exposed users sent after their exposure, and when the last of them
arrived; the day-one signal that the app really calls the flag and sends its events.

Counted as requests arrive, into sharded counters (storage/live_counts.py): /assign adds a first
exposure it records, /events the first exposures its exposure events record and its new metric
events (a resent event is not counted again) of users exposed by then (one BatchGetItem of their
assignments a request). Reading them is one BatchGetItem, whatever the traffic. A counter that
cannot be written is logged and left out: the live check never fails a request, and the results
are counted by the nightly job from the events themselves.

It also says what would otherwise go unseen: each metric event not received since the launch,
with the closest names received (experiments/received_events.py); the exposure events refused,
by reason, of a draft or running experiment (one UpdateItem a request and experiment with any: a
complete or archived one's are expected, its flag still served, and not counted here); and the
project's `$exposure` events naming no experiment of it, with the keys they named (at most 64,
storage/event_names.py).
"""

import difflib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import NamedTuple

from aws_lambda_powertools import Logger
from pynamodb.exceptions import PynamoDBException

from abacus.core.documents import MetricWarning
from abacus.experiments import bandit_weights, definitions, lifecycle, received_events, units
from abacus.storage import assignments, event_names, live_counts
from abacus.storage.events import EventItem
from abacus.storage.experiments import ExperimentItem
from abacus.storage.live_counts import Tally

logger = Logger(child=True)


class Recorded(NamedTuple):
    variant: str
    at: datetime  # the user's first exposure now
    first: bool  # the user had none before (else it moved earlier)


type Counts = dict[tuple[str, str], list[int]]  # (experiment key, variant): [first exposures, metric events]


class Counter:
    """A request's tallies, per running experiment and variant, written once at the end."""

    def __init__(self, launched: dict[str, ExperimentItem]) -> None:
        self.launched = launched
        self.counts: Counts = defaultdict(lambda: [0, 0])

    def exposed(self, key: str, variant: str) -> None:
        self.counts[(key, variant)][0] += 1

    def metric_event(self, key: str, variant: str) -> None:
        self.counts[(key, variant)][1] += 1

    def write(self, now: datetime) -> None:
        for (key, variant), (exposures, events) in self.counts.items():
            item = self.launched[key]
            if item.started_at is None:
                continue
            experiment_id = item.experiment_id
            try:
                live_counts.add(experiment_id, item.started_at, variant, Tally(exposures, events, None), now)
            except PynamoDBException as error:
                logger.warning("live check not counted", extra={"experiment": key, "error": type(error).__name__})


def metric_events(
    items: Iterable[EventItem], running: dict[str, ExperimentItem], roots: Mapping[str, str]
) -> dict[tuple[str, str], list[EventItem]]:
    """{(experiment key, unit): the unit's events of a metric of that experiment}: the unit is the
    sender's person (their root id), or in a group experiment the group the event names."""
    specs = {key: definitions.definition(item) for key, item in running.items()}
    names = {key: {name for metric in s.all_metrics() for name in metric.event_names()} for key, s in specs.items()}
    found: dict[tuple[str, str], list[EventItem]] = defaultdict(list)
    for event in items:
        for key, wanted in names.items():
            if event.event in wanted:
                root = roots.get(event.distinct_id, event.distinct_id)
                unit = units.unit_of(specs[key], root, event.event_properties().get("$groups"))
                if unit is not None:
                    found[(key, unit.stored_as)].append(event)
    return found


def count_metric_events(
    counter: Counter,
    items: list[EventItem],
    running: dict[str, ExperimentItem],
    recorded: Mapping[tuple[str, str], Recorded],
    roots: Mapping[str, str],
) -> None:
    """Adds the metric events sent by persons exposed before them (under any of their ids: `roots`
    gives each distinct_id's person): the exposure this request recorded, else the stored one
    (the others' assignments read in one BatchGetItem per 100 persons, strongly consistent)."""
    found = metric_events(items, running, roots)
    unknown = [pair for pair in found if pair not in recorded]
    stored = assignments.exposures_of([(running[key].assignment_partition(user), user) for key, user in unknown])
    for (key, distinct_id), events in found.items():
        exposure = recorded.get((key, distinct_id))
        if exposure is not None:
            variant, exposed_at = exposure.variant, exposure.at
        else:
            assignment = stored.get((running[key].assignment_partition(distinct_id), distinct_id))
            if assignment is None or assignment.exposed_at is None:
                continue
            variant, exposed_at = assignment.variant, assignment.exposed_at
        for event in events:
            if event.timestamp >= exposed_at:
                counter.metric_event(key, variant)


def record_first_exposure(item: ExperimentItem, variant: str, now: datetime) -> None:
    """A first exposure /assign recorded."""
    counter = Counter({item.key: item})
    counter.exposed(item.key, variant)
    counter.write(now)


def after_ingest(
    launched: dict[str, ExperimentItem],
    new: list[EventItem],
    recorded: Mapping[tuple[str, str], Recorded],
    now: datetime,
    roots: Mapping[str, str],
) -> None:
    """Counts an /events request: the first exposures its exposure events recorded, and its new
    events (not those resent) of the launched experiments' metrics from exposed persons."""
    counter = Counter(launched)
    for (key, _), exposure in recorded.items():
        if exposure.first:
            counter.exposed(key, exposure.variant)
    try:
        count_metric_events(counter, new, launched, recorded, roots)
    except PynamoDBException as error:
        logger.warning("live check: metric events not counted", extra={"error": type(error).__name__})
    counter.write(now)


# Counted for the live check: a draft's (sent too early) and a running experiment's.
COUNTS_REFUSALS = (lifecycle.DRAFT, lifecycle.RUNNING)
UNKNOWN_EXPERIMENT = "unknown_experiment"  # attribution's reason: counted per project
# Each reason in words, with what to do about it.
REFUSAL_WORDS = {
    "unknown_variant": "named a variant this experiment does not have (check the variant keys the app sends)",
    "draft": "arrived while this experiment was a draft (launch it first: nothing counts before)",
    "archived": "named this experiment once archived",
    "before_launch": "were stamped before the launch",
    "after_stop": "were stamped after the stop",
    "override": "were of users with an override (previews: never counted)",
    "held_out": "were of users a holdout holds out (they count in the holdout's results)",
    "no_group": "named no group of this experiment's group type in `$groups`",
}
MAX_UNKNOWN_KEYS_SHOWN = 10


def count_refusals(
    project_id: str, refused: Mapping[tuple[str, str], int], experiments: Mapping[str, ExperimentItem], now: datetime
) -> None:
    """Adds a request's refused exposure events ({(experiment key, reason): count}, of its new
    events): a draft's or a running experiment's to its counters, those naming no experiment of
    the project to the project's; one UpdateItem each."""
    by_scope: dict[str, dict[str, int]] = defaultdict(dict)
    for (key, reason), count in refused.items():
        if reason == UNKNOWN_EXPERIMENT:
            scope = project_id
        elif (item := experiments.get(key)) is not None and item.status in COUNTS_REFUSALS:
            scope = live_counts.run_scope(item.experiment_id, item.started_at)
        else:
            continue
        by_scope[scope][reason] = by_scope[scope].get(reason, 0) + count
    for scope, counts in by_scope.items():
        try:
            live_counts.add_refused(scope, counts, now)
        except PynamoDBException as error:
            logger.warning("live check: refused exposures not counted", extra={"error": type(error).__name__})


class VariantLive(NamedTuple):
    key: str
    weight: int
    exposures: int
    metric_events: int


class Refused(NamedTuple):
    reason: str
    events: int
    words: str


class UnknownKey(NamedTuple):
    key: str
    last_seen: date
    close: bool  # close to this experiment's key: a typo of it?


class LiveCheck(NamedTuple):
    variants: list[VariantLive]
    last_received_at: datetime | None
    read_at: datetime
    launched: bool = True  # False: a draft (no counters yet; what it refused, and the project's)
    warnings: tuple[MetricWarning, ...] = ()  # metric events not received since the launch
    refused: tuple[Refused, ...] = ()  # this experiment's refused exposure events (this run; a draft's)
    unknown_experiments: int = 0  # the project's `$exposure` events naming no experiment of it
    unknown_keys: tuple[UnknownKey, ...] = ()  # the keys they named, close to this one's first
    # A bandit that has moved its shares: its counts since the launch fit no one set of weights
    # (its results check the split against each phase's shares).
    shares_moved: bool = False


def read(item: ExperimentItem, now: datetime) -> LiveCheck:
    """The counters so far (a draft: none but its refusals), the warnings, and the refusals:
    four BatchGetItems (counters, refusals, event names, unknown keys), whatever the traffic."""
    spec = definitions.definition(item)
    scope = live_counts.run_scope(item.experiment_id, item.started_at)
    refusals = live_counts.read_refused([scope, item.project_id])
    refused = tuple(
        Refused(reason, count, REFUSAL_WORDS.get(reason, reason)) for reason, count in sorted(refusals[scope].items())
    )
    unknown_count = refusals[item.project_id].get(UNKNOWN_EXPERIMENT, 0)
    unknown_keys = _unknown_keys(item.key, event_names.read(item.project_id, event_names.UNKNOWN_EXPERIMENTS))
    if item.started_at is None:
        rows = [VariantLive(v.key, v.weight, 0, 0) for v in spec.variants]
        return LiveCheck(rows, None, now, False, (), refused, unknown_count, unknown_keys)
    warnings = tuple(received_events.experiment_warnings(item))
    tallies = live_counts.read(item.experiment_id, item.started_at, [v.key for v in spec.variants])
    rows = [VariantLive(v.key, v.weight, tallies[v.key].exposures, tallies[v.key].metric_events) for v in spec.variants]
    received = [tally.last_received_at for tally in tallies.values() if tally.last_received_at]
    last = datetime.fromtimestamp(max(received), tz=now.tzinfo) if received else None
    moved = bandit_weights.may_differ_locally(item, spec)
    return LiveCheck(rows, last, now, True, warnings, refused, unknown_count, unknown_keys, moved)


def _unknown_keys(key: str, seen: Mapping[str, event_names.Seen]) -> tuple[UnknownKey, ...]:
    """The unknown keys to show: those close to the experiment's key first, then the latest seen."""
    close = set(difflib.get_close_matches(key, list(seen), n=len(seen) or 1, cutoff=received_events.CLOSENESS))
    found = [UnknownKey(name, last, name in close) for name, (_, last) in seen.items()]
    found.sort(key=lambda unknown: (not unknown.close, -unknown.last_seen.toordinal(), unknown.key))
    return tuple(found[:MAX_UNKNOWN_KEYS_SHOWN])
