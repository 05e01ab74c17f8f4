"""The events table: raw events, keyed (user_id = project#distinct_id, uuid), kept for the retention
period by DynamoDB TTL. The uuid makes a redelivered event overwrite itself with the same content;
the key puts a user's events together, so attribution reads one user's events with one Query.

Writes go 25 at a time with BatchWriteItem; items DynamoDB leaves unprocessed are sent again with
exponential backoff and full jitter (throttling and 5xx answers are retried by botocore itself).
"""

import random
import time
from collections.abc import Iterator
from datetime import datetime

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from abacus.settings import settings
from abacus.storage.base import TableMeta

BATCH_SIZE = 25
RETRIES = 6
BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS = 0.05, 1.0


class EventItem(Model):
    class Meta(TableMeta):
        table_name = settings.events_table

    user_id = UnicodeAttribute(hash_key=True)
    uuid = UnicodeAttribute(range_key=True)
    event = UnicodeAttribute()
    distinct_id = UnicodeAttribute()
    timestamp = UTCDateTimeAttribute()
    received_at = UTCDateTimeAttribute()
    properties = JSONAttribute(null=True)
    expires_at = NumberAttribute()


def existing_keys(keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (user_id, uuid) keys are stored already (BatchGetItem, 100 keys a request)."""
    found = EventItem.batch_get(keys, attributes_to_get=["user_id", "uuid"])
    return {(item.user_id, item.uuid) for item in found}


def write_all(items: list[EventItem], sleep=time.sleep) -> list[EventItem]:
    """Stores the items; returns those still unprocessed after every retry (empty when all stored)."""
    connection = EventItem._get_connection()
    failed: list[EventItem] = []
    for start in range(0, len(items), BATCH_SIZE):
        pending = {(item.user_id, item.uuid): item for item in items[start : start + BATCH_SIZE]}
        for attempt in range(RETRIES + 1):
            if attempt:
                sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))
            answer = connection.batch_write_item(put_items=[item.serialize() for item in pending.values()])
            unprocessed = (answer or {}).get("UnprocessedItems", {}).get(EventItem.Meta.table_name, [])
            left = {
                (r["PutRequest"]["Item"]["user_id"]["S"], r["PutRequest"]["Item"]["uuid"]["S"]) for r in unprocessed
            }
            pending = {key: item for key, item in pending.items() if key in left}
            if not pending:
                break
        failed.extend(pending.values())
    return failed


def user_events(user_id: str, names: list[str], start: datetime) -> Iterator[EventItem]:
    """A user's events with one of `names`, stamped at or after `start` (strongly consistent)."""
    return EventItem.query(
        user_id,
        filter_condition=EventItem.event.is_in(*names) & (EventItem.timestamp >= start),
        consistent_read=True,
    )
