"""A recompute whose run takes longer than its wait (issue 28): the API answers 202 pending; the
console's Results page shows the run's progress (its shards done out of its shards, from the run's
header) and reloads itself with a meta refresh (no script needed) until the snapshot is stored,
or says plainly that it is late once snapshots.RECOMPUTE_BOUND has passed, and what to do; a run
that cannot finish says why. Through ResultsFunction's handler, the nightly worker held back (its
units queued but not worked), then run."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from abacus.core import keys
from abacus.core.timeouts import RECOMPUTE_WAIT_SECONDS
from abacus.nightly import runs, work_queue
from abacus.results import snapshots
from abacus.routes import console
from abacus.storage import nightly_runs
from abacus.storage.experiments import ExperimentItem
from abacus_local import nightly_inline
from tests.conftest import answer, invoke, sample_event
from tests.integration.test_console import session_cookie
from tests.integration.test_console_stages import FORM, assign, page, post

KEY = FORM["key"]
SHARDS = 16  # the experiment's users' shards (AssignmentShards' default): one unit each here
REFRESH = '<meta http-equiv="refresh" content="3">'


@pytest.fixture
def held(monkeypatch) -> list[dict]:
    """The nightly job's units, queued but not worked: the worker has not run yet."""
    units: list[dict] = []
    monkeypatch.setattr(work_queue, "send", lambda bodies, queue_url=None: units.extend(bodies))
    monkeypatch.setattr(console, "CONSOLE_RECOMPUTE_WAIT_SECONDS", 0.5)
    # The product's own wait (conftest.py lets in-process runs take longer).
    monkeypatch.setattr(snapshots, "RECOMPUTE_WAIT_SECONDS", RECOMPUTE_WAIT_SECONDS)
    return units


@pytest.fixture
def running(project) -> str:
    """A running experiment with a few users exposed; the console's session cookie."""
    cookie = session_cookie()
    post("console_create", cookie, FORM)
    post("console_experiment_action", cookie, {"action": "launch", "confirmed": "yes"})
    for n in range(12):
        assign(f"user-{n}")
    return cookie


def recompute_from_the_console(cookie: str) -> str:
    """Recompute now, as its button posts it; the run the Results page then follows."""
    done = post("console_experiment_action", cookie, {"action": "recompute"})
    assert done["statusCode"] == 303, done
    location = urlsplit(done["headers"]["Location"])
    assert location.path == f"/console/experiments/{KEY}"
    [run] = parse_qs(location.query)["run"]
    return run


def results_page(cookie: str, run: str) -> str:
    shown = page("console_experiment", cookie, run=run)
    assert shown["statusCode"] == 200, shown
    return shown["body"]


def test_the_results_page_follows_a_recompute_until_its_snapshot_is_stored(running, held):
    run = recompute_from_the_console(running)
    assert len(held) == SHARDS
    body = results_page(running, run)
    date = run.split("#")[0]
    assert REFRESH in body  # reloads itself, no script needed
    assert f"Recomputing the snapshot of {date}: 0 of {SHARDS} shards of its users done" in body
    assert f'<progress max="{SHARDS}" value="0"' in body and 'class="verdict' not in body

    nightly_inline.work_here(held[:6])  # the worker gets to some of its units
    body = results_page(running, run)
    assert REFRESH in body and f"6 of {SHARDS} shards of its users done" in body

    nightly_inline.work_here(held[6:])  # and to the rest: the run merges its snapshot
    body = results_page(running, run)
    assert REFRESH not in body and "<progress" not in body
    assert f"Recomputed: the snapshot of {date} is stored, below." in body
    assert 'class="verdict' in body  # the snapshot, shown


def test_past_its_bound_the_page_says_the_recompute_is_late_and_what_to_do(running, held):
    """Runs planned (data up to now) a minute before and a minute after the bound's start."""
    now = datetime.now(UTC)
    experiment = ExperimentItem.get("test", KEY)
    almost = runs.plan(experiment, now, now - snapshots.RECOMPUTE_BOUND + timedelta(minutes=1))
    late = runs.plan(experiment, now, now - snapshots.RECOMPUTE_BOUND - timedelta(minutes=1))
    nightly_inline.work_here([unit.to_json() for unit in late[:3]])  # three of the late run's units
    assert REFRESH in results_page(running, almost[0].run)
    body = results_page(running, late[0].run)
    assert REFRESH not in body
    date = late[0].run.split("#")[0]
    assert f"The snapshot of {date} is still not stored 15 minutes after the recompute started" in body
    assert f"(3 of {SHARDS} shards of its users done), so this page no longer reloads itself" in body
    assert "NightlyWorkDeadLetters" in body and "reload this page to look again" in body


def test_a_run_that_cannot_finish_says_why_and_stops_reloading(running, held):
    run = recompute_from_the_console(running)
    nightly_runs.failed(keys.experiment_id("test", KEY), run, "raw events of 2026-11-01 have expired")
    body = results_page(running, run)
    assert REFRESH not in body
    assert "The recompute could not finish: raw events of 2026-11-01 have expired." in body


def test_a_run_no_longer_kept_or_malformed(running, held):
    gone = "2026-11-24#2026-11-25T10:00:00.123456+00:00"
    body = results_page(running, gone)
    assert REFRESH not in body and "This recompute&#39;s run is no longer kept" in body
    malformed = page("console_experiment", running, run="2026-11-24#soon")
    assert malformed["statusCode"] == 422 and answer(malformed)[1]["error"]["field"] == "run"


def test_the_api_answers_202_pending_after_its_wait_and_the_snapshot_once_stored(running, held):
    """POST /experiments/{key}/results waits RECOMPUTE_WAIT_SECONDS for the run, then answers 202
    saying where to read the snapshot; there it is once the worker has run."""
    started = datetime.now(UTC)
    status, body = answer(invoke("ResultsFunction", sample_event("recompute_results")))
    waited = (datetime.now(UTC) - started).total_seconds()
    assert status == 202 and body["status"] == "pending", body
    assert waited >= RECOMPUTE_WAIT_SECONDS
    date = re.search(r"\?date=(\d{4}-\d{2}-\d{2})", body["message"]).group(1)  # type: ignore[union-attr]
    path = f"/experiments/{KEY}/results"
    event = sample_event("get_results", path=path)
    event["rawQueryString"], event["queryStringParameters"] = f"date={date}", {"date": date}
    assert answer(invoke("ResultsFunction", event))[0] == 404  # not yet stored
    nightly_inline.work_here(held)
    status, snapshot = answer(invoke("ResultsFunction", event))
    assert status == 200 and snapshot["status"] == "ready" and snapshot["date"] == date
    assert sum(row["exposures"] for row in snapshot["variants"]) == 12
