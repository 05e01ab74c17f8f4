"""Results as CSV through ResultsFunction (issue 31): the results route (a day's rows) and the
history (every day's), asked for by `Accept: text/csv` or `?format=csv`; JSON otherwise, errors
always; and the console's Download CSV, a signed-in session's attachment. Every number is the JSON
answer's of the same day, from snapshots the nightly job's code computed (two days of a launched
experiment with secondary and guardrail metrics)."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from abacus.core import keys
from abacus.experiments import definitions
from abacus.experiments.spec import ExperimentCreate
from abacus.results import snapshots
from abacus.results.csv_export import COLUMNS
from abacus.storage import assignments, events, results
from abacus.storage.events import EventItem
from abacus.storage.results import SnapshotItem
from abacus_local import nightly_inline
from tests.conftest import ADMIN_KEY, answer, assignment_partition, invoke, sample_event
from tests.report_history import history

KEY = "csv-checkout"
START = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = ("2026-11-01", "2026-11-02")
SPEC = {
    "key": KEY,
    "name": "CSV checkout",
    "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
    "primary_metric": {"event": "purchase"},
    "secondary_metrics": [
        {"event": "-refund"},  # a name a spreadsheet would run as a formula
        {"event": "order", "kind": "sum", "property": "amount"},
    ],
    "guardrail_metrics": [{"event": "error", "kind": "count", "margin": 0.02}],
}
METRICS = 4  # primary, two secondary, a guardrail
VARIANTS = 2
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def launched(project_id: str = "test") -> None:
    definitions.create(project_id, ExperimentCreate.model_validate(SPEC), START - timedelta(days=1))
    definitions.apply(project_id, KEY, "launch", START)


@pytest.fixture
def two_days(project) -> None:
    """40 users, half exposed on each of the two days, their events after their exposure; each
    day's snapshot recomputed as the nightly job computes it."""
    launched()
    stored = []
    for index in range(40):
        user, variant = f"user-{index}", ["control", "b"][index % 2]
        exposed = START + timedelta(days=index // 20, hours=1, minutes=index)
        assignments.assign(assignment_partition(KEY, user), user, variant, exposed, expose=True)
        done: list[tuple[str, dict]] = [("purchase", {})] * (index % 3 == 0) + [("-refund", {})] * (index % 5 == 0)
        done += [("order", {"amount": 10 + index})] * (index % 4 == 0) + [("error", {})] * (index % 2)
        for n, (name, properties) in enumerate(done):
            at = exposed + timedelta(minutes=n + 1)
            uuid = f"{index}-{n}"
            stored.append(
                EventItem(
                    keys.user_id("test", user),
                    uuid,
                    event=name,
                    distinct_id=user,
                    timestamp=at,
                    received_at=at,
                    properties=properties,
                    expires_at=0,
                    **events.receipt_keys("test", at, user, uuid),
                )
            )
    assert events.write_all(stored) == []
    for day in DAYS:
        computed = snapshots.recompute("test", KEY, START + timedelta(days=3), as_of=day, send=nightly_inline.work_here)
        assert computed["status"] == "ready", computed


def results_request(
    route: str = "get_results", accept: str | None = None, key: str = KEY, headers: dict | None = None, **query: str
) -> dict:
    path = f"/experiments/{key}/results" + ("/history" if route == "get_results_history" else "")
    event = sample_event(route, path=path, **(headers or {}))
    event["pathParameters"] = {"key": key}
    if accept is not None:
        event["headers"]["accept"] = accept
    if query:
        event["rawQueryString"], event["queryStringParameters"] = urlencode(query), query
    return invoke("ResultsFunction", event)


def rows_of(response: dict) -> list[dict[str, str]]:
    assert response["statusCode"] == 200, response
    assert response["headers"]["Content-Type"] == "text/csv; charset=utf-8"
    reader = csv.DictReader(io.StringIO(response["body"], newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def filename(response: dict) -> str:
    found = re.fullmatch(r'attachment; filename="([^"]+)"', response["headers"]["Content-Disposition"])
    assert found is not None, response["headers"]
    return found.group(1)


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def check_against_json(rows: list[dict[str, str]], snapshot: dict) -> None:
    """The CSV's rows of a day hold the JSON snapshot's numbers, metric by metric and variant by variant."""
    analyses = [
        ("primary", snapshot),
        *(("secondary", m) for m in snapshot["secondary_metrics"]),
        *(("guardrail", m) for m in snapshot["guardrail_metrics"]),
    ]
    expected = [(role, analysis, variant) for role, analysis in analyses for variant in analysis["variants"]]
    assert len(rows) == len(expected) == METRICS * VARIANTS
    for row, (role, analysis, variant) in zip(rows, expected, strict=True):
        assert (row["date"], row["experiment"], row["metric_role"]) == (snapshot["date"], KEY, role)
        assert row["metric"] == "'" * analysis["metric"]["event"].startswith("-") + analysis["metric"]["event"]
        assert row["variant"] == variant["key"] and int(row["exposures"]) == variant["exposures"]
        assert number(row["mean"]) == variant["mean"]
        assert number(row["standard_error"]) == variant["standard_error"]
        assert number(row["conversions"]) == variant.get("conversions")
        assert number(row["value_sum"]) == variant.get("sum")
        lift = variant.get("lift") or {}
        assert number(row["relative_lift"]) == lift.get("relative")
        assert number(row["relative_ci_low"]) == (lift.get("relative_ci") or [None])[0]
        assert number(row["p_value"]) == variant.get("p_value")
        assert row["guardrail_status"] == analysis.get("guardrail", {}).get("status", {}).get(variant["key"], "")
        assert row["decision"] == snapshot["verdict"]["decision"]


# The two ways of asking for CSV (each test tries both: computing the two days takes seconds).
WAYS: list[dict] = [{"accept": "text/csv"}, {"format": "csv"}]


def test_a_days_results_as_csv_by_accept_or_by_format(two_days):
    for ask in WAYS:
        a_days_results(ask)


def a_days_results(ask: dict) -> None:
    for day in DAYS:
        response = results_request(date=day, **ask)
        status, snapshot = answer(results_request(date=day))
        assert status == 200 and snapshot["date"] == day
        check_against_json(rows_of(response), snapshot)
        assert filename(response) == f"{KEY}-results-{day}.csv"
        assert response["headers"]["Vary"] == "Accept"
    latest = results_request(**ask)  # without a date: the latest day's
    assert filename(latest) == f"{KEY}-results-{DAYS[-1]}.csv"
    assert latest["body"] == results_request(date=DAYS[-1], **ask)["body"]
    # The day's numbers moved with the second day's users: the rows are each day's own.
    assert results_request(date=DAYS[0], **ask)["body"] != latest["body"]


def test_the_history_as_csv_is_every_days_rows_oldest_first(two_days):
    for ask in WAYS:
        the_history(ask)


def the_history(ask: dict) -> None:
    response = results_request("get_results_history", **ask)
    rows = rows_of(response)
    assert len(rows) == len(DAYS) * METRICS * VARIANTS
    assert rows == [row for day in DAYS for row in rows_of(results_request(date=day, format="csv"))]
    assert filename(response) == f"{KEY}-results-history.csv"
    # The JSON history's numbers, for the rows it holds too.
    status, history = answer(results_request("get_results_history"))
    assert status == 200
    primary = [row for row in rows if row["metric_role"] == "primary"]
    listed = [(day["date"], v["key"], v["exposures"], v["mean"]) for day in history["days"] for v in day["variants"]]
    assert [(r["date"], r["variant"], int(r["exposures"]), float(r["mean"])) for r in primary] == listed


@pytest.fixture
def stored_day(project) -> None:
    """The experiment launched, with one day's snapshot as the stats engine analyses one (stored
    as the nightly job stores it): for the tests whose numbers do not matter."""
    launched()
    [day] = history(1)
    analysis = {
        name: value
        for name, value in day.items()
        if name not in ("experiment", "date", "cutoff", "computed_at", "final")
    }
    cutoff = datetime.fromisoformat(day["cutoff"])
    results.put(
        SnapshotItem(keys.experiment_id("test", KEY), DAYS[0], cutoff=cutoff, computed_at=cutoff, analysis=analysis)
    )


def test_json_unless_csv_is_asked_for(stored_day):
    status, expected = answer(results_request(date=DAYS[0]))
    assert status == 200 and expected["status"] == "ready"
    # No header, a type that is neither (not 406), a browser's, a tie: JSON (test_downloads.py has more).
    for accept in (None, "application/xml", BROWSER_ACCEPT, "text/csv, application/json"):
        day, every_day = results_request(accept=accept, date=DAYS[0]), results_request("get_results_history", accept)
        for response in (day, every_day):
            assert response["statusCode"] == 200, (accept, response)
            assert response["headers"]["Content-Type"] == "application/json", accept
            assert response["headers"]["Vary"] == "Accept"
            assert "Content-Disposition" not in response["headers"]
        assert answer(day) == (200, expected) and answer(every_day)[1]["days"][0]["date"] == DAYS[0]
    # `format=json` decides over the Accept header, as `format=csv` does.
    chosen = results_request(accept="text/csv", date=DAYS[0], format="json")
    assert answer(chosen) == (200, expected)
    assert rows_of(results_request(accept="application/json", date=DAYS[0], format="csv"))
    # CSV weighed above JSON by q: CSV.
    assert rows_of(results_request(accept="application/json;q=0.5, text/csv", date=DAYS[0]))


@pytest.mark.parametrize("value", ["xml", "CSV", ""])
def test_a_format_neither_json_nor_csv_is_a_422_naming_format(project, value):
    launched()
    for route in ("get_results", "get_results_history"):
        status, body = answer(results_request(route, format=value))
        assert status == 422, body
        assert body["error"]["field"] == "format" and "'json' or 'csv'" in body["error"]["message"], body


def test_before_the_first_snapshot_the_csv_is_the_header_row_alone(project):
    """Pending: the JSON route's 200, and a table without rows (the JSON says when it will have some)."""
    launched()
    status, pending = answer(results_request())
    assert status == 200 and pending["status"] == "pending"
    for route in ("get_results", "get_results_history"):
        response = results_request(route, "text/csv")
        assert rows_of(response) == []
        assert response["body"] == ",".join(COLUMNS) + "\r\n"
    assert filename(results_request(format="csv")) == f"{KEY}-results.csv"


def test_errors_stay_json_in_the_apis_shape(stored_day):
    cases = [
        (results_request(accept="text/csv", key="nope"), 404, "key"),
        (results_request(accept="text/csv", date="2026-10-30"), 404, "date"),
        (results_request(format="csv", date="2026-13-01"), 422, "date"),
        (results_request(accept="text/csv", headers={"authorization": "Bearer not-a-key"}), 401, "Authorization"),
    ]
    for response, expected_status, field in cases:
        assert response["headers"]["Content-Type"] == "application/json", response
        status, body = answer(response)
        assert status == expected_status and body["error"].get("field") == field, body


# The console: signed in with the admin key, a session cookie.


def session_cookie() -> str:
    event = sample_event("console_sign_in")
    event["body"] = f"admin_key={ADMIN_KEY}"
    result = invoke("ResultsFunction", event)
    assert result["statusCode"] == 303, result
    return result["cookies"][0].split(";", 1)[0]


def console(name: str, cookie: str | None, path: str, **query: str) -> dict:
    event = sample_event(name, path=path)
    event["pathParameters"] = {"key": path.split("/")[3]}
    if cookie:
        event["cookies"] = [cookie]
    if query:
        event["rawQueryString"], event["queryStringParameters"] = urlencode(query), query
    return invoke("ResultsFunction", event)


def download(cookie: str | None, key: str = KEY, **query: str) -> dict:
    return console("console_results_csv", cookie, f"/console/experiments/{key}/results.csv", **query)


def test_the_results_page_links_the_days_csv_which_downloads_as_an_attachment(two_days):
    cookie = session_cookie()
    page = console("console_experiment", cookie, f"/console/experiments/{KEY}")["body"]
    link = f'href="/console/experiments/{KEY}/results.csv?date={DAYS[-1]}">Download CSV</a>'
    assert link in page
    past = console("console_experiment", cookie, f"/console/experiments/{KEY}", date=DAYS[0])["body"]
    assert f'href="/console/experiments/{KEY}/results.csv?date={DAYS[0]}">Download CSV</a>' in past
    for day in DAYS:
        response = download(cookie, date=day)
        assert filename(response) == f"{KEY}-results-{day}.csv"
        assert response["body"] == results_request(format="csv", date=day)["body"]  # the API's rows
        assert response["headers"]["Cache-Control"] == "no-store"  # a project's results: never kept
        assert response["headers"]["X-Content-Type-Options"] == "nosniff"
        assert len(rows_of(response)) == METRICS * VARIANTS
    assert filename(download(cookie)) == f"{KEY}-results-{DAYS[-1]}.csv"  # no date: the latest


def test_the_console_download_needs_a_session_and_says_what_is_missing(stored_day):
    refused = download(None, date=DAYS[0])
    assert refused["statusCode"] == 303 and refused["headers"]["Location"] == "/console/sign-in"
    cookie = session_cookie()
    other_day = download(cookie, date="2026-10-30")
    assert other_day["statusCode"] == 404 and "no results for 2026-10-30 to download" in other_day["body"]
    assert other_day["headers"]["Content-Type"].startswith("text/html")
    missing = download(cookie, key="nope")
    assert missing["statusCode"] == 404 and "no experiment keyed &#39;nope&#39;" in missing["body"]
    malformed = download(cookie, date="1 Nov")
    assert malformed["statusCode"] == 422 and json.loads(malformed["body"])["error"]["field"] == "date"


def test_no_download_before_the_first_snapshot(project):
    launched()
    cookie = session_cookie()
    page = console("console_experiment", cookie, f"/console/experiments/{KEY}")["body"]
    assert "Download CSV" not in page
    response = download(cookie)
    assert response["statusCode"] == 404 and "no results yet to download" in response["body"]
