"""The nightly job fanned out: one experiment's computation (a run) is split into units of work,
each a page of at most computation.PAGE_USERS users of one of the experiment's shards (its assignments keys).

- plan (here): records the run (how many shards) and gives the first page of every shard;
- work (computation.py): computes one page's partial sums (abacus.nightly.page.users_sums) and stores them
  keyed by (run, shard, page), first write wins; gives the next page's unit, or, for a shard's last
  page, marks the shard done, and when it was the last shard, merges;
- merge (computation.py): adds the pages up, analyses them and stores the snapshot (unless a later run did).

Deployed, the planner (ResultsFunction, on the schedule or asked for a recompute) sends the first
units to SQS and NightlyWorkerFunction works them, sending each next page on. Every step is safe
to repeat: a unit delivered twice finds its page stored and carries on from it; a worker killed
half-way leaves its message to be delivered again; a rerun of the night is a new run that computes
the same snapshot from the same data. In tests the same steps run in one process
(abacus_local.nightly_inline). The planner imports no statistics (computation.py does): ResultsFunction
plans, and serves the console, without loading scipy.

A unit's work is bounded: computation.PAGE_USERS users (each one write at most), at most computation.PAGE_QUERIES
Queries of their events (a person is read under each of their ids: a page ends early at the person
who would pass it), plus the by-receipt index's shards that hold its users' events since the last
run. An experiment of N exposed users in S shards takes about N / PAGE_USERS + S units.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from abacus.core import keys
from abacus.core.documents import NightlyPlan
from abacus.experiments import definitions
from abacus.nightly import cutoffs, values, work_queue
from abacus.storage import experiments, nightly_runs, results
from abacus.storage.experiments import ExperimentItem

logger = logging.getLogger(__name__)


class NightNotPlanned(Exception):
    """Some experiments' runs were not planned or not all their units sent: the planner's
    invocation fails, so that Lambda retries it (twice, then NightlyDeadLetters), and the retry
    carries on where this attempt stopped (plan_night)."""


@dataclass(frozen=True)
class Unit:
    """One page of one shard of one run: what a message on the queue holds."""

    run: str  # date#started: the experiment's run (storage.runs)
    project: str
    experiment: str
    cutoff: datetime
    started: datetime  # when the run was planned: its `now`, the same for every page
    since: datetime | None  # the last snapshot's computation (None: each page finds its own)
    metrics_key: str  # the metrics the run counts; a page finding others fails the run
    shard: int
    shards: int | None  # the experiment's shard count (None: one unsharded key)
    partition: str
    page: int = 0
    start_after: str | None = None
    generation: int = 1  # of the experiment's key (keys.experiment_id): a reused key's is 2 or more

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for name in ("cutoff", "started", "since"):
            body[name] = body[name].isoformat() if body[name] is not None else None
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "Unit":
        times = {
            name: datetime.fromisoformat(body[name]) if body.get(name) is not None else None
            for name in ("cutoff", "started", "since")
        }
        return cls(**{**body, **times})

    @property
    def experiment_id(self) -> str:
        return keys.experiment_id(self.project, self.experiment, self.generation)


def run_id(cutoff: datetime, started: datetime) -> str:
    return f"{cutoffs.snapshot_date(cutoff)}#{started.isoformat()}"


def metrics_key_of(experiment: ExperimentItem) -> str:
    spec = definitions.definition(experiment)
    return values.metrics_key(spec.all_metrics(), values.pre_exposure_days(spec))


def plan(experiment: ExperimentItem, cutoff: datetime, now: datetime) -> list[Unit]:
    """Records a run of the experiment for `cutoff`, planned at `now`; its first units."""
    units = first_units(experiment, cutoff, now)
    nightly_runs.start(units[0].experiment_id, units[0].run, len(units), now)
    return units


def first_units(experiment: ExperimentItem, cutoff: datetime, now: datetime) -> list[Unit]:
    """The first unit of each shard of the experiment's run for `cutoff` planned at `now`."""
    latest = results.latest(experiment.experiment_id)
    run = run_id(cutoff, now)
    metrics_key = metrics_key_of(experiment)
    shards = experiment.shards
    return [
        Unit(run, experiment.project_id, experiment.key, cutoff, now, latest.computed_at if latest else None,
             metrics_key, shard, shards, partition, generation=experiment.generation_number)
        for shard, partition in enumerate(experiment.assignment_partitions())
    ]  # fmt: skip


def queue(units: list[Unit], send: Callable[[list[dict[str, Any]]], None]) -> None:
    """Sends a recompute's units; when the queue refuses some (work_queue.NotSent), the run is
    recorded as failed, so that nothing waits on it, and NotSent raised."""
    try:
        send([unit.to_json() for unit in units])
    except work_queue.NotSent as error:
        nightly_runs.failed(units[0].experiment_id, units[0].run, f"its units could not all be queued: {error}")
        raise


def plan_night(
    scheduled: datetime,
    now: datetime,
    send: Callable[[list[dict[str, Any]]], None],
    on_failure: Callable[[ExperimentItem, Exception], None],
    invocation: str,
) -> NightlyPlan:
    """Plans a run of every running experiment of every project launched before the cut-off,
    and of every stopped one until its final snapshot, and sends their first units (`send`);
    one experiment's failure to plan does not stop the rest. `invocation` is the Lambda request
    id, which Lambda's retries of a failed invocation keep: a retry plans its runs with the first
    attempt's start, so it finds them, skips those whose units were all sent and sends again the
    units of the others (all of them: a unit sent twice is harmless), rather than starting runs
    that would leave the first attempt's unfinished ones behind."""
    started, first_attempt = nightly_runs.planner_started(invocation, now)
    cutoff = cutoffs.capped_cutoff(scheduled, started)
    planned = units = failed = 0
    for experiment in experiments.all_to_analyse():
        if not cutoffs.launched_before(experiment, cutoff):
            continue  # a night before the launch (a rerun of a past night): nothing to count yet
        try:
            units += _plan_and_queue(experiment, cutoff, started, send, first_attempt)
        except Exception as error:  # noqa: BLE001 - one experiment's failure must not stop the others
            on_failure(experiment, error)
            failed += 1
            continue
        planned += 1
    return {"date": cutoffs.snapshot_date(cutoff), "planned": planned, "units": units, "failed": failed}


def _plan_and_queue(
    experiment: ExperimentItem,
    cutoff: datetime,
    started: datetime,
    send: Callable[[list[dict[str, Any]]], None],
    first_attempt: bool,
) -> int:
    """Plans the experiment's run started at `started` (or on a retry finds it), sends its first
    units and records them queued; how many units were sent (0: an earlier attempt sent them all)."""
    experiment_id = experiment.experiment_id
    run = run_id(cutoff, started)
    header = None if first_attempt else nightly_runs.header(experiment_id, run)
    if header is not None and header.queued_at is not None:
        return 0
    first = plan(experiment, cutoff, started) if header is None else first_units(experiment, cutoff, started)
    send([unit.to_json() for unit in first])
    nightly_runs.queued(experiment_id, run, datetime.now(UTC))
    return len(first)


def wait_for(unit: Unit, seconds: float, poll: float = 0.2) -> nightly_runs.RunPartItem | None:
    """The header of the unit's run once merged or failed, waiting up to `seconds`; None if still running."""
    deadline = time.monotonic() + seconds
    while True:
        header = nightly_runs.header(unit.experiment_id, unit.run)
        if header is not None and (header.merged_at is not None or header.error is not None):
            return header
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)
