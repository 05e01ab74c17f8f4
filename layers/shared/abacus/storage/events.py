"""The events table: raw events, keyed (user_id = project#distinct_id, uuid), kept for the retention
period by DynamoDB TTL. The uuid makes a redelivered event a no-op; the key puts a user's events
together, so attribution reads one user's events with one Query.
"""

from collections.abc import Iterator
from datetime import datetime

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from abacus.settings import settings
from abacus.storage.base import TableMeta


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


def insert_once(item: EventItem) -> bool:
    """Stores the event; False when an event with its uuid was stored before (a redelivery)."""
    try:
        item.save(condition=EventItem.uuid.does_not_exist())
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def user_events(user_id: str, names: list[str], start: datetime, end: datetime) -> Iterator[EventItem]:
    """A user's events with one of `names`, stamped in [start, end)."""
    return EventItem.query(
        user_id,
        filter_condition=EventItem.event.is_in(*names) & (EventItem.timestamp >= start) & (EventItem.timestamp < end),
    )
