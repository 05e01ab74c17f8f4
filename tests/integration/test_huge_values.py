"""Values far beyond any amount (issue 13, item 7), through ingestion, the nightly job on moto and
the results API: refused where a sum metric reads them, ignored when stored anyway (or cached
from before), and never a NaN or an Infinity in a stored snapshot or an answer."""

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from abacus.core import keys
from abacus.experiments import definitions
from abacus.experiments.spec import ExperimentCreate
from abacus.http.api import json_response
from abacus.nightly.values import metrics_key, pre_exposure_days
from abacus.stats.analysis import Settings, VariantData, analyse
from abacus.storage import assignments, events
from abacus.storage.events import EventItem
from abacus.storage.results import SnapshotItem
from tests.conftest import TOKEN, answer, assignment_partition, invoke, sample_event, sample_path, stored_assignment

START = datetime(2026, 11, 1, tzinfo=UTC)
EXPOSED = START + timedelta(days=1)
KEY = "revenue"


def strict(text: str) -> Any:
    """JSON as RFC 8259 has it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def create_experiment() -> ExperimentCreate:
    spec = ExperimentCreate.model_validate(
        {
            "key": KEY,
            "name": "Revenue",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "buy", "kind": "sum", "property": "amount", "window_days": 30},
        }
    )
    definitions.create("test", spec, START)
    definitions.apply("test", KEY, "launch", START)
    return spec


def user(distinct_id: str, variant: str, amounts: list[float], before: tuple[float, ...] = ()) -> list[EventItem]:
    """A user exposed on day 1, with purchases of these amounts on day 2 (and of `before` on day 0,
    in the pre-exposure window): the events, to be written straight to the table."""
    assignments.assign(assignment_partition(KEY, distinct_id), distinct_id, variant, EXPOSED, expose=True)
    times = [EXPOSED + timedelta(days=1)] * len(amounts) + [EXPOSED - timedelta(days=1)] * len(before)
    return [
        EventItem(
            keys.user_id("test", distinct_id),
            f"{distinct_id}-{index}",
            event="buy",
            distinct_id=distinct_id,
            timestamp=at,
            received_at=at,
            properties={"amount": amount},
            expires_at=0,
            **events.receipt_keys("test", at, distinct_id, f"{distinct_id}-{index}"),
        )
        for index, (amount, at) in enumerate(zip([*amounts, *before], times, strict=True))
    ]


def store_old_snapshot(date: str) -> None:
    """A snapshot as the job stored it before the fix: Infinity and NaN in its JSON."""
    old: Any = analyse(
        "mean",
        [VariantData("control", 4, sum=100.0, sum_squares=3000.0), VariantData("b", 4, sum=120.0, sum_squares=4100.0)],
        Settings(),
    )
    old["variants"][0] |= {"sum": 1e308, "sum_squares": math.inf, "mean": math.inf}
    old["variants"][1] |= {"p_value": math.nan, "p_value_fixed": math.nan}
    old |= {"metric": {"event": "buy", "kind": "sum", "property": "amount", "window_days": 30}, "secondary_metrics": []}
    item = {
        "experiment_id": {"S": keys.experiment_id("test", KEY)},
        "date": {"S": date},
        "cutoff": {"S": "2026-11-21T00:00:00.000000+0000"},
        "computed_at": {"S": "2026-11-21T03:00:00.000000+0000"},
        "analysis": {"S": json.dumps(old)},  # Python writes NaN and Infinity unless told not to
    }
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=SnapshotItem.Meta.table_name, Item=item)


def get(path: str, **query: str) -> tuple[int, str]:
    event = sample_event("get_results", path=path)
    event["rawQueryString"] = "&".join(f"{name}={value}" for name, value in query.items())
    event["queryStringParameters"] = query or None
    response = invoke("ResultsFunction", event)
    return response["statusCode"], response["body"]


def test_the_nightly_job_ignores_values_beyond_the_bound_and_stores_only_finite_json(project):
    """An amount of 1e200, two users of 1e308 (their sum is Infinity), a user with two of them, one
    in the pre-exposure window, and a user whose value of 1e200 was cached before the fix: written
    straight to the tables, as ingestion now refuses them. The job used to fail the experiment
    every night (v.sum**2 overflowed), and two values of 1e308 made `mean: Infinity`."""
    spec = create_experiment()
    stored = [
        *(item for n, amount in enumerate([10.0, 20.0, 30.0, 40.0]) for item in user(f"c{n}", "control", [amount])),
        *(item for n, amount in enumerate([15.0, 25.0, 35.0, 45.0]) for item in user(f"b{n}", "b", [amount])),
        *user("max-1", "control", [1e308]),
        *user("max-2", "control", [1e308]),
        *user("cached", "control", [5.0]),
        *user("huge", "b", [1e200]),
        *user("twice", "b", [1e308, 1e308]),
        *user("early", "b", [12.0], before=(1e308,)),
    ]
    assert events.write_all(stored) == []
    cached = stored_assignment(KEY, "cached")
    key = metrics_key([spec.primary_metric], pre_exposure_days(spec))
    assignments.save_values(cached, [1e200], [0.0], START + timedelta(days=3), key, False, START + timedelta(days=3))
    store_old_snapshot("2026-11-20")

    summary = invoke("ResultsFunction", json.loads(sample_path("nightly").read_text()))
    assert summary == {"date": "2026-11-24", "planned": 1, "units": 16, "failed": 0}

    raw = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=SnapshotItem.Meta.table_name,
        Key={"experiment_id": {"S": keys.experiment_id("test", KEY)}, "date": {"S": "2026-11-24"}},
    )
    stored_analysis = strict(raw["Item"]["analysis"]["S"])
    rows = {row["key"]: row for row in stored_analysis["variants"]}
    # Every user counts; the values beyond the bound add nothing (as a value that is not a number).
    assert {k: (row["exposures"], row["sum"], row["sum_squares"]) for k, row in rows.items()} == {
        "control": (7, 105.0, 3025.0),
        "b": (7, 132.0, 4244.0),
    }
    assert stored_assignment(KEY, "cached").metric_values == [5.0]

    status, body = get(f"/experiments/{KEY}/results")
    assert status == 200 and strict(body)["variants"][0]["sum"] == 105.0
    # The snapshot stored before the fix is served as valid JSON: its NaN and Infinity are null.
    status, body = get(f"/experiments/{KEY}/results", date="2026-11-20")
    old = strict(body)
    assert status == 200 and old["variants"][0]["mean"] is None and old["variants"][1]["p_value"] is None
    status, body = get(f"/experiments/{KEY}/results/history")
    assert status == 200 and [day["date"] for day in strict(body)["days"]] == ["2026-11-20", "2026-11-24"]
    report = invoke("ResultsFunction", sample_event("get_report", path=f"/experiments/{KEY}/report"))
    assert report["statusCode"] == 200  # the page reads the old snapshot too


def test_a_snapshot_is_never_stored_with_a_number_json_cannot_hold(project):
    item = SnapshotItem("test#x", "2026-11-24", cutoff=START, computed_at=START, analysis={"p_value": math.nan})
    with pytest.raises(ValueError, match="not JSON compliant"):
        item.save()


def test_answers_are_valid_json_whatever_they_hold():
    response = json_response(200, {"mean": math.inf, "p_value": math.nan, "ok": [1.5, -math.inf]})
    assert response.body is not None and strict(response.body) == {"mean": None, "p_value": None, "ok": [1.5, None]}


def post(events_: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return answer(invoke("IngestFunction", sample_event("post_events", body={"token": TOKEN, "events": events_})))


def test_a_value_beyond_the_bound_is_refused_where_a_sum_metric_reads_it(project):
    """Events are schemaless: a property is bounded where a sum metric of the project reads it
    (the event and the property), beyond +/-1e15; any other property may hold any number."""
    create_experiment()
    status, body = post(
        [
            {"event": "buy", "distinct_id": "a", "properties": {"amount": 1e200}},
            {"event": "buy", "distinct_id": "a", "properties": {"amount": 1e15}},  # the bound itself
            {"event": "buy", "distinct_id": "a", "properties": {"amount": -1.5e15}},
            {"event": "buy", "distinct_id": "a", "properties": {"amount": 10**20}},
            {"event": "buy", "distinct_id": "a", "properties": {"sent_ns": 1.7e18, "amount": 3}},
            {"event": "view", "distinct_id": "a", "properties": {"amount": 1e200}},  # no sum metric of views
            {"event": "buy", "distinct_id": "a", "properties": {"amount": "1e200"}},  # not a number: not summed
        ]
    )
    assert status == 200 and body["accepted"] == 4, body
    assert [refused["index"] for refused in body["rejected"]] == [0, 2, 3]
    assert all(refused["error"].startswith("properties.amount: ") for refused in body["rejected"])
    assert "1e+15" in body["rejected"][0]["error"] and "revenue" in body["rejected"][0]["error"]
    # PostHog's capture API says the same.
    capture = {"api_key": TOKEN, "event": "buy", "distinct_id": "a", "properties": {"amount": 1e200}}
    status, body = answer(invoke("IngestFunction", sample_event("posthog_capture", body=capture)))
    assert status == 200 and body["accepted"] == 0 and body["rejected"][0]["error"].startswith("properties.amount: ")
