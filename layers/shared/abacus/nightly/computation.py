"""One unit of a nightly run worked (NightlyWorkerFunction): a page of users' partial sums
computed and stored, the next page's unit given, and, when a run's last shard is done, the pages
merged, analysed (abacus.nightly.snapshot, which imports abacus.stats) and the snapshot stored and
followed up. runs.py plans the runs and sends their first units; it imports no statistics, so
that ResultsFunction, which plans and serves the console, does not load scipy (issue 33).
"""

import logging
from dataclasses import replace
from datetime import UTC, datetime

from abacus.core import retention
from abacus.core.settings import settings
from abacus.experiments import bandit_weights, definitions
from abacus.nightly import cutoffs, page, reweight, snapshot, sums, work_queue
from abacus.nightly.runs import Unit, metrics_key_of
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


def _current_experiment(unit: Unit) -> ExperimentItem:
    try:
        experiment = experiments.ExperimentItem.get(unit.project, unit.experiment)
    except experiments.ExperimentItem.DoesNotExist:
        raise RunFailed(f"experiment '{unit.experiment}' was deleted") from None
    if experiment.generation_number != unit.generation:
        raise RunFailed(f"experiment '{unit.experiment}' was archived and its key reused during the run")
    if metrics_key_of(experiment) != unit.metrics_key:
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
        reweight.after_snapshot(experiment, item.analysis, datetime.now(UTC))
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
    date = cutoffs.snapshot_date(cutoff)
    earlier = [item.analysis for item in results.history(experiment_id) if item.date < date]
    final = cutoffs.windows_all_final(experiment, spec.all_metrics(), cutoff, started)
    phases = reweight.phase_points(experiment, spec) if bandit_weights.allocation_of(spec) else None
    item = SnapshotItem(
        experiment_id,
        date,
        cutoff=cutoff,
        computed_at=started,
        analysis=snapshot.analysis(spec, experiment, cutoff, total, earlier, phases),
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
