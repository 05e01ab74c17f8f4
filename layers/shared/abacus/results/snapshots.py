"""The results API's domain: snapshots by date (each ready answer with its decision card, from
the snapshot and the one before it), the daily history, recomputing now, and signed links that
open the report page in a browser without the admin key in the URL."""

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from abacus.core.documents import (
    HistoryDay,
    HistoryVariant,
    MetricWarning,
    PendingResults,
    ReadyResults,
    Results,
    ResultsHistory,
    Snapshot,
    SnapshotAnalysis,
    VariantAnalysis,
)
from abacus.core.errors import Conflict, Invalid, NotFound, Unauthorized
from abacus.core.timeouts import RECOMPUTE_FOLLOW_SECONDS, RECOMPUTE_WAIT_SECONDS
from abacus.experiments import definitions, lifecycle, received_events
from abacus.nightly import runs, work_queue
from abacus.nightly.cutoffs import cutoff_of_date, cutoff_words, launched_before, snapshot_date
from abacus.results import decision_card, signing
from abacus.storage import nightly_runs, results

LINK_LIFETIME = timedelta(minutes=15)
LINK_CLOCK_SKEW = timedelta(minutes=1)  # two environments' clocks may differ: see console_session.CLOCK_SKEW


def pending(key: str, status: str, warnings: list[MetricWarning] | None = None) -> PendingResults:
    when = "after its first full day running" if status == lifecycle.RUNNING else "once it is launched"
    answer: PendingResults = {
        "experiment": key,
        "status": "pending",
        "message": f"no results yet: the nightly job computes the first snapshot {when}",
    }
    if warnings is not None:
        answer["warnings"] = warnings
    return answer


def snapshot(project_id: str, key: str, date: str | None = None) -> Results:
    """The latest snapshot, or the one of `date` (YYYY-MM-DD); pending before the first."""
    experiment = definitions.get(project_id, key)
    experiment_id = experiment.experiment_id
    if date is not None:
        try:
            datetime.fromisoformat(date)
        except ValueError:
            raise Invalid("date: expected YYYY-MM-DD", field="date") from None
        found = _with_the_one_before(experiment_id, date)
        if not found:
            raise NotFound(f"no results for {date}", field="date")
        return _ready(found, key, received_events.experiment_warnings(experiment))
    latest = _with_the_one_before(experiment_id)
    warnings = received_events.experiment_warnings(experiment)
    if not latest:
        return pending(key, experiment.status, warnings if experiment.started_at else None)
    return _ready(latest, key, warnings)


def _with_the_one_before(experiment_id: str, date: str | None = None) -> list[results.SnapshotItem]:
    """The snapshot of `date` (the latest without one) and the snapshot before it, for the decision
    card's changes: the one Query that read the snapshot alone, now of two items, newest first
    ([] when there is no snapshot of `date`)."""
    on_or_before = None if date is None else results.SnapshotItem.date <= date
    found = list(
        results.SnapshotItem.query(experiment_id, range_key_condition=on_or_before, scan_index_forward=False, limit=2)
    )
    return found if found and (date is None or found[0].date == date) else []


def _ready(found: list[results.SnapshotItem], key: str, warnings: list[MetricWarning]) -> ReadyResults:
    """A snapshot as the API answers it, with its decision card (changes since `found[1]`, if any)."""
    shown = snapshot_to_api(found[0], key, warnings)
    previous = snapshot_to_api(found[1], key) if len(found) > 1 else None
    shown["decision_card"] = decision_card.card(shown, previous)
    return {"status": "ready", **shown}


def snapshots(project_id: str, key: str, with_warnings: bool = True) -> list[Snapshot]:
    """Every snapshot's analysis, oldest first; each with the experiment's warnings as of now
    (the metric events not received since the launch: received_events.py), unless not wanted."""
    experiment = definitions.get(project_id, key)
    warnings = received_events.experiment_warnings(experiment) if with_warnings else None
    return [snapshot_to_api(item, key, warnings) for item in results.history(experiment.experiment_id)]


def history(project_id: str, key: str) -> ResultsHistory:
    """The daily series: per day, exposures and per variant the mean, lift, interval, P(best)."""
    days = snapshots(project_id, key, with_warnings=False)
    return {"experiment": key, "days": [_history_day(day) for day in days]}


def _history_day(day: Snapshot) -> HistoryDay:
    return {
        "date": day["date"],
        "exposures": sum(row["exposures"] for row in day["variants"]),
        "verdict": day["verdict"]["decision"],
        "variants": [_history_variant(row) for row in day["variants"]],
    }


def _history_variant(row: VariantAnalysis) -> HistoryVariant:
    lift = row.get("lift")
    return {
        "key": row["key"],
        "exposures": row["exposures"],
        "mean": row["mean"],
        "probability_to_be_best": row.get("probability_to_be_best"),
        "lift": lift["relative"] if lift else None,
        "relative_ci": lift["relative_ci"] if lift else None,
    }


@dataclass(frozen=True)
class Recompute:
    """A recompute under way: the run computing the snapshot of `date` (storage.runs keys it)."""

    project_id: str
    key: str
    first_unit: runs.Unit
    date: str
    as_of: str | None

    @property
    def run(self) -> str:
        return self.first_unit.run

    @property
    def experiment_id(self) -> str:
        return self.first_unit.experiment_id


def start_recompute(
    project_id: str,
    key: str,
    now: datetime,
    as_of: str | None = None,
    send: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Recompute:
    """Plans a run computing the snapshot of now (data up to now), or of the past day `as_of`, and
    sends its units to the nightly job's queue (`send`, by default work_queue.send)."""
    experiment = definitions.get(project_id, key)
    if experiment.started_at is None:
        raise Conflict(f"experiment '{key}' never ran: there is nothing to analyse; {_to_run(key, experiment.status)}")
    cutoff = cutoff_of_date(as_of) if as_of else now
    if cutoff > now + timedelta(days=1):
        raise Invalid("as_of: a day that has not happened", field="as_of")
    cutoff = min(cutoff, now)  # today: the day so far, never time that has not happened yet
    if not launched_before(experiment, cutoff):
        raise Conflict(
            f"experiment '{key}' was launched on {experiment.started_at.date().isoformat()}: "
            "there are no results before its launch",
            field="as_of" if as_of else None,
        )
    units = runs.plan(experiment, cutoff, now)
    runs.queue(units, send or work_queue.send)  # work_queue.NotSent (503): the run recorded as failed
    return Recompute(project_id, key, units[0], snapshot_date(cutoff), as_of)


def finish_recompute(started: Recompute, wait_seconds: float | None = None) -> Results:
    """The recompute's snapshot once its run finishes within `wait_seconds` (RECOMPUTE_WAIT_SECONDS
    by default), else pending (computing on; read it later). Conflict when the run cannot finish."""
    wait = RECOMPUTE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    finished = runs.wait_for(started.first_unit, wait)
    if finished is None:
        return {
            "experiment": started.key,
            "status": "pending",
            "message": f"computing the snapshot of {started.date}: read it in a minute at "
            f"GET /experiments/{started.key}/results?date={started.date}",
        }
    if finished.error is not None:
        raise _run_failed(started.key, finished.error, started.as_of)
    stored = _with_the_one_before(started.experiment_id, started.date)
    if not stored:  # merged, and removed since (the experiment deleted meanwhile)
        raise NotFound(f"no results for {started.date}", field="date")
    warnings = received_events.experiment_warnings(definitions.get(started.project_id, started.key))
    return _ready(stored, started.key, warnings)


def recompute(
    project_id: str,
    key: str,
    now: datetime,
    as_of: str | None = None,
    send: Callable[[list[dict[str, Any]]], None] | None = None,
    wait_seconds: float | None = None,
) -> Results:
    """Computes and stores a snapshot now (data up to now), or for the past day `as_of`, through
    the nightly job's queue as the nightly run does: ready when the run finishes within
    `wait_seconds`, else pending (computing on; read it later)."""
    return finish_recompute(start_recompute(project_id, key, now, as_of, send), wait_seconds)


RECOMPUTE_BOUND = timedelta(seconds=RECOMPUTE_FOLLOW_SECONDS)
# A run is `date#started` (runs.run_id), started being the recompute's time, in UTC.
RUN_PATTERN = r"^\d{4}-\d{2}-\d{2}#\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00:00$"


@dataclass(frozen=True)
class RunProgress:
    """A recompute's run as its header tells it: its shards done out of its shards."""

    date: str  # the snapshot's
    started: datetime
    shards: int
    shards_done: int
    merged: bool
    error: str | None

    @property
    def finished(self) -> bool:
        return self.merged or self.error is not None

    def late(self, now: datetime) -> bool:
        """Still running RECOMPUTE_BOUND after it started."""
        return not self.finished and now - self.started > RECOMPUTE_BOUND


def run_progress(project_id: str, key: str, run: str) -> RunProgress | None:
    """Where the experiment's run `run` is; None when no such run is kept (runs expire after 16 days)."""
    header = nightly_runs.header(definitions.get(project_id, key).experiment_id, run)
    if header is None:
        return None
    date, _, started = run.partition("#")
    return RunProgress(
        date=date,
        started=datetime.fromisoformat(started),
        shards=int(header.shards or 0),
        shards_done=len(header.shards_done or ()),
        merged=header.merged_at is not None,
        error=header.error,
    )


def follow(
    started: Recompute, seconds: float, on_progress: Callable[[RunProgress], None], poll: float = 1.0
) -> RunProgress | None:
    """Reads the recompute's progress every `poll` seconds, giving each read to `on_progress`,
    until its run finishes or `seconds` pass; the last read."""
    deadline = time.monotonic() + seconds
    while True:
        progress = run_progress(started.project_id, started.key, started.run)
        if progress is not None:
            on_progress(progress)
        if progress is None or progress.finished or time.monotonic() >= deadline:
            return progress
        time.sleep(poll)


def failure(started: Recompute, error: str) -> Conflict:
    """A recompute's run that cannot finish, as the API's 409 says it."""
    return _run_failed(started.key, error, started.as_of)


def _run_failed(key: str, error: str, as_of: str | None) -> Conflict:
    """A run that cannot finish, as the 409 of a recompute (events expired, for most)."""
    if as_of is None:
        return Conflict(f"{error}; the snapshots stored stay readable: GET /experiments/{key}/results")
    return Conflict(
        f"{error}; recompute a later day, or read the snapshot stored for that day: "
        f"GET /experiments/{key}/results?date={as_of}",
        field="as_of",
    )


def _to_run(key: str, status: str) -> str:
    if status == lifecycle.DRAFT:
        return f"launch it (POST /experiments/{key}/launch) and recompute once users are exposed"
    return "it was archived as a draft: create a new experiment (another key) and launch it"


def _signature(project_id: str, key: str, expires: int) -> str:
    signing_key = signing.project_key(project_id)
    if signing_key is None:
        raise NotFound("no such project")
    return signing.mac(signing_key, "report", project_id, key, expires)


def signed_query(project_id: str, key: str, now: datetime) -> dict[str, str]:
    """Query parameters that open the report for LINK_LIFETIME, signed with the project's signing
    key (signing.py): rotating the admin key, or the stack's signing secret, voids every link."""
    expires = int((now + LINK_LIFETIME).timestamp())
    return {"project": project_id, "expires": str(expires), "signature": _signature(project_id, key, expires)}


def check_link(key: str, query: dict[str, str], now: datetime) -> str:
    """The project a signed link opens; Unauthorized when it is forged or expired, or ends later
    than a link made now would (whatever signed it)."""
    try:
        project_id, expires, signature = query["project"], int(query["expires"]), query["signature"]
    except (KeyError, ValueError):
        raise Unauthorized("send the admin key, or open a signed link", field="Authorization") from None
    if expires < now.timestamp():
        raise Unauthorized("this link has expired: ask for a new one", field="signature")
    if expires > (now + LINK_LIFETIME + LINK_CLOCK_SKEW).timestamp():
        raise Unauthorized("this link is not valid", field="signature")
    try:
        expected = _signature(project_id, key, expires)
    except NotFound:
        raise Unauthorized("this link is not valid", field="signature") from None
    if not hmac.compare_digest(expected, signature):
        raise Unauthorized("this link is not valid", field="signature")
    return project_id


class Stored(Protocol):
    """A stored snapshot (abacus.storage.results.SnapshotItem)."""

    @property
    def date(self) -> str: ...

    @property
    def cutoff(self) -> datetime: ...

    @property
    def computed_at(self) -> datetime: ...

    @property
    def final(self) -> bool: ...

    @property
    def analysis(self) -> Any: ...  # SnapshotAnalysis, as stored (JSON)


def snapshot_to_api(snapshot: Stored, experiment_key: str, warnings: list[MetricWarning] | None = None) -> Snapshot:
    """The stored snapshot as the API shows it; with `warnings` when given: the metric events not
    received since the launch, which this module reads with the snapshot (never stored:
    they come from the event names received, as of the request)."""
    analysis: SnapshotAnalysis = snapshot.analysis
    # A cast: mypy finds no `warnings` in the analysis (never stored there), which Snapshot may have.
    api = cast(
        Snapshot,
        {
            "experiment": experiment_key,
            "date": snapshot.date,
            "cutoff": snapshot.cutoff.isoformat(),
            "covers": cutoff_words(snapshot.cutoff),
            "computed_at": snapshot.computed_at.isoformat(),
            "final": bool(snapshot.final),
            **analysis,
        },
    )
    if warnings is not None:
        api["warnings"] = warnings
    return api
