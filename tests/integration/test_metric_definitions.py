"""Metric definitions beyond one event (issue 16): validated at the edge with errors naming the
field, frozen while the experiment runs, counted by the nightly job as a recount from the raw
events says, and shown by the API and the report. test_counting_property.py recounts them over
generated histories; these are the readable cases."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from abacus import experiments, ingestion, nightly, nightly_runs, report, results
from abacus.schemas import ExperimentCreate, MetricSpec
from tests.conftest import answer, invoke, sample_event

BASE = json.loads(sample_event("create_experiment")["body"])
START = datetime(2026, 11, 1, tzinfo=UTC)


def create(body: dict) -> tuple[int, dict]:
    return answer(invoke("AssignFunction", sample_event("create_experiment", body=BASE | body)))


def errors_of(body: dict) -> dict[str, str]:
    status, got = create(body)
    assert status == 422, got
    return {entry["field"]: entry["message"] for entry in got["error"]["errors"]}


PRO_PURCHASES = {
    "event": "purchase",
    "kind": "count",
    "filters": [
        {"property": "plan", "operator": "eq", "value": "pro"},
        {"property": "path", "operator": "contains", "value": "/checkout"},
    ],
}


def test_filters_are_kept_with_the_metric_and_shown_back(project):
    status, got = create({"key": "filtered", "primary_metric": PRO_PURCHASES})
    assert status == 201, got
    assert got["primary_metric"]["filters"] == [
        {"property": "plan", "operator": "eq", "value": "pro"},
        {"property": "path", "operator": "contains", "value": "/checkout"},
    ]
    status, got = answer(invoke("AssignFunction", sample_event("get_experiment", path="/experiments/filtered")))
    assert status == 200 and got["primary_metric"]["filters"][0]["value"] == "pro", got


@pytest.mark.parametrize(
    ("metric", "field", "words"),
    [
        (
            {"event": "purchase", "filters": [{"property": "$feature/new-checkout", "operator": "is_set"}]},
            "primary_metric.filters[0].property",
            "flag state",
        ),
        (
            {"event": "purchase", "filters": [{"property": "token", "operator": "eq", "value": "x"}]},
            "primary_metric.filters[0].property",
            "credential",
        ),
        (
            {"event": "purchase", "filters": [{"property": "plan", "operator": "like", "value": "x"}]},
            "primary_metric.filters[0].operator",
            "eq",
        ),
        (
            {"event": "purchase", "filters": [{"property": "plan", "operator": "in", "value": "pro"}]},
            "primary_metric.filters[0]",
            "non-empty list",
        ),
        (
            {"event": "purchase", "filters": [{"property": "plan", "operator": "eq", "value": "p"}] * 21},
            "primary_metric.filters",
            "20",
        ),
    ],
)
def test_a_bad_filter_is_422_naming_it(project, metric, field, words):
    messages = errors_of({"key": "bad", "primary_metric": metric})
    assert field in messages and words in messages[field], messages


def test_a_bad_filter_on_a_secondary_metric_is_named_by_its_position(project):
    secondary = [{"event": "view"}, {"event": "view", "filters": [{"property": "distinct_id", "operator": "is_set"}]}]
    messages = errors_of({"key": "bad", "secondary_metrics": secondary})
    assert "SDK's own state" in messages["secondary_metrics[1].filters[0].property"], messages


def test_only_events_meeting_every_filter_are_counted(project):
    spec = {
        "key": "exp",
        "name": "Exp",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {**PRO_PURCHASES, "kind": "conversion"},
        "secondary_metrics": [
            PRO_PURCHASES,
            {**PRO_PURCHASES, "kind": "sum", "property": "amount"},
            {"event": "purchase", "kind": "count", "filters": [{"property": "plan", "operator": "is_not_set"}]},
            {"event": "purchase", "kind": "count"},
        ],
    }
    experiments.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    experiments.apply("test", "exp", "launch", START)
    exposed = START + timedelta(hours=1)
    # (user, variant, [properties of each purchase after the exposure])
    users = [
        ("a", "control", [{"plan": "PRO", "path": "/checkout/pay", "amount": 10}, {"plan": "pro", "path": "/home"}]),
        ("b", "control", [{"plan": "free", "path": "/checkout", "amount": 7}, {"amount": 3}]),
        (
            "c",
            "b",
            [{"plan": "pro", "path": "/Checkout", "amount": 5}] * 2 + [{"plan": ["team", "pro"], "path": "/checkout"}],
        ),
        ("d", "b", []),
    ]
    sent = []
    for user, variant, purchases in users:
        sent.append(_event("$exposure", user, exposed, {"experiment": "exp", "variant": variant}))
        sent += [_event("purchase", user, exposed + timedelta(minutes=n + 1), p) for n, p in enumerate(purchases)]
    assert ingestion.ingest("test", sent, exposed + timedelta(hours=1))["rejected"] == []
    snapshot = results.recompute("test", "exp", START + timedelta(days=2), send=nightly_runs.work_here)
    # a: 1 matching purchase (PRO is pro: values compare as case-insensitive strings), of 10;
    # b: none; c: 3 (a list property matches when an element does), of 5 + 5 (the third has no amount).
    conversions = {row["key"]: row["conversions"] for row in snapshot["variants"]}
    assert conversions == {"control": 1, "b": 1}
    secondary = snapshot["secondary_metrics"]
    counts, sums, unset, every = ({row["key"]: row["sum"] for row in m["variants"]} for m in secondary)
    assert counts == {"control": 1.0, "b": 3.0}
    assert sums == {"control": 10.0, "b": 10.0}
    assert unset == {"control": 1.0, "b": 0.0}  # b's purchase without a plan
    assert every == {"control": 4.0, "b": 3.0}
    assert snapshot["metric"]["filters"] == PRO_PURCHASES["filters"]
    assert "filters" not in secondary[3]["metric"], "a snapshot leaves out a metric's empty filters"
    text = report.text(snapshot, "exp")
    assert 'metric purchase, conversion where plan = "pro" and path contains "/checkout")' in text, text
    assert "Secondary metric: purchase (count) where plan is not set" in text, text


def test_a_metric_without_filters_is_stored_as_before(project):
    """Snapshots and stored values of metrics without filters look as they did before filters
    existed: values stored then stay current, and their snapshots compare equal."""
    metric = MetricSpec.model_validate({"event": "buy", "kind": "count", "window_days": 2})
    # The fingerprint of this definition before filters existed (sha256 of its JSON, first 16).
    before = json.dumps([{"event": "buy", "kind": "count", "property": None, "window_days": 2}])
    assert nightly.metrics_key([metric]) == hashlib.sha256(before.encode()).hexdigest()[:16]
    filtered = metric.model_copy(update={"filters": MetricSpec.model_validate(PRO_PURCHASES).filters})
    assert nightly.metrics_key([filtered]) != nightly.metrics_key([metric])


def _event(name: str, user: str, at: datetime, properties: dict) -> dict:
    return {"event": name, "distinct_id": user, "timestamp": at.isoformat(), "properties": properties}
