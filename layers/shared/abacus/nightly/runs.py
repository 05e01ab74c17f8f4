"""The nightly job fanned out: one experiment's computation (a run) is split into units of work,
each a page of at most PAGE_USERS users of one of the experiment's shards (its assignments keys).

- plan: records the run (how many shards) and gives the first page of every shard;
- work: computes one page's partial sums (abacus.nightly.page.users_sums) and stores them keyed by
  (run, shard, page), first write wins; gives the next page's unit, or, for a shard's last page,
  marks the shard done, and when it was the last shard, merges;
- merge: adds the pages up, analyses them and stores the snapshot (unless a later run did).

Deployed, the planner (ResultsFunction, on the schedule or asked for a recompute) sends the first
units to SQS and NightlyWorkerFunction works them, sending each next page on. Every step is safe
to repeat: a unit delivered twice finds its page stored and carries on from it; a worker killed
half-way leaves its message to be delivered again; a rerun of the night is a new run that computes
the same snapshot from the same data. In tests the same steps run in one process
(abacus_local.nightly_inline).

A unit's work is bounded: PAGE_USERS users (each one write at most), at most PAGE_QUERIES Queries
of their events (a person is read under each of their ids: a page ends early at the person who
would pass it), plus the by-receipt index's shards that hold its users' events since the last
run. An experiment of N exposed users in S shards takes about N / PAGE_USERS + S units.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from abacus.core import keys, retention
from abacus.core.documents import NightlyPlan
from abacus.core.settings import settings
from abacus.experiments import definitions
from abacus.nightly import page, snapshot, sums, values, work_queue
from abacus.storage import assignments, experiments, nightly_runs, results
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem

logger = logging.getLogger(__name__)

# Users a unit of work holds: each needs at most a Query and an UpdateItem, 16 at a time, so a
# page takes seconds on DynamoDB (bench/RESULTS.md), far inside the worker's timeout.
PAGE_USERS = 5000
# Queries of events a unit may make: a person of n ids takes n (persons have at most 100 ids, so
# one always fits); 4 a person on a full page.
PAGE_QUERIES = 20_000


class RunFailed(Exception):
    """A run that cannot finish: retrying its units would fail the same way (events expired, the
    experiment deleted or its metrics changed meanwhile). Recorded on the run, not retried."""


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
    return f"{snapshot.snapshot_date(cutoff)}#{started.isoformat()}"


def _metrics_key(experiment: ExperimentItem) -> str:
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
    metrics_key = _metrics_key(experiment)
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


def _current_experiment(unit: Unit) -> ExperimentItem:
    try:
        experiment = experiments.ExperimentItem.get(unit.project, unit.experiment)
    except experiments.ExperimentItem.DoesNotExist:
        raise RunFailed(f"experiment '{unit.experiment}' was deleted") from None
    if experiment.generation_number != unit.generation:
        raise RunFailed(f"experiment '{unit.experiment}' was archived and its key reused during the run")
    if _metrics_key(experiment) != unit.metrics_key:
        raise RunFailed(f"experiment '{unit.experiment}' changed its metrics during the run: the next run counts them")
    return experiment


def work(unit: Unit) -> Unit | SnapshotItem | None:
    """Does one unit: the next page's unit, the snapshot when this unit finished the run, or None
    (the shard is done, others are not yet; or a later run had stored its snapshot already)."""
    stored = nightly_runs.page(unit.experiment_id, unit.run, unit.shard, unit.page)
    if stored is None:
        experiment = _current_experiment(unit)
        read = assignments.page(unit.partition, unit.start_after, PAGE_USERS)
        found = page.persons_of(experiment.project_id, read)
        users = page.within_queries(read, found, PAGE_QUERIES)
        last = users[-1].distinct_id if len(users) < len(read) or len(read) == PAGE_USERS else None
        try:
            page_sums = page.users_sums(
                experiment, users, unit.cutoff, unit.since, unit.started, (unit.shard, unit.shards), found
            )
        except retention.EventsExpired as error:
            raise RunFailed(str(error)) from None
        bounds = (unit.start_after, last)
        stored = nightly_runs.put_page(
            unit.experiment_id, unit.run, unit.shard, unit.page, bounds, page_sums.to_json(), unit.started
        )
    if stored.last is not None:
        return replace(unit, page=unit.page + 1, start_after=stored.last)
    done, shards = nightly_runs.shard_done(unit.experiment_id, unit.run, unit.shard)
    return merge(unit) if done >= shards else None


def merge(unit: Unit) -> SnapshotItem | None:
    """Adds up every page of the run and stores the snapshot; None when a later run has stored
    one for the same day already. Safe to repeat: the same pages give the same snapshot."""
    experiment = _current_experiment(unit)
    spec = definitions.definition(experiment)
    total = sums.PageSums([v.key for v in spec.variants], spec.all_metrics(), len(spec.breakdowns))
    for stored in _complete_pages(unit.experiment_id, unit.run):
        total.merge(sums.PageSums.from_json(stored.stored_sums()))
    item = analyse_and_store(experiment, unit.cutoff, unit.started, total)
    nightly_runs.merged(unit.experiment_id, unit.run, datetime.now(UTC))
    if item is not None:
        follow_up(experiment, item)
    return item


def follow_up(experiment: ExperimentItem, item: SnapshotItem) -> None:
    """Queues the stored snapshot's follow-up (alerts, automatic actions: abacus.alerts). Never
    fails the run: a follow-up not sent is caught up by the next snapshot's, since alerts are
    found from what a snapshot shows and sent once, not from what changed."""
    if not settings.alerts_queue_url:
        return
    message = {
        "type": "snapshot",
        "project": experiment.project_id,
        "experiment": experiment.experiment_key,
        "generation": experiment.generation_number,
        "date": item.date,
    }
    try:
        work_queue.follow_up(message)
    except Exception:
        logger.exception("snapshot follow-up not queued", extra={"experiment": experiment.experiment_id})


def analyse_and_store(
    experiment: ExperimentItem, cutoff: datetime, started: datetime, total: sums.PageSums
) -> SnapshotItem | None:
    """The experiment's snapshot for `cutoff` from its users' sums (computed by the run that
    started at `started`), stored unless a run started later stored one for the same day already.
    A stopped experiment counts the users exposed before it stopped, their events within their
    windows as they close after it; its snapshot is final (and the nightly job done with it) once
    no event can change any of those windows (abacus.nightly.snapshot)."""
    spec = definitions.definition(experiment)
    experiment_id = experiment.experiment_id
    # The group-sequential test's earlier looks: one snapshot per night the job ran (one Query).
    date = snapshot.snapshot_date(cutoff)
    earlier = [item.analysis for item in results.history(experiment_id) if item.date < date]
    final = snapshot.windows_all_final(experiment, spec.all_metrics(), cutoff, started)
    item = SnapshotItem(
        experiment_id,
        date,
        cutoff=cutoff,
        computed_at=started,
        analysis=snapshot.analysis(spec, experiment, cutoff, total, earlier),
        final=final,
    )
    if not results.put_unless_newer(item):
        return None
    if final:
        experiments.mark_results_final(experiment)
    return item


def _complete_pages(experiment_id: str, run: str) -> list[nightly_runs.RunPartItem]:
    """The run's pages, checked to form, for every shard, one unbroken chain from its first user
    to its last (each page starting after the one before ends, the last ending at the end)."""
    header = nightly_runs.header(experiment_id, run)
    pages = nightly_runs.pages(experiment_id, run)
    by_shard: dict[int, list[nightly_runs.RunPartItem]] = {}
    for stored in pages:
        by_shard.setdefault(nightly_runs.shard_of_page(stored), []).append(stored)
    shards = int(header.shards) if header is not None and header.shards is not None else 0
    for shard in range(shards):
        chain = by_shard.get(shard, [])
        previous_end: str | None = None
        for number, stored in enumerate(chain):
            if stored.part != nightly_runs.page_part(run, shard, number) or stored.start_after != previous_end:
                raise RuntimeError(f"run {run}: shard {shard}'s pages are not one chain")
            previous_end = stored.last
        if not chain or chain[-1].last is not None:
            raise RuntimeError(f"run {run}: shard {shard} is not done")
    return pages


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
    cutoff = snapshot.capped_cutoff(scheduled, started)
    planned = units = failed = 0
    for experiment in experiments.all_to_analyse():
        if not snapshot.launched_before(experiment, cutoff):
            continue  # a night before the launch (a rerun of a past night): nothing to count yet
        try:
            units += _plan_and_queue(experiment, cutoff, started, send, first_attempt)
        except Exception as error:  # noqa: BLE001 - one experiment's failure must not stop the others
            on_failure(experiment, error)
            failed += 1
            continue
        planned += 1
    return {"date": snapshot.snapshot_date(cutoff), "planned": planned, "units": units, "failed": failed}


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
