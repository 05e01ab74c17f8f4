"""The nightly job: for each running experiment, count exposures and conversions per variant up to
the cut-off, analyse them with abacus.stats and store a dated snapshot.

Only ResultsFunction imports this module: it is the one function with the stats layer."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta

from abacus import keys
from abacus.schemas import CONTROL
from abacus.stats import CONVERSION, Settings, VariantData, analyse
from abacus.storage import assignments, events
from abacus.storage import experiments as experiment_store
from abacus.storage import results as result_store
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem


def cutoff_for(scheduled_time: datetime) -> datetime:
    """Data up to the start of the scheduled day (UTC) are analysed: a 03:00 run covers yesterday."""
    return datetime.combine(scheduled_time.astimezone(UTC).date(), time(0), tzinfo=UTC)


def snapshot_date(cutoff: datetime) -> str:
    """A snapshot is named for the last day of data it covers."""
    return (cutoff - timedelta(days=1)).date().isoformat()


def count_conversions(project_id: str, experiment: ExperimentItem, cutoff: datetime) -> list[VariantData]:
    """Exposures per variant (first exposure before the cut-off), and conversions: exposed users
    with the metric event at or after their first exposure, within the conversion window."""
    exposures: Counter[str] = Counter()
    conversions: Counter[str] = Counter()
    window = timedelta(days=int(experiment.primary_metric.window_days))
    for user in assignments.exposed_users(keys.experiment_id(project_id, experiment.key)):
        if user.exposed_at >= cutoff:
            continue
        exposures[user.variant] += 1
        end = min(user.exposed_at + window, cutoff)
        found = events.user_events(
            keys.user_id(project_id, user.distinct_id), experiment.primary_metric.event, user.exposed_at, end
        )
        if next(iter(found), None) is not None:
            conversions[user.variant] += 1
    return [VariantData(v.key, exposures[v.key], conversions[v.key]) for v in experiment.variants]


def compute_snapshot(experiment: ExperimentItem, cutoff: datetime, now: datetime) -> SnapshotItem:
    counts = count_conversions(experiment.project_id, experiment, cutoff)
    settings = Settings(
        control=CONTROL,
        weights={v.key: float(v.weight) for v in experiment.variants},
        mde=float(experiment.minimum_detectable_effect),
        days_running=max(0.0, (cutoff - experiment.started_at).total_seconds() / 86400),
    )
    analysis = analyse(CONVERSION, counts, settings)
    analysis["metric"] = {"event": experiment.primary_metric.event, "kind": experiment.primary_metric.kind}
    snapshot = SnapshotItem(
        keys.experiment_id(experiment.project_id, experiment.key),
        snapshot_date(cutoff),
        cutoff=cutoff,
        computed_at=now,
        analysis=analysis,
    )
    result_store.put(snapshot)
    return snapshot


def run(scheduled_time: datetime, now: datetime, on_failure) -> dict:
    """Snapshots every running experiment of every project; one failure does not stop the rest
    (`on_failure(experiment, error)` is told of it). Returns the counts for the run's summary."""
    cutoff = cutoff_for(scheduled_time)
    analysed = failed = 0
    for experiment in experiment_store.all_running():
        try:
            compute_snapshot(experiment, cutoff, now)
            analysed += 1
        except Exception as error:  # noqa: BLE001 - one experiment's failure must not stop the others
            on_failure(experiment, error)
            failed += 1
    return {"date": snapshot_date(cutoff), "analysed": analysed, "failed": failed}


def snapshot_to_api(snapshot: SnapshotItem, experiment_key: str) -> dict:
    return {
        "experiment": experiment_key,
        "date": snapshot.date,
        "cutoff": snapshot.cutoff.isoformat(),
        "computed_at": snapshot.computed_at.isoformat(),
        **snapshot.analysis,
    }
