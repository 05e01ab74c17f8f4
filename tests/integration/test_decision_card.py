"""The decision card through ResultsFunction (issue 32): the results answer (latest, dated and
recomputed) carries the card of its snapshot and of the one before it, agreeing with `verdict`,
read with the one Query that read the snapshot alone; the report page, the console's Results page
and the terminal open with it. Snapshots as the stats engine analyses them, stored as the nightly
job stores them."""

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from abacus.core.settings import settings
from abacus.experiments import definitions
from abacus.experiments.spec import ExperimentCreate
from abacus.http import responses
from abacus.results import snapshots
from abacus.results.report import text_report
from abacus.storage import results
from abacus.storage.results import SnapshotItem
from tests.capacity import CapacityRecorder
from tests.conftest import answer, invoke, sample_event
from tests.integration.test_console import session_cookie
from tests.report_history import FIRST_DAY, history

KEY = "new-checkout"  # the sample events'
DAYS = 3
API_ONLY = ("experiment", "date", "cutoff", "covers", "computed_at", "final")


@pytest.fixture
def stored(project) -> list[dict[str, Any]]:
    """The experiment launched, with three days' snapshots stored; the days as analysed, oldest first."""
    launch = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    spec = {
        "key": KEY,
        "name": "One-page checkout",
        "variants": [
            {"key": key, "weight": 34 if key == "control" else 33} for key in ("control", "one-page", "two-page")
        ],
        "primary_metric": {"event": "purchase"},
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), launch - timedelta(days=1))
    definitions.apply("test", KEY, "launch", launch)
    experiment_id = definitions.get("test", KEY).experiment_id
    days = cast(list[dict[str, Any]], history(DAYS))
    for day in days:
        cutoff = datetime.fromisoformat(day["cutoff"])
        analysis = {name: value for name, value in day.items() if name not in API_ONLY}
        results.put(SnapshotItem(experiment_id, day["date"], cutoff=cutoff, computed_at=cutoff, analysis=analysis))
    return days


def get_results(date: str | None = None) -> dict[str, Any]:
    event = sample_event("get_results")
    if date is not None:
        event["rawQueryString"], event["queryStringParameters"] = f"date={date}", {"date": date}
    status, body = answer(invoke("ResultsFunction", event))
    assert status == 200 and body["status"] == "ready", body
    return body


def test_the_results_answer_carries_the_card_of_its_verdict_and_the_day_before(stored):
    recorder = CapacityRecorder()
    with recorder.recording():
        latest = get_results()
    # The snapshot and the one before it came from one Query of the results table, as the snapshot alone did.
    queries = [
        request
        for request in recorder.requests
        if any(charge.table == settings.results_table for charge in request.charges)
    ]
    assert [request.operation for request in queries] == ["Query"], recorder.requests
    card, verdict = latest["decision_card"], latest["verdict"]
    assert responses.Results.model_validate(latest).decision_card == card  # as the OpenAPI document says
    assert (card["decision"], card["variant"], card["date"]) == (
        verdict["decision"],
        verdict["variant"],
        latest["date"],
    )
    assert card["days_left"] == (verdict.get("days_left") if verdict["decision"] == "keep_running" else None)
    compared = next(row for row in latest["variants"] if row["key"] == card["treatment"])
    assert [card["interval"]["low"], card["interval"]["high"]] == compared["lift"]["relative_ci"]
    assert card["lift"]["relative"] == compared["lift"]["relative"]
    assert card["expected_loss"]["expected_loss"] == compared["expected_loss"]
    assert card["probability_to_be_best"]["value"] == compared["probability_to_be_best"]
    assert "P(best)" not in card["headline"]
    before = stored[-2]
    assert card["changes"]["since"] == before["date"]
    assert card["changes"]["decision_before"] == before["verdict"]["decision"]
    assert card["changes"]["exposures_added"] == sum(r["exposures"] for r in stored[-1]["variants"]) - sum(
        r["exposures"] for r in before["variants"]
    )
    # No purchase event was ever received: the card notes it, as the answer's warnings do.
    assert [warning["field"] for warning in latest["warnings"]] == ["primary_metric.event"]
    assert len(card["notes"]) == 1 and "`purchase`" in card["notes"][0]


def test_a_dated_answer_compares_with_the_day_before_it_and_the_first_with_none(stored):
    second = get_results(stored[1]["date"])["decision_card"]
    assert second["date"] == stored[1]["date"] and second["changes"]["since"] == stored[0]["date"]
    assert second["decision"] == stored[1]["verdict"]["decision"]
    assert get_results(stored[0]["date"])["decision_card"]["changes"] is None
    event = sample_event("get_results")
    event["rawQueryString"], event["queryStringParameters"] = "date=2026-08-01", {"date": "2026-08-01"}
    assert answer(invoke("ResultsFunction", event))[0] == 404  # no snapshot that day: not the one before


def test_the_report_the_console_and_the_terminal_open_with_the_same_card(stored):
    card = get_results()["decision_card"]
    report = invoke("ResultsFunction", sample_event("get_report"))
    assert report["statusCode"] == 200
    request = sample_event("console_experiment")
    request["cookies"] = [session_cookie()]
    console = invoke("ResultsFunction", request)
    assert console["statusCode"] == 200
    for page in (html.unescape(report["body"]), html.unescape(console["body"])):
        assert re.findall(r'<p class="verdict verdict-\w+">([^<]*)</p>', page) == [card["headline"]]
        assert card["changes"]["text"] in page and card["probability_to_be_best"]["text"] in page
    terminal = text_report.results_text(snapshots.snapshot("test", KEY), KEY).splitlines()
    assert terminal[terminal.index(card["headline"]) + 1] == card["why"]
    assert card["changes"]["text"] in terminal
