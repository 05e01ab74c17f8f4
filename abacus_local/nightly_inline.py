"""The nightly job in one process, for the tests and the benchmarks: the steps of
abacus.nightly.runs (plan) and abacus.nightly.computation (work, merge) run one after another
here, in place of the queue and NightlyWorkerFunction that run them deployed.
The deployed functions never import this module."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from abacus.core.documents import NightlySummary
from abacus.nightly import computation, cutoffs, runs
from abacus.storage import experiments, nightly_runs, results
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem


def run_inline(unit: runs.Unit) -> SnapshotItem | None:
    """Works a shard's units one after another in this process; the snapshot if it finished the run."""
    step: runs.Unit | SnapshotItem | None = unit
    while isinstance(step, runs.Unit):
        step = computation.work(step)
    return step


def work_here(bodies: list[dict[str, Any]]) -> None:
    """Works queued units (their JSON) in this process, in place of the queue: a `send` for
    results.recompute in tests. A RunFailed is recorded on the run, as the worker records it."""
    for body in bodies:
        unit = runs.Unit.from_json(body)
        try:
            run_inline(unit)
        except computation.RunFailed as error:
            nightly_runs.failed(unit.experiment_id, unit.run, str(error))


def compute_snapshot(experiment: ExperimentItem, cutoff: datetime, now: datetime) -> SnapshotItem:
    """One experiment's run, every unit in this process (tests; the deployed job uses the queue):
    its snapshot, or the one a later run stored already. RunFailed is recorded on the run, then raised."""
    result = None
    for unit in runs.plan(experiment, cutoff, now):
        try:
            result = run_inline(unit) or result
        except computation.RunFailed as error:
            nightly_runs.failed(unit.experiment_id, unit.run, str(error))
            raise
    if result is None:
        result = results.at(experiment.experiment_id, cutoffs.snapshot_date(cutoff))
    if result is None:
        raise RuntimeError("the run finished without a snapshot")
    return result


def run_all(
    scheduled: datetime, now: datetime, on_failure: Callable[[ExperimentItem, Exception], None]
) -> NightlySummary:
    """The whole night in this process (tests): every experiment plan_night would plan, run
    through; one failure does not stop the rest."""
    cutoff = cutoffs.capped_cutoff(scheduled, now)
    analysed = failed = 0
    for experiment in experiments.all_to_analyse():
        if not cutoffs.launched_before(experiment, cutoff):
            continue
        try:
            compute_snapshot(experiment, cutoff, now)
            analysed += 1
        except Exception as error:  # noqa: BLE001 - one experiment's failure must not stop the others
            on_failure(experiment, error)
            failed += 1
    return {"date": cutoffs.snapshot_date(cutoff), "analysed": analysed, "failed": failed}
