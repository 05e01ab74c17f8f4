"""The results API's domain: snapshots by date, the daily history, recomputing now, and signed
links that open the report page in a browser without the admin key in the URL."""

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from abacus import experiments, keys, lifecycle, nightly, nightly_runs, signing, work_queue
from abacus.documents import (
    HistoryDay,
    HistoryVariant,
    PendingResults,
    Results,
    ResultsHistory,
    Snapshot,
    VariantAnalysis,
)
from abacus.errors import Conflict, Invalid, NotFound, Unauthorized
from abacus.storage import results as store

LINK_LIFETIME = timedelta(minutes=15)
LINK_CLOCK_SKEW = timedelta(minutes=1)  # two environments' clocks may differ: see console_session.CLOCK_SKEW
# How long a recompute waits for its run (API Gateway ends a request at 30 s).
RECOMPUTE_WAIT_SECONDS = 20.0


def pending(key: str, status: str) -> PendingResults:
    when = "after its first full day running" if status == lifecycle.RUNNING else "once it is launched"
    return {
        "experiment": key,
        "status": "pending",
        "message": f"no results yet: the nightly job computes the first snapshot {when}",
    }


def snapshot(project_id: str, key: str, date: str | None = None) -> Results:
    """The latest snapshot, or the one of `date` (YYYY-MM-DD); pending before the first."""
    experiment = experiments.get(project_id, key)
    experiment_id = keys.experiment_id(project_id, key)
    if date is not None:
        try:
            datetime.fromisoformat(date)
        except ValueError:
            raise Invalid("date: expected YYYY-MM-DD", field="date") from None
        found = store.at(experiment_id, date)
        if found is None:
            raise NotFound(f"no results for {date}", field="date")
        return {"status": "ready", **nightly.snapshot_to_api(found, key)}
    latest = store.latest(experiment_id)
    if latest is None:
        return pending(key, experiment.status)
    return {"status": "ready", **nightly.snapshot_to_api(latest, key)}


def snapshots(project_id: str, key: str) -> list[Snapshot]:
    """Every snapshot's analysis, oldest first."""
    experiments.get(project_id, key)
    return [nightly.snapshot_to_api(item, key) for item in store.history(keys.experiment_id(project_id, key))]


def history(project_id: str, key: str) -> ResultsHistory:
    """The daily series: per day, exposures and per variant the mean, lift, interval, P(best)."""
    return {"experiment": key, "days": [_history_day(day) for day in snapshots(project_id, key)]}


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


def recompute(
    project_id: str,
    key: str,
    now: datetime,
    as_of: str | None = None,
    send: Callable[[list[dict[str, Any]]], None] = work_queue.send,
    wait_seconds: float = RECOMPUTE_WAIT_SECONDS,
) -> Results:
    """Computes and stores a snapshot now (data up to now), or for the past day `as_of`, through
    the nightly job's queue as the nightly run does: ready when the run finishes within
    `wait_seconds`, else pending (computing on; read it later)."""
    experiment = experiments.get(project_id, key)
    if experiment.started_at is None:
        raise Conflict(f"experiment '{key}' never ran: there is nothing to analyse; {_to_run(key, experiment.status)}")
    cutoff = nightly.cutoff_of_date(as_of) if as_of else now
    if cutoff > now + timedelta(days=1):
        raise Invalid("as_of: a day that has not happened", field="as_of")
    if not nightly.launched_before(experiment, cutoff):
        raise Conflict(
            f"experiment '{key}' was launched on {experiment.started_at.date().isoformat()}: "
            "there are no results before its launch",
            field="as_of" if as_of else None,
        )
    units = nightly_runs.plan(experiment, cutoff, now)
    send([unit.to_json() for unit in units])
    date = nightly.snapshot_date(cutoff)
    finished = nightly_runs.wait_for(units[0], wait_seconds)
    if finished is None:
        return {
            "experiment": key,
            "status": "pending",
            "message": f"computing the snapshot of {date}: read it in a minute at "
            f"GET /experiments/{key}/results?date={date}",
        }
    if finished.error is not None:
        raise _run_failed(key, finished.error, as_of)
    stored = store.at(keys.experiment_id(project_id, key), date)
    if stored is None:  # merged, and removed since (the experiment deleted meanwhile)
        raise NotFound(f"no results for {date}", field="date")
    return {"status": "ready", **nightly.snapshot_to_api(stored, key)}


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
