"""The results table: one snapshot per experiment and day, keyed (experiment_id, date).

The date is the last day of data the snapshot covers; writing the same date again replaces it,
so a rerun converges on the same history (a later run's snapshot is never replaced by an earlier
run's: put_unless_newer).
"""

import json
from typing import Any

from pynamodb.attributes import BooleanAttribute, JSONAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, delete_each


class FiniteJSONAttribute(JSONAttribute):
    """JSON that holds no NaN or Infinity (which Python writes and no other reader takes): storing
    one is a ValueError, as the analyses never hold one. Read as written: a snapshot stored before
    may hold them, and only the API's answers need them null (abacus.core.numbers.dumps)."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, allow_nan=False)


class SnapshotItem(Model):
    class Meta(TableMeta):
        table_name = settings.results_table

    experiment_id = UnicodeAttribute(hash_key=True)
    date = UnicodeAttribute(range_key=True)
    cutoff = UTCDateTimeAttribute()
    computed_at = UTCDateTimeAttribute()
    analysis = FiniteJSONAttribute()
    # A stopped experiment's last snapshot, once no event can change any exposed user's windows.
    final = BooleanAttribute(default=False)


def put(item: SnapshotItem) -> None:
    item.save()


def put_unless_newer(item: SnapshotItem) -> bool:
    """Stores the snapshot unless the one stored for its date was computed by a later run (a
    message of an older run delivered late must not undo a newer one); whether it was stored."""
    try:
        item.save(condition=SnapshotItem.computed_at.does_not_exist() | (SnapshotItem.computed_at <= item.computed_at))
    except PutError as error:
        if condition_failed(error):
            return False
        raise
    return True


def latest(experiment_id: str) -> SnapshotItem | None:
    return next(iter(SnapshotItem.query(experiment_id, scan_index_forward=False, limit=1)), None)


def history(experiment_id: str) -> list[SnapshotItem]:
    """Every snapshot of an experiment, oldest first (one Query: a row per day)."""
    return list(SnapshotItem.query(experiment_id))


def at(experiment_id: str, date: str) -> SnapshotItem | None:
    return next(iter(SnapshotItem.query(experiment_id, SnapshotItem.date == date, limit=1)), None)


def delete_experiment(experiment_id: str) -> int:
    """Deletes every snapshot of an experiment."""
    return delete_each(SnapshotItem, SnapshotItem.query(experiment_id, attributes_to_get=["experiment_id", "date"]))


def up_to(experiment_id: str, date: str, limit: int = 2) -> list[SnapshotItem]:
    """The snapshot of `date` and the ones before it, newest first, `limit` in all (one Query)."""
    return list(SnapshotItem.query(experiment_id, SnapshotItem.date <= date, scan_index_forward=False, limit=limit))
