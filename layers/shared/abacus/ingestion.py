"""Validating a batch of events and storing each exactly once."""

import uuid as uuid_lib
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from abacus import keys
from abacus.schemas import EventSpec
from abacus.settings import settings
from abacus.storage import events as store
from abacus.storage.events import EventItem

MAX_FUTURE = timedelta(hours=24)


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


def ingest(project_id: str, raw_events: list[dict], received_at: datetime) -> dict:
    """Stores each valid event once. Returns {accepted, duplicates, rejected: [{index, error}]}."""
    retention = timedelta(days=settings.event_retention_days)
    accepted = duplicates = 0
    rejected = []
    for index, raw in enumerate(raw_events):
        try:
            item = _to_item(project_id, raw, received_at, retention)
        except ValueError as error:
            rejected.append({"index": index, "error": str(error)})
            continue
        if store.insert_once(item):
            accepted += 1
        else:
            duplicates += 1
    return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}


def _to_item(project_id: str, raw: dict, received_at: datetime, retention: timedelta) -> EventItem:
    try:
        spec = EventSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "event"
        raise ValueError(f"{field}: {first['msg']}") from None
    timestamp = event_time(spec.timestamp, received_at)
    if timestamp > received_at + MAX_FUTURE:
        raise ValueError("timestamp: more than 24 hours in the future")
    if timestamp < received_at - retention:
        raise ValueError(f"timestamp: older than the {retention.days}-day retention period")
    return EventItem(
        keys.user_id(project_id, spec.distinct_id),
        spec.uuid or str(uuid_lib.uuid4()),
        event=spec.event,
        distinct_id=spec.distinct_id,
        timestamp=timestamp,
        received_at=received_at,
        properties=spec.properties,
        expires_at=int((timestamp + retention).timestamp()),
    )
