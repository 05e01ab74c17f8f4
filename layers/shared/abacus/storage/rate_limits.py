"""Request counters per project token and minute, in the projects table (`rate#<project>#<minute>`),
removed by DynamoDB's TTL once their minute is long past."""

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from abacus.settings import settings
from abacus.storage.base import TableMeta

KEEP_SECONDS = 3600


class RateWindowItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    expires_at = NumberAttribute()


def add_hits(project_id: str, minute: int, hits: int) -> int:
    """Adds `hits` to the project's counter of `minute` (epoch minutes); the counter's new total."""
    item = RateWindowItem(f"rate#{project_id}#{minute}")
    item.update(
        actions=[RateWindowItem.hits.add(hits), RateWindowItem.expires_at.set((minute + 1) * 60 + KEEP_SECONDS)]
    )
    return int(item.hits)
