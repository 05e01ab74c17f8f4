"""A bandit's phases after the first, in the projects table: `phase#<experiment_id>#<NNNNN>`,
each with when it begins, each variant's share (basis points, experiments/bandit_weights.py),
why it was set and the probabilities it was set from. Phase 0 (equal shares from the launch) is
not stored. The experiment item holds the current phase's shares and every phase's start; these
items are the history the report shows.

A reweighting writes its phase and the experiment in one transaction, the experiment conditional
on its version: a phase is never stored without the experiment moving to it, nor twice. A phase
key is written once per reweighting (at most one an hour per bandit); the report reads them with
BatchGetItem, 100 keys a request (bandit_weights.MAX_PHASES: at most 6 requests).
"""

from datetime import datetime

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, connection, delete_each
from abacus.storage.experiments import ChangedMeanwhile, ExperimentItem

_BATCH = 100  # BatchGetItem's most keys


class PhaseItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    experiment_id = UnicodeAttribute()
    phase = NumberAttribute()
    begins = UTCDateTimeAttribute()
    decided_at = UTCDateTimeAttribute()
    weights = JSONAttribute()  # {variant: basis points}
    reason = UnicodeAttribute()  # in words: what moved the shares
    probability_best = JSONAttribute(null=True)  # {variant: probability}, what the shares were set from


def key(experiment_id: str, phase: int) -> str:
    return f"phase#{experiment_id}#{phase:05d}"


def start(experiment: ExperimentItem, phase: PhaseItem) -> None:
    """Stores the phase and the experiment moved to it (its `bandit` set), together or neither:
    ChangedMeanwhile when the experiment changed since it was read, or the phase exists."""
    try:
        with TransactWrite(connection=connection()) as transaction:
            transaction.save(phase, condition=PhaseItem.pk.does_not_exist())
            transaction.save(experiment)
    except TransactWriteError as error:
        if condition_failed(error):
            raise ChangedMeanwhile(experiment.key) from error
        raise


def of_experiment(experiment_id: str, phases: int) -> list[PhaseItem]:
    """Phases 1 to `phases` of the experiment, in order (those stored)."""
    keys = [key(experiment_id, number) for number in range(1, phases + 1)]
    found: dict[str, PhaseItem] = {}
    for first in range(0, len(keys), _BATCH):
        for item in PhaseItem.batch_get(keys[first : first + _BATCH]):
            found[item.pk] = item
    return [found[k] for k in keys if k in found]


def delete_experiment(experiment_id: str, phases: int) -> int:
    """Deletes an experiment's phases (with its project)."""
    return delete_each(PhaseItem, [PhaseItem(key(experiment_id, number)) for number in range(1, phases + 1)])


def phase_item(
    experiment_id: str,
    phase: int,
    begins: datetime,
    decided_at: datetime,
    weights: dict[str, int],
    reason: str,
    probability_best: dict[str, float] | None,
) -> PhaseItem:
    return PhaseItem(
        key(experiment_id, phase),
        experiment_id=experiment_id,
        phase=phase,
        begins=begins,
        decided_at=decided_at,
        weights=weights,
        reason=reason,
        probability_best=probability_best,
    )
