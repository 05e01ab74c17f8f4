"""The live check (the console's Implementation page): from launch on, per variant, the first
exposures, the metric events exposed users sent after their exposure, and when the last of them
arrived; the day-one signal that the app really calls the flag and sends its events.

Counted as requests arrive, into sharded counters (storage/live_counts.py): /assign adds a first
exposure it records, /events the first exposures its exposure events record and its new metric
events (a resent event is not counted again) of users exposed by then (one BatchGetItem of their
assignments a request). Reading them is one BatchGetItem, whatever the traffic. A counter that
cannot be written is logged and left out: the live check never fails a request, and the results
are counted by the nightly job from the events themselves.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

from aws_lambda_powertools import Logger
from pynamodb.exceptions import PynamoDBException

from abacus.core import keys
from abacus.experiments import definitions, units
from abacus.storage import assignments, live_counts
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
            experiment_id = keys.experiment_id(item.project_id, key)
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


class VariantLive(NamedTuple):
    key: str
    weight: int
    exposures: int
    metric_events: int


class LiveCheck(NamedTuple):
    variants: list[VariantLive]
    last_received_at: datetime | None
    read_at: datetime


def read(item: ExperimentItem, now: datetime) -> LiveCheck | None:
    """The counters so far (None before the launch)."""
    if item.started_at is None:
        return None
    spec = definitions.definition(item)
    tallies = live_counts.read(
        keys.experiment_id(item.project_id, item.key), item.started_at, [v.key for v in spec.variants]
    )
    rows = [VariantLive(v.key, v.weight, tallies[v.key].exposures, tallies[v.key].metric_events) for v in spec.variants]
    received = [tally.last_received_at for tally in tallies.values() if tally.last_received_at]
    last = datetime.fromtimestamp(max(received), tz=now.tzinfo) if received else None
    return LiveCheck(rows, last, now)
