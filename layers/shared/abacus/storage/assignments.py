"""The assignments table: a user's sticky variant and first exposure, keyed (experiment_id, distinct_id).

One conditional UpdateItem both assigns and exposes: `if_not_exists` keeps the first variant and
the first exposure time, however many calls race, so a user's variant never changes once stored.
"""

from collections.abc import Iterator
from datetime import datetime

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from abacus.settings import settings
from abacus.storage.base import TableMeta


class AssignmentItem(Model):
    class Meta(TableMeta):
        table_name = settings.assignments_table

    experiment_id = UnicodeAttribute(hash_key=True)
    distinct_id = UnicodeAttribute(range_key=True)
    variant = UnicodeAttribute()
    assigned_at = UTCDateTimeAttribute()
    exposed_at = UTCDateTimeAttribute(null=True)


def assign(experiment_id: str, distinct_id: str, variant: str, now: datetime, expose: bool) -> AssignmentItem:
    """Stores `variant` unless the user has one already; returns the stored assignment."""
    item = AssignmentItem(experiment_id, distinct_id)
    actions = [
        AssignmentItem.variant.set(AssignmentItem.variant | variant),
        AssignmentItem.assigned_at.set(AssignmentItem.assigned_at | now),
    ]
    if expose:
        actions.append(AssignmentItem.exposed_at.set(AssignmentItem.exposed_at | now))
    item.update(actions=actions)
    return item


def exposed_users(experiment_id: str) -> Iterator[AssignmentItem]:
    """Every exposed user of an experiment, paged by PynamoDB."""
    return AssignmentItem.query(experiment_id, filter_condition=AssignmentItem.exposed_at.exists())
