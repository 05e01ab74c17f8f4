"""The events table: raw events, keyed (user_id = project#distinct_id, uuid), kept for the retention
period by DynamoDB TTL. The uuid makes a redelivered event overwrite itself with the same content;
the key puts a user's events together, so attribution reads one user's events with one Query.

The by-receipt index finds what a project received since a time. Its key is sharded,
`project#YYYY-MM-DD#NN` (NN the user's shard, `settings.receipt_shards` of them), because one
index key takes about 1,000 writes a second and DynamoDB cannot split a key whose sort key only
grows: one key a day would cap a project near 1,000 events a second, and an index that cannot keep
up throttles the table's writes too. Readers Query every shard in parallel, and the unsharded key
events stored before the shards were introduced have (`project#YYYY-MM-DD`). The shard count may
change: the writer records the counts each day was stored with (storage/receipt_layouts.py), and
readers read the keys of every one of them.

Writes go 25 at a time with BatchWriteItem; items DynamoDB leaves unprocessed are sent again with
exponential backoff and full jitter (throttling and 5xx answers are retried by botocore itself).
"""

import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any, TypedDict

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from abacus.core import keys
from abacus.core.settings import settings
from abacus.storage import receipt_layouts
from abacus.storage.base import CompressedJSONAttribute, TableMeta, delete_each

BATCH_SIZE = 25
RETRIES = 6
BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS = 0.05, 1.0


class ByReceipt(GlobalSecondaryIndex["EventItem"]):
    """Events by the day and time they were received, per project (distinct_id and event projected)."""

    class Meta:
        index_name = "by-receipt"
        projection = IncludeProjection(["distinct_id", "event"])

    receipt_day = UnicodeAttribute(hash_key=True)  # project#YYYY-MM-DD#NN (a shard)
    receipt = UnicodeAttribute(range_key=True)  # received_at ISO#uuid


class EventItem(Model):
    class Meta(TableMeta):
        table_name = settings.events_table

    by_receipt = ByReceipt()
    user_id = UnicodeAttribute(hash_key=True)
    uuid = UnicodeAttribute(range_key=True)
    event = UnicodeAttribute()
    distinct_id = UnicodeAttribute()
    timestamp = UTCDateTimeAttribute()
    received_at = UTCDateTimeAttribute()
    # The event's properties, compressed ("pz"); events stored before hold them as JSON text
    # ("properties"): read both through event_properties().
    properties = CompressedJSONAttribute(null=True, attr_name="pz")
    legacy_properties = JSONAttribute(null=True, attr_name="properties")
    expires_at = NumberAttribute()
    receipt_day = UnicodeAttribute()
    receipt = UnicodeAttribute()

    def event_properties(self) -> dict[str, Any]:
        """The event's properties, however they were stored ({} when it has none)."""
        found = self.properties if self.properties is not None else self.legacy_properties
        return found if isinstance(found, dict) else {}


class ReceiptKeys(TypedDict):
    receipt_day: str
    receipt: str


def receipt_keys(project_id: str, received_at: datetime, distinct_id: str, uuid: str) -> ReceiptKeys:
    """The event's by-receipt keys: its shard is its user's (keys.shard_of), so one shard's users
    are found in one shard of the index."""
    shard = keys.shard_of(distinct_id, settings.receipt_shards)
    return {
        "receipt_day": f"{_day_key(project_id, received_at.date())}#{shard:02d}",
        "receipt": f"{received_at.isoformat()}#{uuid}",
    }


def _day_key(project_id: str, day: date) -> str:
    return f"{project_id}#{day.isoformat()}"


def receipt_day_keys(
    project_id: str, day: date, user_shard: tuple[int, int | None] = (0, None), layouts: Iterable[int] = ()
) -> list[str]:
    """The by-receipt keys of a project's day stored with each of `layouts` (shard counts) and
    with today's: their shards, and the unsharded key of events stored before there were shards.
    With `user_shard` (index, count), only the shards that can hold that shard's users: both
    shards are the same hash modulo two counts, so receipt shard r of a layout of L shards can
    hold users of shard `index` only when r and `index` agree modulo gcd(L, count)."""
    index, count = user_shard
    shards: set[int] = set()
    for layout in {settings.receipt_shards, *layouts}:
        common = math.gcd(layout, count) if count else 1
        shards.update(shard for shard in range(layout) if shard % common == index % common)
    unsharded = _day_key(project_id, day)
    return [unsharded, *(f"{unsharded}#{shard:02d}" for shard in sorted(shards))]


def received_between(
    project_id: str, start: datetime, end: datetime, user_shard: tuple[int, int | None] = (0, None)
) -> Iterator[EventItem]:
    """(distinct_id, event) of the project's events received in [start, end], day by day, each
    day's shards read in parallel. `user_shard` (index, count) reads only the index's shards that
    can hold that shard's users (count None: all); the caller filters the users it wants."""
    window = EventItem.receipt.between(start.isoformat(), f"{end.isoformat()}~")

    def read(key: str) -> list[EventItem]:
        return list(EventItem.by_receipt.query(key, window))

    day = start.date()
    with ThreadPoolExecutor(max_workers=16) as pool:
        while day <= end.date():
            layouts = receipt_layouts.counts(project_id, day)  # the day's shard counts, else today's alone
            for shard in pool.map(read, receipt_day_keys(project_id, day, user_shard, layouts)):
                yield from shard
            day += timedelta(days=1)


def delete_received(project_id: str, start: datetime, end: datetime) -> int:
    """Deletes the project's events received from `start` to `end`, found day by day through the
    by-receipt index (which holds their keys)."""
    received = received_between(project_id, start, end)
    return delete_each(EventItem, (EventItem(item.user_id, item.uuid) for item in received))


# What attribution reads of an event (a read costs the same whatever part of the item it returns).
ATTRIBUTED = ["user_id", "uuid", "event", "distinct_id", "timestamp", "pz", "properties"]


def stored(keys: list[tuple[str, str]]) -> dict[tuple[str, str], EventItem]:
    """Those of these (user_id, uuid) keys stored already, with what attribution reads of them
    (BatchGetItem, 100 keys a request)."""
    found = EventItem.batch_get(keys, attributes_to_get=ATTRIBUTED)
    return {(item.user_id, item.uuid): item for item in found}


def write_all(items: list[EventItem], sleep: Callable[[float], None] = time.sleep) -> list[EventItem]:
    """Stores the items; returns those still unprocessed after every retry (empty when all stored).
    First records the shard count of each project's day they are received on (receipt_layouts):
    none of them is stored before a reader can know which keys to read it under."""
    for project_id, day in {(item.user_id.split("#", 1)[0], item.received_at.date()) for item in items}:
        receipt_layouts.record(project_id, day, settings.receipt_shards)
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
