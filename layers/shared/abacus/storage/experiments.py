"""The experiments table: one item per experiment, keyed (project_id, key)."""

from collections.abc import Iterator
from datetime import datetime

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from abacus.settings import settings
from abacus.storage.base import TableMeta


class VariantAttribute(MapAttribute):
    key = UnicodeAttribute()
    weight = NumberAttribute()


class MetricAttribute(MapAttribute):
    event = UnicodeAttribute()
    kind = UnicodeAttribute(default="conversion")
    window_days = NumberAttribute(default=14)


class ExperimentItem(Model):
    class Meta(TableMeta):
        table_name = settings.experiments_table

    project_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    status = UnicodeAttribute()
    variants = ListAttribute(of=VariantAttribute)
    primary_metric = MetricAttribute()
    minimum_detectable_effect = NumberAttribute(default=0.05)
    created_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    stopped_at = UTCDateTimeAttribute(null=True)


class AlreadyExists(Exception):
    pass


class StatusChanged(Exception):
    """The item's status was not the one the change required (someone else moved it first)."""


def insert(item: ExperimentItem) -> None:
    try:
        item.save(condition=ExperimentItem.key.does_not_exist())
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise AlreadyExists(item.key) from error
        raise


def get(project_id: str, key: str) -> ExperimentItem | None:
    try:
        return ExperimentItem.get(project_id, key)
    except DoesNotExist:
        return None


def running_in_project(project_id: str) -> list[ExperimentItem]:
    return list(ExperimentItem.query(project_id, filter_condition=ExperimentItem.status == "running"))


def all_running() -> Iterator[ExperimentItem]:
    """Every running experiment of every project (a scan: the table holds experiments, not users)."""
    return ExperimentItem.scan(ExperimentItem.status == "running")


def change_status(item: ExperimentItem, expected: str, new: str, at: datetime) -> None:
    """Moves `item` from `expected` to `new` status atomically, stamping the start or stop time."""
    actions = [ExperimentItem.status.set(new)]
    if new == "running":
        actions.append(ExperimentItem.started_at.set(at))
    elif new == "complete":
        actions.append(ExperimentItem.stopped_at.set(at))
    try:
        item.update(actions=actions, condition=ExperimentItem.status == expected)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise StatusChanged(item.key) from error
        raise
