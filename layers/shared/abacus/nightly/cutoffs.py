"""The nightly job's calendar: the cut-off a run counts up to, the date a snapshot is named for,
whether an experiment ran before a cut-off and whether a stopped one's snapshot is final.

Pure, and free of statistics: the planner (ResultsFunction, which serves the console too) and the
results API read these without importing abacus.stats (issue 33: a sign-in page does not load scipy).
"""

from datetime import UTC, datetime, time, timedelta
from typing import Protocol

from abacus.core import retention
from abacus.experiments import lifecycle
from abacus.experiments.metrics_spec import MetricSpec, components


class Timeline(Protocol):
    """When an experiment ran (abacus.storage.experiments.ExperimentItem)."""

    @property
    def status(self) -> str: ...

    @property
    def started_at(self) -> datetime | None: ...

    @property
    def stopped_at(self) -> datetime | None: ...


def cutoff_for(scheduled_time: datetime) -> datetime:
    """Data up to the start of the scheduled day (UTC) are analysed: a 03:00 run covers yesterday."""
    return datetime.combine(scheduled_time.astimezone(UTC).date(), time(0), tzinfo=UTC)


def snapshot_date(cutoff: datetime) -> str:
    """A snapshot is named for the last day of data it covers: a midnight cut-off covers the day
    before; a cut-off during a day (a recompute now) covers that day so far."""
    return (cutoff - timedelta(microseconds=1)).date().isoformat()


def capped_cutoff(scheduled_time: datetime, now: datetime) -> datetime:
    """The night's cut-off (cutoff_for), never later than `now`: a run started early (tonight's job
    invoked by hand) counts the day so far, never time that has not happened yet."""
    return min(cutoff_for(scheduled_time), now)


def cutoff_words(cutoff: datetime) -> str:
    """What a snapshot with this cut-off counts: whole days, or the day so far."""
    day = snapshot_date(cutoff)
    if cutoff.astimezone(UTC).time() == time(0):
        return f"data up to the end of {day} (UTC)"
    return (
        f"data up to {cutoff.astimezone(UTC):%H:%M} UTC on {day}, when it was computed: the day so far (a cut-off "
        "never passes the time it is computed at)"
    )


def cutoff_of_date(date: str) -> datetime:
    """The cut-off of the snapshot named `date`: the midnight after it (UTC)."""
    return datetime.combine(datetime.fromisoformat(date).date() + timedelta(days=1), time(0), tzinfo=UTC)


def launched_before(experiment: Timeline, cutoff: datetime) -> bool:
    """Whether the experiment ran before the cut-off: exposures count from its launch on, so a
    cut-off at or before the launch has nothing to count, and gets no snapshot."""
    return experiment.started_at is not None and experiment.started_at < cutoff


def windows_all_final(experiment: Timeline, metrics: list[MetricSpec], cutoff: datetime, now: datetime) -> bool:
    """Whether a stopped experiment's windows have all closed by the cut-off, and no late event can
    change them any more (retention.py): every exposure came before the stop."""
    if experiment.status != lifecycle.COMPLETE or experiment.stopped_at is None:
        return False
    longest = max(metric.window_days for metric in components(metrics))
    last_window_end = experiment.stopped_at + timedelta(days=longest)
    return cutoff >= last_window_end and retention.settled(last_window_end, now)
