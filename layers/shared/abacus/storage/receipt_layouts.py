"""Which shard counts each project's day of events was stored with in the by-receipt index
(storage/events.py), in the projects table: `receipts#<project>#<YYYY-MM-DD>#NN`, NN from 00 to
SHARDS - 1, each holding a set of counts.

`EventReceiptShards` may change with a stack update, and an execution environment started before
it writes with the old count until it ends, so one day may be stored with two counts. An event
is found again only in a key of the count it was stored with: a reader that took today's count
for every day would miss the events of users the other count put in keys it does not read (after
a raise from 32 to 64, a shard's users of the day before sat under keys `h % 32`). So the writer
adds its count to the day before it stores the day's first events there, and readers read every
count a day holds (events.receipt_day_keys).

Each environment writes once per project and day (remembered in memory), to one of SHARDS items
picked at random: a project's day takes as many writes as it has environments, spread over 16
keys; a reader takes the union of the 16 (one BatchGetItem). Removed by TTL after the day's events
have expired, or with the project."""

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from pynamodb.attributes import NumberAttribute, NumberSetAttribute, UnicodeAttribute
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, delete_each

SHARDS = 16
# A day's events expire at most a day after their retention from it (a timestamp up to 24 hours
# ahead of its receipt); its counts are kept a day longer.
KEPT_AFTER_RETENTION = timedelta(days=2)
_BATCH = 100  # BatchGetItem's most keys


class ReceiptLayoutItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    shards = NumberSetAttribute(null=True)  # the counts the day's events were stored with
    expires_at = NumberAttribute()


def layout_key(project_id: str, day: date, shard: int) -> str:
    return f"receipts#{project_id}#{day.isoformat()}#{shard:02d}"


_recorded: set[tuple[str, date, int]] = set()  # this environment's writes of its latest day


def record(project_id: str, day: date, count: int) -> None:
    """Adds `count` to the counts of the project's `day`, unless this environment did already."""
    if (project_id, day, count) in _recorded:
        return
    end = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(days=settings.event_retention_days)
    item = ReceiptLayoutItem(layout_key(project_id, day, random.randrange(SHARDS)))
    item.update(
        actions=[
            ReceiptLayoutItem.shards.add({count}),
            ReceiptLayoutItem.expires_at.set(int((end + KEPT_AFTER_RETENTION).timestamp())),
        ]
    )
    if any(recorded_day != day for _, recorded_day, _ in _recorded):
        _recorded.clear()  # a new day: the earlier ones are written no more
    _recorded.add((project_id, day, count))


def counts(project_id: str, day: date) -> set[int]:
    """The counts the project's `day` was stored with ({} for a day stored before they were
    recorded): one BatchGetItem, eventually consistent (PynamoDB sends unprocessed keys again)."""
    keys = [layout_key(project_id, day, shard) for shard in range(SHARDS)]
    return {int(count) for item in ReceiptLayoutItem.batch_get(keys) for count in item.shards or ()}


def delete_project(project_id: str, first: date, last: date) -> int:
    """Deletes the project's items of the days from `first` to `last` (a project deleted); how many."""
    found = [item for chunk in _chunks(project_id, first, last) for item in ReceiptLayoutItem.batch_get(chunk)]
    return delete_each(ReceiptLayoutItem, found)


def _chunks(project_id: str, first: date, last: date) -> Iterator[list[str]]:
    keys = [
        layout_key(project_id, first + timedelta(days=offset), shard)
        for offset in range((last - first).days + 1)
        for shard in range(SHARDS)
    ]
    for start in range(0, len(keys), _BATCH):
        yield keys[start : start + _BATCH]
