"""Validating a batch of events, storing each exactly once, and attributing them to experiments."""

import uuid as uuid_lib
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError
from pynamodb.exceptions import PynamoDBException

from abacus.assignment import live_check
from abacus.core import keys, numbers
from abacus.core.answers import ErrorBody, IngestOutcome, Rejected
from abacus.core.errors import StorageUnavailable, TooLarge, field_errors
from abacus.core.retention import LATE, LATE_EVENT_DAYS
from abacus.core.settings import settings
from abacus.experiments import definitions, units
from abacus.experiments.metrics_spec import components
from abacus.identity import person_updates
from abacus.ingestion import attribution, received
from abacus.ingestion.spec import EventSpec
from abacus.storage import events
from abacus.storage.events import EventItem

logger = Logger()
MAX_EVENTS = 1000
MAX_FUTURE = timedelta(hours=24)


class EventsNotStored(StorageUnavailable):
    """DynamoDB refused after every retry: 503, naming the events to send again."""

    def __init__(self, message: str, indexes: list[int]):
        super().__init__(message)
        self.indexes = indexes

    def to_body(self) -> ErrorBody:
        body = super().to_body()
        body["error"]["not_stored"] = self.indexes
        return body


def event_time(value: int | str | None, received_at: datetime) -> datetime:
    """An event's time from ISO 8601 or epoch milliseconds; the receipt time when absent."""
    if value is None:
        return received_at
    if isinstance(value, int):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("timestamp: epoch milliseconds out of range") from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("timestamp: not ISO 8601 or epoch milliseconds") from None
    # A time without a zone is taken as UTC, as PostHog does.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _accepted_time(value: int | str | None, received_at: datetime) -> datetime:
    """The event's time, refused (ValueError) when more than a day ahead or too late to count; an
    integer plainly in another unit than milliseconds is refused saying what to send instead."""
    try:
        timestamp = event_time(value, received_at)
    except ValueError as error:
        raise ValueError(other_unit(value, received_at) or str(error)) from None
    if timestamp > received_at + MAX_FUTURE:
        raise ValueError(other_unit(value, received_at) or "timestamp: more than 24 hours in the future")
    if timestamp < received_at - LATE:
        # After that, windows are final and their raw events may expire (retention.py).
        raise ValueError(
            other_unit(value, received_at)
            or f"timestamp: more than {LATE_EVENT_DAYS} days before it arrived, too late to count"
        )
    return timestamp


def other_unit(value: object, received_at: datetime) -> str | None:
    """What to send instead of an integer timestamp that is epoch seconds (time.time(), Unix
    `date +%s`) or microseconds: None unless read so it is a time an event is accepted at."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    earliest, latest = ((received_at + bound).timestamp() * 1000 for bound in (-LATE, MAX_FUTURE))
    for unit, millis in (("seconds", value * 1000), ("microseconds", value // 1000)):
        if earliest <= millis <= latest:
            when = datetime.fromtimestamp(millis / 1000, tz=UTC)
            return (
                f"timestamp: {value} looks like epoch {unit} ({when:%Y-%m-%d %H:%M:%S} UTC); "
                f"epoch milliseconds are expected: send {millis}"
            )
    return None


def ingest(project_id: str, raw_events: list[object], received_at: datetime) -> IngestOutcome:
    """Stores each valid event once and attributes it. Returns {accepted, duplicates, rejected:
    [{index, error}], refused_exposures, refused_exposure_reasons}; StorageUnavailable (503) when
    storage refused after retries."""
    if len(raw_events) > MAX_EVENTS:
        raise TooLarge(f"events: at most {MAX_EVENTS} a request, not {len(raw_events)}", field="events")
    retention = timedelta(days=settings.event_retention_days)
    valid: list[tuple[int, EventItem]] = []
    rejected: list[Rejected] = []
    bounds = SumBounds(project_id)
    for index, raw in enumerate(raw_events):
        try:
            valid.append((index, _to_item(project_id, raw, received_at, retention, bounds)))
        except ValueError as error:
            rejected.append({"index": index, "error": str(error)})
    new, stored_before = _store(project_id, valid)
    received.record_events(project_id, new + stored_before, received_at)
    try:
        # Duplicates too, so that a redelivery after a failed attribution still attributes; but as
        # they were stored: a resent uuid with other content (an earlier time) changes nothing.
        # Persons first, so that an exposure sent after its identify is the person's.
        person_updates.apply(project_id, new + stored_before, received_at)
        new_keys = {(item.user_id, item.uuid) for item in new}
        attributed = attribution.attribute(project_id, new + stored_before, received_at, new_keys)
    except PynamoDBException as error:
        indexes = [index for index, _ in valid]
        raise EventsNotStored(
            f"events stored but not yet attributed ({type(error).__name__}): send them again, they count once",
            indexes,
        ) from error
    live_check.after_ingest(attributed.launched, new, attributed.recorded, received_at, attributed.roots)
    reasons = attributed.refused.by_reason
    if reasons:
        # The answer says how many and why; so do the log and the live check (PostHog's SDKs read no answer).
        logger.info("exposure events refused", extra={"project": project_id, "refused": dict(reasons)})
        refused_new = attributed.refused.new_by_key
        live_check.count_refusals(project_id, refused_new, attributed.experiments, received_at)
        unknown = {key for key, reason in refused_new if reason == live_check.UNKNOWN_EXPERIMENT}
        received.record_unknown_experiments(project_id, unknown, received_at)
    return {
        "accepted": len(new),
        "duplicates": len(valid) - len(new),
        "rejected": rejected,
        "refused_exposures": reasons.total(),
        "refused_exposure_reasons": dict(sorted(reasons.items())),
    }


def _store(project_id: str, valid: list[tuple[int, EventItem]]) -> tuple[list[EventItem], list[EventItem]]:
    """Writes the events not stored yet (the first of each key), and each event's copies under
    the groups it names (group_copies; written again with a resent event: the same item); returns
    the new events, and the stored versions of the others. EventsNotStored (503) naming the events
    to send again."""
    first_of_key: dict[tuple[str, str], tuple[int, EventItem]] = {}
    for index, item in valid:
        first_of_key.setdefault((item.user_id, item.uuid), (index, item))
    try:
        stored_before = events.stored(list(first_of_key))
        new = [item for key, (_, item) in first_of_key.items() if key not in stored_before]
        copies = group_copies(project_id, [item for _, item in first_of_key.values()])
        original_of = {(copy.user_id, copy.uuid): (item.user_id, item.uuid) for item, copy in copies}
        written = events.write_all([*new, *(copy for _, copy in copies)])
        failed = {original_of.get((item.user_id, item.uuid), (item.user_id, item.uuid)) for item in written}
    except PynamoDBException as error:
        raise EventsNotStored(
            f"storage refused the events ({type(error).__name__}): send them again", [index for index, _ in valid]
        ) from error
    if failed:
        indexes = [index for index, item in valid if (item.user_id, item.uuid) in failed]
        raise EventsNotStored("storage refused some events after retries: send those again", indexes)
    return new, list(stored_before.values())


def group_copies(project_id: str, items: list[EventItem]) -> list[tuple[EventItem, EventItem]]:
    """(event, copy) for each event naming in `$groups` a group of a type some experiment of the
    project randomises by (units.py): the copy is stored under the group (keys.group_unit), so
    the nightly job reads a group's events as it reads a person's. An event of a project without
    group experiments is written once, as before."""
    specs = [definitions.definition(item) for item in definitions.project_experiments(project_id).values()]
    types = sorted(units.group_types(specs))
    copies = []
    for item in items if types else []:
        groups = item.event_properties().get("$groups")
        for group_type in types:
            key = units.group_key(groups, group_type)
            if key is None:
                continue
            unit, uuid = keys.group_unit(group_type, key), f"{item.uuid}#{group_type}"
            copy = EventItem(
                keys.user_id(project_id, unit),
                uuid,
                event=item.event,
                distinct_id=unit,
                timestamp=item.timestamp,
                received_at=item.received_at,
                properties=item.event_properties(),
                expires_at=item.expires_at,
                **events.receipt_keys(project_id, item.received_at, unit, uuid),
            )
            copies.append((item, copy))
    return copies


class SumBounds:
    """Which property of which event a sum metric of the project sums: a number there beyond
    numbers.MAX_VALUE is refused. Events are schemaless, so only the project's metrics say which
    properties are summed; they are read (from the experiments' cache) once a request, and only
    for an event holding such a number at all, which almost none do. A metric defined later
    finds any such value stored before ignored by the nightly job instead."""

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self._summed: dict[tuple[str, str], str] | None = None

    def check(self, event: str, properties: dict[str, Any] | None) -> None:
        """ValueError naming the first property a sum metric sums that holds a number beyond the bound."""
        given = properties or {}
        for name in numbers.beyond_bound(given):
            experiment = self.summed().get((event, name))
            if experiment is not None:
                raise ValueError(
                    f"properties.{name}: {given[name]:g} is beyond the ±{numbers.MAX_VALUE:g} a sum metric takes "
                    f"(experiment '{experiment}' sums it)"
                )

    def summed(self) -> dict[tuple[str, str], str]:
        """(event, property) of every sum metric of the project's experiments: the experiment's key."""
        if self._summed is None:
            self._summed = {}
            for key, item in definitions.project_experiments(self.project_id).items():
                spec = definitions.definition(item)
                for metric in components(spec.all_metrics()):
                    if metric.kind == "sum" and metric.property is not None and metric.event is not None:
                        self._summed.setdefault((metric.event, metric.property), key)
        return self._summed


def _to_item(project_id: str, raw: object, received_at: datetime, retention: timedelta, bounds: SumBounds) -> EventItem:
    try:
        spec = EventSpec.model_validate(raw)
    except ValidationError as error:
        problems = field_errors(error.errors(), whole="event")
        raise ValueError("; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)) from None
    bounds.check(spec.event, spec.properties)
    timestamp = _accepted_time(spec.timestamp, received_at)
    event_uuid = spec.uuid or str(uuid_lib.uuid4())
    return EventItem(
        keys.user_id(project_id, spec.distinct_id),
        event_uuid,
        event=spec.event,
        distinct_id=spec.distinct_id,
        timestamp=timestamp,
        received_at=received_at,
        properties=spec.properties,
        expires_at=int((timestamp + retention).timestamp()),
        **events.receipt_keys(project_id, received_at, spec.distinct_id, event_uuid),
    )
