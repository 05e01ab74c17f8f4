"""PostHog's capture API (`/batch/`, `/capture/`, `/e/`, `/i/v0/e/`): its payloads turned into
Abacus events, so that the official SDKs' `capture()` delivers into Abacus unchanged.

Accepted: a single event, a JSON array of events, or `{"batch": [...]}`; the project token as
`api_key` or `token`, at the top or in an event (or in its properties, as posthog-js sends it);
`distinct_id` on the event or in its properties; `$set` and `$set_once` (person properties) in
the properties or at the top of the event, where posthog-js and posthog-python put them. Clock
skew: when the body carries `sent_at`, an event's `timestamp` is moved by (receipt time -
sent_at), as PostHog does; an event with an `offset` (milliseconds before sending) is stamped that
long before receipt.

Not stored: the credentials among the properties, and the SDK's own state that Abacus never reads
(event_properties.py lists them: copies of the event's uuid and time, the flags the SDK holds, its
server-side switches and limits).
"""

from datetime import datetime, timedelta
from typing import Any

from abacus.core.errors import BadRequest, Unauthorized
from abacus.core.event_properties import is_stored
from abacus.ingestion.ingest import event_time, other_unit

# Person properties to set, which the SDKs send in the properties or at the top of the event.
PERSON_UPDATES = ("$set", "$set_once")


def _properties(source: dict[str, Any]) -> dict[str, Any]:
    properties = source.get("properties")
    return properties if isinstance(properties, dict) else {}


def _token(body: dict[str, Any], events: list[object]) -> str:
    for source in (body, *(e for e in events if isinstance(e, dict))):
        for candidate in (source.get("api_key"), source.get("token"), _properties(source).get("token")):
            if isinstance(candidate, str) and candidate:
                return candidate
    raise Unauthorized("api_key: send the project token as api_key or token", field="api_key")


def normalize(body: object, received_at: datetime) -> tuple[str, list[object]]:
    """(project token, events in Abacus's shape) from a PostHog capture body."""
    envelope: dict[str, Any]
    if isinstance(body, list):
        envelope, events = {}, body
    elif isinstance(body, dict):
        envelope = body
        events = body["batch"] if "batch" in body else [body]
    else:
        raise BadRequest('body: a PostHog event, a list of events or {"batch": [...]}', field="body")
    if not isinstance(events, list):
        raise BadRequest("batch: must be a list of events", field="batch")
    token = _token(envelope, events)
    skew = timedelta(0)
    sent_at = envelope.get("sent_at")
    if isinstance(sent_at, str):
        try:
            skew = received_at - event_time(sent_at, received_at)
        except ValueError:
            skew = timedelta(0)
    return token, [_event(raw, received_at, skew) for raw in events]


def _event(raw: object, received_at: datetime, skew: timedelta) -> object:
    if not isinstance(raw, dict):
        return raw  # rejected, with its index, by ingestion's validation
    sent = _properties(raw)
    event: dict[str, Any] = {
        "event": raw.get("event"),
        "distinct_id": raw.get("distinct_id", sent.get("distinct_id", sent.get("$distinct_id"))),
        "properties": {key: value for key, value in sent.items() if is_stored(key)},
    }
    for update in PERSON_UPDATES:  # posthog-js and posthog-python send these beside the properties
        if isinstance(raw.get(update), dict):
            given = event["properties"].get(update)
            event["properties"][update] = {**(given if isinstance(given, dict) else {}), **raw[update]}
    if raw.get("uuid") is not None:
        event["uuid"] = raw["uuid"]
    timestamp = _timestamp(raw.get("timestamp"), raw.get("offset"), received_at, skew)
    if timestamp is not None:
        event["timestamp"] = timestamp
    return event


def _timestamp(timestamp: object, offset: object, received_at: datetime, skew: timedelta) -> object:
    """The event's time corrected for the client's clock, from its timestamp or its offset."""
    if isinstance(offset, int) and not isinstance(offset, bool) and timestamp is None:
        try:
            return (received_at - timedelta(milliseconds=offset)).isoformat()
        except OverflowError:  # as epoch milliseconds, which ingestion refuses as out of range
            return int(received_at.timestamp() * 1000) - offset
    if other_unit(timestamp, received_at):
        return timestamp  # epoch seconds, say: refused by ingestion, saying what to send
    if isinstance(timestamp, str | int) and not isinstance(timestamp, bool):
        try:
            return (event_time(timestamp, received_at) + skew).isoformat()
        except (ValueError, OverflowError):
            return timestamp  # rejected with its reason by ingestion's validation
    return timestamp
