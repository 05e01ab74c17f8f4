"""Request counters per project token and minute, in the projects table, sharded:
`rate#<project>#<minute>#<NN>`, NN from 00 to SHARDS - 1. Each execution environment adds its
hits to one shard; the project's total is the sum over all of them. Removed by DynamoDB's TTL once
their minute is long past."""

from collections.abc import Mapping

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta

KEEP_SECONDS = 3600
# A key takes about 1,000 writes a second. Every environment adds to one shard once a second and
# reads all of them (half a read unit each), so a key takes environments / SHARDS writes and
# environments / 2 reads a second: the reads reach a key's 3,000 at 6,000 environments whatever
# SHARDS is. 16 keeps the busiest shard's writes far under 1,000 up to there (6,000 / 16 = 375 on
# average, a randomly picked shard not much more); more would only make each read dearer.
SHARDS = 16


class RateWindowItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    expires_at = NumberAttribute()


def counter_key(project_id: str, minute: int, shard: int) -> str:
    return f"rate#{project_id}#{minute}#{shard:02d}"


def add_hits(project_id: str, minute: int, shard: int, hits: int) -> int:
    """Adds `hits` to the project's counter shard of `minute` (epoch minutes); the shard's new total."""
    item = RateWindowItem(counter_key(project_id, minute, shard))
    item.update(
        actions=[RateWindowItem.hits.add(hits), RateWindowItem.expires_at.set((minute + 1) * 60 + KEEP_SECONDS)]
    )
    return int(item.hits)


def shard_hits(project_id: str, minute: int, shards: int = SHARDS) -> Mapping[int, int]:
    """The hits of each of the project's counter shards of `minute` that was read: one BatchGetItem,
    eventually consistent. A shard with no counter yet is absent, and so is one DynamoDB left in
    UnprocessedKeys: it is not sent again at once (the key is being throttled; an immediate resend
    adds to it), the caller keeps the count it last saw and reads it again at its next share."""
    # Keys as Model.batch_get passes them ({attribute: value}; PynamoDB's annotation says str).
    keys = [{"pk": counter_key(project_id, minute, shard)} for shard in range(shards)]
    answer = RateWindowItem._get_connection().batch_get_item(keys, consistent_read=False)  # type: ignore[arg-type]
    items = answer.get("Responses", {}).get(RateWindowItem.Meta.table_name, [])
    counted = (RateWindowItem.from_raw_data(item) for item in items)
    return {int(item.pk.rsplit("#", 1)[1]): int(item.hits) for item in counted}
