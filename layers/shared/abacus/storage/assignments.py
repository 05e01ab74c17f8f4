"""The assignments table: per experiment and user, keyed (experiment_id, distinct_id): the sticky
variant, the first exposure, and the user's metric values as the nightly job last computed them.

- assign: one eventually consistent GetItem (of the variant and first exposure only); for a user
  without a variant, or without a first exposure when one is being recorded, one UpdateItem
  stores them (`if_not_exists`), however many calls race.
- ingest: an exposure event sets `exposed_at` when earlier than the stored one.
- nightly: reads an experiment's users a page of one shard at a time, recomputes the values of
  users who sent events since its last run or whose exposure or metrics changed (or who had
  events past the last cut-off), and stores them; the others' stored values are used as they are.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.constants import ATTRIBUTES, UPDATED_OLD
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from abacus.core.breakdowns import Value
from abacus.core.settings import settings
from abacus.storage.base import TableMeta, delete_each, error_code, nullable


class AssignmentItem(Model):
    class Meta(TableMeta):
        table_name = settings.assignments_table

    # project#key#NN, the user's shard of the experiment (keys.assignment_partition); project#key
    # for an experiment created before there were shards.
    experiment_id = UnicodeAttribute(hash_key=True)
    distinct_id = UnicodeAttribute(range_key=True)
    variant = UnicodeAttribute()
    assigned_at = UTCDateTimeAttribute()
    exposed_at = nullable(UTCDateTimeAttribute())
    # The user's value of each of the experiment's breakdowns at the first exposure (breakdowns.py);
    # absent for an experiment without breakdowns.
    breakdown_values = JSONAttribute(null=True)
    # The nightly job's last computation: per-metric values, and what they were computed from.
    metric_values = JSONAttribute(null=True)
    values_exposed_at = nullable(UTCDateTimeAttribute())
    values_cutoff = nullable(UTCDateTimeAttribute())
    values_metrics = nullable(UnicodeAttribute())
    values_pending = nullable(BooleanAttribute())  # events at or after values_cutoff existed
    # When the run that computed them started: events received after it may not be in them,
    # whether or not that run went on to write its snapshot.
    values_computed_at = nullable(UTCDateTimeAttribute())
    # CUPED: per metric, the same value over the pre-exposure window (empty when CUPED is off).
    pre_values = JSONAttribute(null=True)
    # Persons (storage/persons.py): an item is keyed by the person's root id. When two persons
    # join, the loser's item moves into the survivor's (first exposure wins) and is marked
    # `merged_into`: the nightly job skips it. `variants_seen`: the variants the person's other
    # ids were exposed to before the join (PostHog's $multiple when one differs from `variant`).
    merged_into = nullable(UnicodeAttribute())
    variants_seen = UnicodeSetAttribute(null=True)
    # The variant (and first exposure) came from another of the person's ids, moved in at a join or
    # reported by a joined id, not from this id's own assignment or report: an exposure this id
    # reports itself, earlier, is then the person's earliest under any id, and takes the variant.
    variant_taken_in = nullable(BooleanAttribute())

    def variants_exposed(self) -> set[str]:
        """Every variant the person was exposed to, under any of their ids."""
        return {*(self.variants_seen or ()), *([self.variant] if self.exposed_at is not None else [])}


def _conditional_failure(error: UpdateError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def assign(
    experiment_id: str,
    distinct_id: str,
    variant: str,
    now: datetime,
    expose: bool,
    breakdown_values: list[Value] | None = None,
) -> AssignmentItem:
    """Stores `variant` unless the user has one already, and with `expose` the first exposure
    (with the breakdowns' values) unless there is one; returns the stored assignment."""
    item = AssignmentItem(experiment_id, distinct_id)
    actions: list[Action] = [
        AssignmentItem.variant.set(AssignmentItem.variant | variant),
        AssignmentItem.assigned_at.set(AssignmentItem.assigned_at | now),
    ]
    if expose:
        actions.append(AssignmentItem.exposed_at.set(AssignmentItem.exposed_at | now))
        if breakdown_values is not None:
            # Set with the first exposure, which sets both at once: kept as long as it is.
            actions.append(AssignmentItem.breakdown_values.set(AssignmentItem.breakdown_values | breakdown_values))
    item.update(actions=actions)
    return item


FIRST, EARLIER = "first", "earlier"


def record_exposure(
    experiment_id: str,
    distinct_id: str,
    variant: str,
    at: datetime,
    breakdown_values: list[Value] | None = None,
    takes_variant: bool = False,
) -> str | None:
    """An exposure reported as an event: the first exposure becomes `at` when earlier than the
    stored one (events arrive in any order), with the breakdowns' values the event carries; the
    variant stays the stored one if any (`takes_variant`: becomes `variant`, as when a person's
    earlier exposure under another id moves in). FIRST when the user had no exposure, EARLIER when
    it moved one earlier, None when an earlier one was stored already."""
    return _exposure(experiment_id, distinct_id, variant, at, breakdown_values, takes_variant)[0]


def _exposure(
    experiment_id: str,
    distinct_id: str,
    variant: str,
    at: datetime,
    breakdown_values: list[Value] | None,
    takes_variant: bool,
) -> tuple[str | None, str | None]:
    """record_exposure's outcome, and the variant of the exposure it moved earlier (if any)."""
    earlier = AssignmentItem.exposed_at.does_not_exist() | (AssignmentItem.exposed_at > at)
    if takes_variant:
        taken = AssignmentItem.variant_taken_in.set(True)
        return _moved(experiment_id, distinct_id, variant, at, breakdown_values, variant, taken, earlier)
    # The id's own report: its stored variant stays (its assignment, or its first report's)...
    own = AssignmentItem.variant | variant
    answer = _moved(
        experiment_id, distinct_id, variant, at, breakdown_values, own, None,
        earlier & AssignmentItem.variant_taken_in.does_not_exist(),
    )  # fmt: skip
    if answer != (None, None):
        return answer
    # ...unless the person's variant was taken in from another of their ids: an earlier report of
    # this id's own is the earliest under any id, and its variant becomes the person's.
    mine = AssignmentItem.variant_taken_in.remove()
    return _moved(
        experiment_id, distinct_id, variant, at, breakdown_values, variant, mine,
        earlier & AssignmentItem.variant_taken_in.exists(),
    )  # fmt: skip


def _moved(
    experiment_id: str,
    distinct_id: str,
    variant: str,
    at: datetime,
    breakdown_values: list[Value] | None,
    new_variant: Any,
    marked: Action | None,
    condition: Condition,
) -> tuple[str | None, str | None]:
    """One conditional UpdateItem of the exposure: (FIRST or EARLIER, the variant it replaced), or
    (None, None) when the condition does not hold (an earlier exposure was stored already)."""
    actions: list[Action] = [
        AssignmentItem.variant.set(new_variant),
        AssignmentItem.assigned_at.set(AssignmentItem.assigned_at | at),
        AssignmentItem.exposed_at.set(at),
    ]
    if marked is not None:
        actions.append(marked)
    if breakdown_values is not None:
        actions.append(AssignmentItem.breakdown_values.set(breakdown_values))
    try:
        # The attributes as they were (UPDATED_OLD): whether there was an exposure to move.
        answer = AssignmentItem._get_connection().update_item(
            experiment_id, range_key=distinct_id, actions=actions, condition=condition, return_values=UPDATED_OLD
        )
    except UpdateError as error:
        if _conditional_failure(error):
            return None, None
        raise
    old = answer.get(ATTRIBUTES, {})
    if AssignmentItem.exposed_at.attr_name not in old:
        return FIRST, None
    return EARLIER, old.get(AssignmentItem.variant.attr_name, {}).get("S")


def record_joined_exposure(
    experiment_id: str,
    root: str,
    variant: str,
    at: datetime,
    breakdown_values: list[Value] | None,
    seen: frozenset[str],
) -> str | None:
    """An exposure reported by an id joined to the person whose root keys the assignment: as if
    that id's own assignment had moved in at the join (absorb), the earlier exposure wins with its
    variant, and any other variant (the one it replaced, or those the person's ids reported) is
    kept in `variants_seen`, whatever order the join and the report arrived in. FIRST, EARLIER or
    None as record_exposure."""
    outcome, replaced = _exposure(experiment_id, root, variant, at, breakdown_values, takes_variant=True)
    item = AssignmentItem(experiment_id, root)
    for other in sorted(seen | {variant} | ({replaced} if replaced else set())):
        try:  # only where it differs from the person's variant: most reports name that one
            item.update(actions=[AssignmentItem.variants_seen.add({other})], condition=AssignmentItem.variant != other)
        except UpdateError as error:
            if not _conditional_failure(error):
                raise
    return outcome


def get(experiment_id: str, distinct_id: str) -> AssignmentItem | None:
    """The user's variant and first exposure (eventually consistent: both only ever get set)."""
    try:
        return AssignmentItem.get(experiment_id, distinct_id, attributes_to_get=["variant", "exposed_at"])
    except AssignmentItem.DoesNotExist:
        return None


def exposures_of(wanted: list[tuple[str, str]]) -> dict[tuple[str, str], AssignmentItem]:
    """The variant and first exposure of each (key, distinct_id) that has an assignment, strongly
    consistent (an exposure just recorded is seen): BatchGetItem, 100 keys a request, unprocessed
    keys sent again by PynamoDB."""
    if not wanted:
        return {}
    attributes = ["experiment_id", "distinct_id", "variant", "exposed_at"]
    found = AssignmentItem.batch_get(wanted, consistent_read=True, attributes_to_get=attributes)
    return {(item.experiment_id, item.distinct_id): item for item in found}


def whole_items(wanted: list[tuple[str, str]]) -> dict[tuple[str, str], AssignmentItem]:
    """The assignments of these (key, distinct_id), whole, strongly consistent (a person's, to move
    into another's): BatchGetItem, 100 keys a request."""
    if not wanted:
        return {}
    return {
        (item.experiment_id, item.distinct_id): item for item in AssignmentItem.batch_get(wanted, consistent_read=True)
    }


class Absorbed(NamedTuple):
    first: bool  # the moved exposure became the survivor's first
    replaced: str | None  # the variant of the survivor's own exposure it replaced, if any


def absorb(loser: AssignmentItem, partition: str, survivor: str) -> Absorbed:
    """Moves a person's assignment under a joined id (`loser`) into the survivor's, keyed
    (`partition`, `survivor`): the earlier exposure wins with its variant and breakdowns, the
    other's variants are kept in `variants_seen`, and the loser is marked `merged_into`.
    Idempotent: moving the same item again changes nothing."""
    before = whole_items([(partition, survivor)]).get((partition, survivor))
    first = False
    if loser.exposed_at is not None:
        outcome = record_exposure(
            partition, survivor, loser.variant, loser.exposed_at, loser.breakdown_values, takes_variant=True
        )
        first = outcome is not None
    else:
        AssignmentItem(partition, survivor).update(
            actions=[
                AssignmentItem.variant.set(AssignmentItem.variant | loser.variant),
                AssignmentItem.assigned_at.set(AssignmentItem.assigned_at | loser.assigned_at),
            ]
        )
    seen = loser.variants_exposed() | (before.variants_exposed() if before is not None else set())
    if seen:
        AssignmentItem(partition, survivor).update(actions=[AssignmentItem.variants_seen.add(seen)])
    loser.update(actions=[AssignmentItem.merged_into.set(survivor)])
    replaced = before.variant if first and before is not None and before.exposed_at is not None else None
    return Absorbed(first, replaced)


def exposed_users(partitions: list[str]) -> Iterator[AssignmentItem]:
    """Every exposed user of an experiment (its keys, from ExperimentItem.assignment_partitions),
    paged by PynamoDB."""
    for partition in partitions:
        yield from AssignmentItem.query(partition, filter_condition=AssignmentItem.exposed_at.exists())


def page(partition: str, start_after: str | None, size: int) -> list[AssignmentItem]:
    """Up to `size` users of one of an experiment's keys, in distinct_id order, after `start_after`
    (None: from the first): a page of the nightly job's work, exposed or not (a filter would let a
    page read any number of unexposed users to find `size` exposed ones)."""
    condition = AssignmentItem.distinct_id > start_after if start_after is not None else None
    return list(AssignmentItem.query(partition, condition, limit=size, page_size=size))


def save_values(
    user: AssignmentItem,
    values: list[float],
    pre_values: list[float],
    cutoff: datetime,
    metrics_key: str,
    pending: bool,
    computed_at: datetime,
) -> None:
    """Stores a user's recomputed values with what they were computed from, and when."""
    user.update(
        actions=[
            AssignmentItem.values_computed_at.set(computed_at),
            AssignmentItem.metric_values.set(values),
            AssignmentItem.pre_values.set(pre_values),
            AssignmentItem.values_exposed_at.set(user.exposed_at),
            AssignmentItem.values_cutoff.set(cutoff),
            AssignmentItem.values_metrics.set(metrics_key),
            AssignmentItem.values_pending.set(pending),
        ]
    )


def delete_experiment(partitions: list[str]) -> int:
    """Deletes every assignment of an experiment (its keys, from ExperimentItem.assignment_partitions)."""
    return sum(
        delete_each(AssignmentItem, AssignmentItem.query(partition, attributes_to_get=["experiment_id", "distinct_id"]))
        for partition in partitions
    )
