"""The experiments table: one item per experiment, keyed (project_id, key).

The definition (what POST and PATCH set, validated by abacus.experiments.spec.ExperimentFields) is kept as
one JSON document beside the status, its times and the history of changes. Every write is a
conditional save on `version`, so two concurrent changes cannot both win.

The by-due index holds only the experiments with a schedule pending: a draft with `starts_at`, a
running experiment with `ends_at` (their definition's) or a running bandit (its next recompute).
Every save sets its keys from the status and the definition (ExperimentItem.serialize), or
leaves them out, so it is never out of step.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from abacus.core import keys
from abacus.core.settings import settings
from abacus.storage.base import (
    TableMeta,
    condition_failed,
    connection,
    delete_each,
    error_code,
    error_message,
    nullable,
)

# The by-due index's one partition key: at most one write per schedule set or cleared, and one
# Query a minute (docs/data-model.md, the ceilings), far under what one key takes.
DUE = "due"


class ByDue(GlobalSecondaryIndex["ExperimentItem"]):
    """The experiments with a scheduled launch or stop, by when (keys only: each is read whole)."""

    class Meta:
        index_name = "by-due"
        projection = KeysOnlyProjection()

    due = UnicodeAttribute(hash_key=True)  # DUE, on the items with a schedule pending only
    due_at = UnicodeAttribute(range_key=True)  # due_key(): UTC, fixed width, so text order is time order


def due_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ExperimentItem(Model):
    class Meta(TableMeta):
        table_name = settings.experiments_table

    by_due = ByDue()
    project_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute()
    definition = JSONAttribute()
    shipped_variant = nullable(UnicodeAttribute())
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    started_at = nullable(UTCDateTimeAttribute())
    stopped_at = nullable(UTCDateTimeAttribute())
    history = JSONAttribute(default=list)
    version = VersionAttribute()
    # A complete experiment whose final snapshot is written: the nightly job is done with it.
    results_final = nullable(BooleanAttribute())
    # The assignments table's keys its users are spread over (keys.assignment_partition), fixed at
    # creation; None for an experiment created before there were shards (one key).
    assignment_shards = nullable(NumberAttribute())
    # In a layer: the layer's buckets it took at its launch ([[first, end], ...], experiments/experiment_layers.py).
    layer_buckets = nullable(JSONAttribute())
    # A bandit's phases (experiments/bandit_weights.py): the current one's number and weights (in
    # basis points), the start of each phase after the first (epoch seconds) and the frozen
    # variants; None for fixed weights, and for a bandit until its first reweighting (equal weights).
    bandit = nullable(JSONAttribute())
    # The experiments this key held before, archived and replaced (None: the first, generation 1).
    generation = nullable(NumberAttribute())
    # The by-due index's keys, set by serialize() from the status and the definition.
    due = nullable(UnicodeAttribute())
    due_at = nullable(UnicodeAttribute())

    def serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        """Every write (save, a transaction's put) serializes the item: the by-due keys are set
        here, from what is pending, so no save can leave them stale."""
        pending = self.pending_schedule()
        self.due_at = due_key(pending) if pending else None
        self.due = DUE if pending else None
        return super().serialize(null_check)

    def pending_schedule(self) -> datetime | None:
        """When the minute's schedule acts on it next: its scheduled launch or stop, or a running
        bandit's next recompute, whichever comes first."""
        found = [moment for moment in (self.scheduled_action(), self.bandit_run_due()) if moment is not None]
        return min(found) if found else None

    def scheduled_action(self) -> datetime | None:
        """A draft's starts_at, a running experiment's ends_at (its definition's)."""
        field = {"draft": "starts_at", "running": "ends_at"}.get(self.status)
        moment = self.definition.get(field) if field and isinstance(self.definition, dict) else None
        return datetime.fromisoformat(moment) if isinstance(moment, str) else None

    def bandit_run_due(self) -> datetime | None:
        """A running bandit's next recompute (experiments/bandit_weights.py): `next_run` once set,
        else its allocation's hours after the launch."""
        allocation = self.definition.get("allocation") if isinstance(self.definition, dict) else None
        if self.status != "running" or not isinstance(allocation, dict) or allocation.get("kind") != "bandit":
            return None
        next_run = (self.bandit or {}).get("next_run")
        if next_run is not None:
            return datetime.fromtimestamp(int(next_run), UTC)
        hours = int(allocation.get("reweight_every_hours", 1))
        return self.started_at + timedelta(hours=hours) if self.started_at else None

    @property
    def experiment_key(self) -> str:
        """The experiment's key: a retired generation's item is keyed `key~N` (retire())."""
        return self.key.partition(keys.GENERATION_MARK)[0]

    @property
    def experiment_id(self) -> str:
        """Where its assignments, results and runs are stored (keys.experiment_id)."""
        return keys.experiment_id(self.project_id, self.experiment_key, self.generation_number)

    @property
    def generation_number(self) -> int:
        return int(self.generation) if self.generation else 1

    @property
    def retired(self) -> bool:
        return self.status == RETIRED

    def assignment_partition(self, distinct_id: str) -> str:
        return keys.assignment_partition(self.experiment_id, distinct_id, self.shards)

    def assignment_partitions(self) -> list[str]:
        return keys.assignment_partitions(self.experiment_id, self.shards)

    @property
    def shards(self) -> int | None:
        return int(self.assignment_shards) if self.assignment_shards else None


# An archived experiment whose key was taken by a new one: kept, keyed `key~N`, for its data to be
# deleted with the project; never listed, served or analysed.
RETIRED = "retired"


class AlreadyExists(Exception):
    pass


class ChangedMeanwhile(Exception):
    """Someone else saved the experiment between our read and our write."""


class TooLargeToStore(Exception):
    """The experiment is over DynamoDB's 400 KB item limit."""


def _too_large(error: PutError) -> bool:
    return error_code(error) == "ValidationException" and "size" in error_message(error)


def insert(item: ExperimentItem) -> None:
    try:
        item.save(condition=ExperimentItem.key.does_not_exist())
    except PutError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            raise AlreadyExists(item.key) from error
        if _too_large(error):
            raise TooLargeToStore(item.key) from error
        raise


def save(item: ExperimentItem) -> None:
    """Saves a changed experiment unless it changed since it was read (its version)."""
    try:
        item.save()
    except PutError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            raise ChangedMeanwhile(item.key) from error
        if _too_large(error):
            raise TooLargeToStore(item.key) from error
        raise


def get(project_id: str, key: str) -> ExperimentItem | None:
    if keys.GENERATION_MARK in key:  # a retired generation is no experiment of the API's
        return None
    try:
        return ExperimentItem.get(project_id, key)
    except DoesNotExist:
        return None


def in_project(project_id: str, with_retired: bool = False) -> list[ExperimentItem]:
    """All of a project's experiments (one Query, paged by PynamoDB); with the retired
    generations of reused keys too when `with_retired` (to delete their data)."""
    return [item for item in ExperimentItem.query(project_id) if with_retired or not item.retired]


def page(
    project_id: str, limit: int, after: str | None, status: str | None = None
) -> tuple[list[ExperimentItem], str | None]:
    """Up to `limit` experiments in key order after the key `after` (of `status` only, when
    given: a filter, so a page may hold fewer); and the last key read when more follow."""
    last_evaluated_key = {"project_id": {"S": project_id}, "key": {"S": after}} if after else None
    shown = ExperimentItem.status != RETIRED if status is None else ExperimentItem.status == status
    results = ExperimentItem.query(
        project_id, filter_condition=shown, limit=limit, last_evaluated_key=last_evaluated_key
    )
    items = list(results)
    more = results.last_evaluated_key
    return items, (more["key"]["S"] if more else None)


def replace_archived(archived: ExperimentItem, new: ExperimentItem) -> None:
    """In one transaction: the archived experiment kept as retired, keyed `key~N` (its data stays
    under its generation's id), and `new` saved in its place as the next generation; ChangedMeanwhile
    when the archived one changed (or was replaced) since it was read."""
    retired = ExperimentItem(
        archived.project_id,
        f"{archived.key}{keys.GENERATION_MARK}{archived.generation_number}",
        **{name: getattr(archived, name) for name in _COPIED},
    )
    retired.status = RETIRED
    new.generation = archived.generation_number + 1
    new.version = archived.version  # PynamoDB's save conditions on it: the archived one unchanged
    try:
        with TransactWrite(connection=connection()) as transaction:
            transaction.save(retired, condition=ExperimentItem.key.does_not_exist())
            transaction.save(new, condition=ExperimentItem.status == "archived")
    except TransactWriteError as error:
        if condition_failed(error):
            raise ChangedMeanwhile(new.key) from error
        raise


_COPIED = (
    "status", "definition", "shipped_variant", "created_at", "updated_at", "started_at", "stopped_at", "history",
    "results_final", "assignment_shards", "layer_buckets", "generation",
)  # fmt: skip


def delete_draft(item: ExperimentItem) -> None:
    """Deletes a draft, unless it changed (or was launched) since it was read: ChangedMeanwhile."""
    try:
        item.delete(condition=ExperimentItem.status == "draft")
    except DeleteError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            raise ChangedMeanwhile(item.key) from error
        raise


def due(now: datetime, limit: int) -> list[tuple[str, str]]:
    """(project id, key) of up to `limit` experiments whose schedule is due by `now`, the earliest
    first (one Query of the by-due index; what it holds is eventually consistent: read each)."""
    found = ExperimentItem.by_due.query(DUE, ExperimentItem.due_at <= due_key(now), limit=limit)
    return [(item.project_id, item.key) for item in found]


def all_to_analyse() -> Iterator[ExperimentItem]:
    """Every running experiment of every project, and every complete one without its final
    snapshot yet (a scan: the table holds experiments, not users)."""
    unfinished = ExperimentItem.results_final.does_not_exist() | (ExperimentItem.results_final == False)  # noqa: E712
    return ExperimentItem.scan(
        (ExperimentItem.status == "running") | ((ExperimentItem.status == "complete") & unfinished)
    )


def mark_results_final(item: ExperimentItem) -> None:
    """Records that the experiment's final snapshot is written (one attribute, whatever else changed)."""
    ExperimentItem(item.project_id, item.key).update(
        actions=[ExperimentItem.results_final.set(True)],
        condition=ExperimentItem.key.exists(),
        add_version_condition=False,  # an edit of its text meanwhile changes nothing here
    )


def delete_project(project_id: str) -> int:
    """Deletes every experiment of a project (their assignments and results are other tables')."""
    return delete_each(ExperimentItem, ExperimentItem.query(project_id))  # the retired generations too
