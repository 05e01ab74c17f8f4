"""Metric definitions beyond one event (issue 16): validated at the edge with errors naming the
field, frozen while the experiment runs, counted by the nightly job as a recount from the raw
events says, and shown by the API and the report. test_counting_property.py recounts them over
generated histories; these are the readable cases."""

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from abacus.assignment import sticky
from abacus.assignment.spec import AssignRequest
from abacus.core import keys
from abacus.core.documents import Snapshot
from abacus.core.settings import settings
from abacus.experiments import definitions
from abacus.experiments.metrics_spec import MetricSpec, Scalar
from abacus.experiments.spec import ExperimentCreate
from abacus.ingestion import ingest
from abacus.nightly import computation
from abacus.nightly.sums import PageSums
from abacus.nightly.values import UserValues, metrics_key
from abacus.results import snapshots
from abacus.results.report import html_page, text_report
from abacus.storage import assignments, events, nightly_runs
from abacus.storage.events import EventItem
from abacus_local import nightly_inline
from tests.capacity import item_size
from tests.conftest import answer, assignment_partition, invoke, sample_event

BASE = json.loads(sample_event("create_experiment")["body"])
START = datetime(2026, 11, 1, tzinfo=UTC)


def create(body: dict) -> tuple[int, dict]:
    return answer(invoke("ResultsFunction", sample_event("create_experiment", body=BASE | body)))


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
    status, got = answer(invoke("ResultsFunction", sample_event("get_experiment", path="/experiments/filtered")))
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
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "exp", "launch", START)
    exposed = START + timedelta(hours=1)
    # (user, variant, [properties of each purchase after the exposure])
    users: list[tuple[str, str, list[dict]]] = [
        ("a", "control", [{"plan": "PRO", "path": "/checkout/pay", "amount": 10}, {"plan": "pro", "path": "/home"}]),
        ("b", "control", [{"plan": "free", "path": "/checkout", "amount": 7}, {"amount": 3}]),
        (
            "c",
            "b",
            [{"plan": "pro", "path": "/Checkout", "amount": 5}] * 2 + [{"plan": ["team", "pro"], "path": "/checkout"}],
        ),
        ("d", "b", []),
    ]
    sent: list[object] = []
    for user, variant, purchases in users:
        sent.append(_event("$exposure", user, exposed, {"experiment": "exp", "variant": variant}))
        sent += [_event("purchase", user, exposed + timedelta(minutes=n + 1), p) for n, p in enumerate(purchases)]
    assert ingest.ingest("test", sent, exposed + timedelta(hours=1))["rejected"] == []
    snapshot = ready(snapshots.recompute("test", "exp", START + timedelta(days=2), send=nightly_inline.work_here))
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
    text = text_report.text(snapshot, "exp")
    assert 'metric purchase, conversion where plan = "pro" and path contains "/checkout")' in text, text
    assert "Secondary metric: purchase (count) where plan is not set" in text, text


def test_a_metric_without_filters_is_stored_as_before(project):
    """Snapshots and stored values of metrics without filters look as they did before filters
    existed: values stored then stay current, and their snapshots compare equal."""
    metric = MetricSpec.model_validate({"event": "buy", "kind": "count", "window_days": 2})
    # The fingerprint of this definition before filters existed (sha256 of its JSON, first 16).
    before = json.dumps([{"event": "buy", "kind": "count", "property": None, "window_days": 2}])
    assert metrics_key([metric]) == hashlib.sha256(before.encode()).hexdigest()[:16]
    filtered = metric.model_copy(update={"filters": MetricSpec.model_validate(PRO_PURCHASES).filters})
    assert metrics_key([filtered]) != metrics_key([metric])


def ready(answer: object) -> Snapshot:
    """A recompute's answer, which the work done in this process makes ready (not pending)."""
    assert isinstance(answer, dict) and "variants" in answer, answer
    return cast(Snapshot, answer)


def _event(name: str, user: str, at: datetime, properties: dict) -> dict:
    return {"event": name, "distinct_id": user, "timestamp": at.isoformat(), "properties": properties}


@pytest.mark.parametrize(
    ("metric", "field", "words"),
    [
        (
            {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"value": -5}},
            "cap.value",
            "greater than 0",
        ),
        ({"event": "purchase", "kind": "count", "cap": {"percentile": 1.5}}, "cap.percentile", "less than 1"),
        ({"event": "purchase", "kind": "count", "cap": {"percentile": 0.2}}, "cap.percentile", "0.5"),
        ({"event": "purchase", "kind": "count", "cap": {}}, "cap", "either value"),
        ({"event": "purchase", "kind": "count", "cap": {"value": 3, "percentile": 0.9}}, "cap", "either value"),
        ({"event": "purchase", "cap": {"value": 3}}, "primary_metric", "conversion metric takes no cap"),
    ],
)
def test_a_bad_cap_is_422_naming_it(project, metric, field, words):
    messages = errors_of({"key": "bad", "primary_metric": metric})
    named = {name: message for name, message in messages.items() if name.endswith(field)}
    assert named and words in " ".join(named.values()), messages


def test_caps_lower_each_users_value_and_the_report_says_whom(project):
    """Ten users in each variant buy once, for 1 to 10 (control) and 11 to 20 (b), and one user of
    b a bulk order of 10,000: the absolute cap of 50 lowers the bulk order alone; the 90th
    percentile of every user's value (rank ceil(0.9 x 21) = 19 of the 21 values: 19, as numpy's
    inverted_cdf says) lowers the bulk order and the user who bought 20."""
    spec = {
        "key": "caps",
        "name": "Caps",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"value": 50}},
        "secondary_metrics": [
            {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"percentile": 0.9}},
            {"event": "purchase", "kind": "sum", "property": "amount"},
        ],
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "caps", "launch", START)
    exposed = START + timedelta(hours=1)
    amounts = {"control": list(range(1, 11)), "b": [*range(11, 21), 10_000]}
    sent: list[object] = []
    for variant, values in amounts.items():
        for n, amount in enumerate(values):
            user = f"{variant}-{n}"
            sent.append(_event("$exposure", user, exposed, {"experiment": "caps", "variant": variant}))
            sent.append(_event("purchase", user, exposed + timedelta(minutes=1), {"amount": amount}))
    assert ingest.ingest("test", sent, exposed + timedelta(hours=1))["rejected"] == []
    snapshot = ready(snapshots.recompute("test", "caps", START + timedelta(days=2), send=nightly_inline.work_here))
    sums = {row["key"]: (row["sum"], row["sum_squares"]) for row in snapshot["variants"]}
    assert sums["control"] == (55.0, float(sum(v * v for v in range(1, 11))))
    assert sums["b"] == (155.0 + 50, float(sum(v * v for v in range(11, 21)) + 50 * 50))
    assert snapshot["cap"] == {"value": 50.0, "users_capped": {"control": 0, "b": 1}}
    by_percentile, uncapped = snapshot["secondary_metrics"]
    every_value = [float(v) for values in amounts.values() for v in values]
    assert np.quantile(every_value, 0.9, method="inverted_cdf") == 19.0
    assert by_percentile["cap"] == {"value": 19.0, "percentile": 0.9, "users_capped": {"control": 0, "b": 2}}
    assert {row["key"]: row["sum"] for row in by_percentile["variants"]} == {"control": 55.0, "b": 155.0 - 20 + 19 * 2}
    assert "cap" not in uncapped and {row["key"]: row["sum"] for row in uncapped["variants"]}["b"] == 10_155.0
    assert by_percentile["metric"]["cap"] == {"percentile": 0.9}
    text = text_report.text(snapshot, "caps")
    assert "Each user's value is capped at 50; users lowered: 0 in control, 1 in b." in text, text
    assert (
        "capped at 19 (the 90th percentile of the exposed users' values above 0, within 2%); "
        "users lowered: 0 in control, 2 in b" in text
    )


def test_a_sparse_revenue_metric_is_capped_at_a_percentile_of_its_values_above_zero(project):
    """Revenue where 90% of users spend nothing: one user in ten buys, for log-normal amounts, and
    b's buyers spend 50% more. The 90th percentile of every user's value is 0, which capped every
    buyer at 0 and hid the lift (keep_running, no p-value). Through the nightly job: the cap is the
    90th percentile of the values above 0 (numpy's, within 2%), the capped sums and the lift are a
    brute force's, the fixed-horizon p-value is scipy's Welch test on the capped values, and the
    report says what the percentile was taken over. (The lift found at a size that finds it:
    tests/unit/nightly/test_capping.py, through the same sums without DynamoDB.)"""
    from scipy import stats as scipy_stats

    spec = {
        "key": "sparse",
        "name": "Sparse revenue",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"percentile": 0.9}},
        "cuped": False,
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "sparse", "launch", START)
    exposed = START + timedelta(hours=1)
    rng = random.Random(28)
    values: dict[str, list[float]] = {"control": [], "b": []}
    purchases: list[object] = []
    for n in range(400):
        variant = "control" if n % 2 else "b"
        user = f"u{n}"
        assignments.assign(assignment_partition("sparse", user), user, variant, exposed, expose=True)
        amount = 0.0
        if n % 20 < 2:  # one user in ten of each variant buys
            amount = round(rng.lognormvariate(3, 0.6) * (1.5 if variant == "b" else 1.0), 2)
            purchases.append(_event("purchase", user, exposed + timedelta(minutes=5), {"amount": amount}))
        values[variant].append(amount)
    assert ingest.ingest("test", purchases, exposed + timedelta(hours=1))["rejected"] == []
    everyone = np.array(values["control"] + values["b"])
    assert float(np.mean(everyone == 0)) == 0.9 and np.quantile(everyone, 0.9, method="inverted_cdf") == 0.0
    snapshot = ready(snapshots.recompute("test", "sparse", START + timedelta(days=2), send=nightly_inline.work_here))

    exact = float(np.quantile(everyone[everyone > 0], 0.9, method="inverted_cdf"))
    cap = snapshot["cap"]["value"]
    assert cap is not None and exact <= cap <= exact * 1.02 and cap in everyone.tolist()
    capped = {variant: np.minimum(np.array(got), cap) for variant, got in values.items()}
    rows = {row["key"]: row for row in snapshot["variants"]}
    for variant, got in capped.items():
        assert rows[variant]["sum"] == pytest.approx(float(got.sum()), rel=1e-9)
        assert rows[variant]["sum_squares"] == pytest.approx(float((got * got).sum()), rel=1e-9)
        assert snapshot["cap"]["users_capped"][variant] == int((np.array(values[variant]) > cap).sum())
    assert sum(snapshot["cap"]["users_capped"].values()) == 4  # the top tenth of the 40 buyers
    welch = scipy_stats.ttest_ind(capped["b"], capped["control"], equal_var=False)
    lift = rows["b"]["lift"]
    relative = lift["relative"] if lift else None
    assert relative == pytest.approx(capped["b"].mean() / capped["control"].mean() - 1, rel=1e-9)
    assert relative is not None and relative > 0.3
    assert rows["b"]["p_value_fixed"] == pytest.approx(welch.pvalue, rel=1e-3)
    text = text_report.text(snapshot, "sparse")
    assert "(the 90th percentile of the exposed users' values above 0, within 2%)" in text, text


@pytest.mark.parametrize(("variants", "capped_metrics", "breakdowns"), [(2, 1, 0), (10, 11, 0), (10, 11, 3)])
def test_a_page_with_percentile_caps_stays_well_under_dynamodbs_item_limit(
    tables, variants, capped_metrics, breakdowns
):
    """A page of 5,000 users whose values are all different (the most bins), its histograms cut to
    the page's bin budget, and with breakdowns a different value of each property for every user
    (the most values, cut to the page's), stored as the worker stores it: its item's size by
    DynamoDB's rules."""
    rng = random.Random(5)
    variant_keys = ["control", *(f"v{n}" for n in range(variants - 1))]
    metric = MetricSpec.model_validate({"event": "buy", "kind": "count", "cap": {"percentile": 0.99}})
    sums = PageSums(variant_keys, [metric] * capped_metrics, breakdowns)
    for n in range(computation.PAGE_USERS):
        values = [rng.lognormvariate(3, 2) for _ in range(capped_metrics)]
        properties = [f"{'x' * 90}{n}-{b}" for b in range(breakdowns)]
        sums.add_user(
            variant_keys[n % variants],
            UserValues(values, [rng.random()] * capped_metrics),
            True,
            None,
            properties,
        )
    nightly_runs.put_page("test#exp", "2026-11-25#run", 0, 0, ("a", "b"), sums.to_json(), START)
    stored = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=settings.runs_table,
        Key={"experiment_id": {"S": "test#exp"}, "part": {"S": nightly_runs.page_part("2026-11-25#run", 0, 0)}},
    )["Item"]
    assert item_size(stored) < 250_000, item_size(stored)  # 55 KB, 178 KB and 222 KB measured (204 before cubes)
    # What the merge reads back is what was stored.
    page = nightly_runs.page("test#exp", "2026-11-25#run", 0, 0)
    assert page is not None and PageSums.from_json(page.stored_sums()).exposures == sums.exposures


REVENUE_PER_ORDER = {
    "kind": "ratio",
    "numerator": {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"value": 500}},
    "denominator": {"event": "purchase", "kind": "count"},
}


@pytest.mark.parametrize(
    ("metric", "field", "words"),
    [
        ({"kind": "ratio"}, "primary_metric", "takes a numerator and a denominator"),
        (
            {**REVENUE_PER_ORDER, "denominator": REVENUE_PER_ORDER["numerator"]},
            "primary_metric",
            "the denominator is the numerator itself",
        ),
        ({**REVENUE_PER_ORDER, "denominator": {"event": "purchase"}}, "primary_metric", "denominator: a count or sum"),
        ({**REVENUE_PER_ORDER, "event": "purchase"}, "primary_metric", "a ratio takes no event"),
        ({**REVENUE_PER_ORDER, "numerator": REVENUE_PER_ORDER}, "primary_metric", "numerator: a count or sum"),
        (
            {**REVENUE_PER_ORDER, "numerator": {"event": "purchase", "kind": "count", "cap": {"percentile": 0.9}}},
            "primary_metric",
            "a cap value, not a percentile",
        ),
        ({"kind": "count"}, "primary_metric", "event: a metric counts an event"),
        (
            {**REVENUE_PER_ORDER, "denominator": {"event": "purchase", "kind": "count", "window_days": 0}},
            "primary_metric.denominator.window_days",
            "greater than or equal to 1",
        ),
    ],
)
def test_a_bad_ratio_is_422_naming_it(project, metric, field, words):
    messages = errors_of({"key": "bad", "primary_metric": metric})
    assert field in messages and words in messages[field], messages


def test_a_ratio_is_the_sum_of_numerators_over_the_sum_of_denominators(project):
    """Revenue per order, each user's revenue capped at 500: control's users spend 10 + 30 over
    two orders and 20 over one (60 over 3: 20 an order); b's spend 900 over one order (capped at
    500) and nothing (no order): 500 over 1. A third variant with no order at all has no ratio."""
    spec = {
        "key": "rpo",
        "name": "Revenue per order",
        "variants": [{"key": "control", "weight": 34}, {"key": "b", "weight": 33}, {"key": "c", "weight": 33}],
        "primary_metric": REVENUE_PER_ORDER,
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "rpo", "launch", START)
    exposed = START + timedelta(hours=1)
    purchases = {"u1": [10, 30], "u2": [20], "u3": [900], "u4": [], "u5": []}
    variants = {"u1": "control", "u2": "control", "u3": "b", "u4": "b", "u5": "c"}
    sent: list[object] = []
    for user, amounts in purchases.items():
        sent.append(_event("$exposure", user, exposed, {"experiment": "rpo", "variant": variants[user]}))
        sent += [
            _event("purchase", user, exposed + timedelta(minutes=n + 1), {"amount": a}) for n, a in enumerate(amounts)
        ]
    assert ingest.ingest("test", sent, exposed + timedelta(hours=1))["rejected"] == []
    snapshot = ready(snapshots.recompute("test", "rpo", START + timedelta(days=2), send=nightly_inline.work_here))
    assert snapshot["ratio"] == {
        "control": {"numerator": 60.0, "denominator": 3.0},
        "b": {"numerator": 500.0, "denominator": 1.0},
        "c": {"numerator": 0.0, "denominator": 0.0},
    }
    rows = {row["key"]: row for row in snapshot["variants"]}
    assert rows["control"]["mean"] == 20.0 and rows["b"]["mean"] == 500.0
    assert rows["c"]["exposures"] == 0, "no ratio without a denominator"
    assert snapshot["srm"]["p_value"] > 0.3, "the sample ratio check counts users: 2, 2 and 1"
    assert snapshot["kind"] == "mean" and snapshot["metric"]["kind"] == "ratio"
    assert snapshot["cap"] == {"value": 500.0, "users_capped": {"control": 0, "b": 1, "c": 0}, "part": "numerator"}
    text = text_report.text(snapshot, "rpo")
    assert "(metric ratio of purchase (sum of amount) to purchase (count))" in text, text
    assert "Each user's numerator is capped at 500; users lowered: 0 in control, 1 in b, 0 in c." in text, text


def test_a_treatment_that_wins_but_harms_a_guardrail_is_not_shipped_and_the_verdict_says_why(project):
    """'b' converts 40% of its users where control converts 10% (a clear win), but sends 3 errors
    a user where control sends about 1: the errors guardrail (margin 2%) holds it back."""
    spec = {
        "key": "guarded",
        "name": "Guarded",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase"},
        "guardrail_metrics": [
            {"event": "error", "kind": "count", "margin": 0.02},
            {"event": "unsubscribe", "margin": 0.05},
        ],
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "guarded", "launch", START)
    rng = random.Random(11)
    exposed = START + timedelta(hours=1)
    stored = []
    for index in range(600):
        user, variant = f"user-{index}", ["control", "b"][index % 2]
        assignments.assign(assignment_partition("guarded", user), user, variant, exposed, expose=True)
        purchases = int(rng.random() < (0.4 if variant == "b" else 0.1))
        error_count = 3 if variant == "b" else rng.choice([0, 1, 2])
        for n, name in enumerate(["purchase"] * purchases + ["error"] * error_count):
            at = exposed + timedelta(minutes=n + 1)
            stored.append(
                EventItem(
                    keys.user_id("test", user),
                    f"{index}-{n}",
                    event=name,
                    distinct_id=user,
                    timestamp=at,
                    received_at=at,
                    properties={},
                    expires_at=0,
                    **events.receipt_keys("test", at, user, f"{index}-{n}"),
                )
            )
    assert events.write_all(stored) == []
    snapshot = ready(snapshots.recompute("test", "guarded", START + timedelta(days=2), send=nightly_inline.work_here))
    b = next(row for row in snapshot["variants"] if row["key"] == "b")
    assert b["significant"] and (b["lift"]["relative"] or 0) > 1, "b wins its primary metric"
    errors, unsubscribes = snapshot["guardrail_metrics"]
    assert errors["guardrail"] == {"margin": 0.02, "bad_direction": "increase", "status": {"b": "harmed"}}
    assert unsubscribes["guardrail"]["status"] == {"b": "inconclusive"}  # nobody unsubscribed
    verdict = snapshot["verdict"]
    assert verdict["decision"] == "held_back" and verdict["variant"] is None, verdict
    assert "'b' harms guardrail error (count) +" in verdict["reason"], verdict
    assert "beyond its 2% margin" in verdict["reason"], verdict
    text = text_report.text(snapshot, "guarded")
    assert text.count("Do not ship: 'b' beats 'control'") == 1, text
    assert "Guardrail: error (count)" in text and "'b' harmed (beyond the margin)" in text, text


@pytest.mark.parametrize(
    ("guardrail", "words"),
    [
        ({"event": "error", "kind": "count", "margin": -0.1}, "greater than or equal to 0"),
        ({"event": "error", "kind": "count", "margin": 1}, "less than 1"),
        ({"event": "error", "kind": "count", "bad_direction": "up"}, "'increase' or 'decrease'"),
    ],
)
def test_a_bad_guardrail_is_422_naming_it(project, guardrail, words):
    messages = errors_of({"key": "bad", "guardrail_metrics": [guardrail]})
    named = " ".join(message for field, message in messages.items() if field.startswith("guardrail_metrics[0]"))
    assert words in named, messages


def test_exposures_by_day_locate_a_broken_split_in_time(project):
    """Three days of 50/50 first exposures, but on the second 'b' gets three times control's:
    the snapshot counts each day's first exposures per variant as stored, and names that day."""
    spec = {
        "key": "daily",
        "name": "Daily",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase"},
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "daily", "launch", START)
    per_day = {0: (100, 100), 1: (50, 150), 2: (100, 100)}
    user = 0
    for day, (control, b) in per_day.items():
        for variant, count in (("control", control), ("b", b)):
            for _ in range(count):
                at = START + timedelta(days=day, hours=1 + user % 20)
                name = f"user-{user}"
                assignments.assign(assignment_partition("daily", name), name, variant, at, expose=True)
                user += 1
    snapshot = ready(snapshots.recompute("test", "daily", START + timedelta(days=3), send=nightly_inline.work_here))
    daily = snapshot["exposures_by_day"]
    assert [(d["date"], d["exposures"]) for d in daily["days"]] == [
        ("2026-11-01", [100, 100]),
        ("2026-11-02", [50, 150]),
        ("2026-11-03", [100, 100]),
    ]
    assert daily["first_mismatch"] == "2026-11-02" and daily["threshold"] == pytest.approx(0.001 / 3)
    assert snapshot["srm"]["mismatch"], "the whole experiment's check fails too"
    text = text_report.text(snapshot, "daily")
    assert "By day of first exposure: the first mismatch is on 2026-11-02 (exposures 50, 150;" in text, text


CHECKOUT_STEPS: list[dict] = [
    {"event": "view_cart"},
    {"event": "start_checkout", "filters": [{"property": "plan", "operator": "eq", "value": "pro"}]},
    {"event": "purchase"},
]
CHECKOUT_FUNNEL = {"kind": "funnel", "steps": CHECKOUT_STEPS, "window_days": 7}


@pytest.mark.parametrize(
    ("metric", "field", "words"),
    [
        ({**CHECKOUT_FUNNEL, "steps": [{"event": "view_cart"}]}, "primary_metric.steps", "at least 2"),
        ({**CHECKOUT_FUNNEL, "steps": [{"event": "view_cart"}] * 6}, "primary_metric.steps", "at most 5"),
        ({"kind": "funnel"}, "primary_metric", "a funnel metric takes steps"),
        ({**CHECKOUT_FUNNEL, "event": "purchase"}, "primary_metric", "a funnel takes no event"),
        ({**CHECKOUT_FUNNEL, "cap": {"value": 3}}, "primary_metric", "a funnel takes no cap"),
        (
            {**CHECKOUT_FUNNEL, "filters": [{"property": "plan", "operator": "is_set"}]},
            "primary_metric",
            "give each step its event and filters",
        ),
        (
            {"event": "purchase", "steps": CHECKOUT_FUNNEL["steps"]},
            "primary_metric",
            "only a funnel metric takes steps",
        ),
        ({**CHECKOUT_FUNNEL, "steps": [{"event": "a"}, {"event": ""}]}, "primary_metric.steps[1].event", "at least 1"),
        (
            {
                **CHECKOUT_FUNNEL,
                "steps": [
                    {"event": "a"},
                    {"event": "b", "filters": [{"property": "$feature/x", "operator": "is_set"}]},
                ],
            },
            "primary_metric.steps[1].filters[0].property",
            "never match",
        ),
        ({**CHECKOUT_FUNNEL, "steps": [{"event": "a"}, {"name": "b"}]}, "primary_metric.steps[1].event", "required"),
    ],
)
def test_a_bad_funnel_is_422_naming_it(project, metric, field, words):
    messages = errors_of({"key": "bad", "primary_metric": metric})
    assert field in messages and words in messages[field], messages


def test_a_funnel_counts_users_who_did_its_steps_in_order_within_the_window(project):
    """Each user's events after their exposure at 01:00 (minutes after it), and how far they got:
    steps done out of order, a step that fails its filter, a last step after the 7-day window, and
    events that arrive late and out of the order they happened in all count as the steps say."""
    spec = {
        "key": "checkout",
        "name": "Checkout",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": CHECKOUT_FUNNEL,
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "checkout", "launch", START)
    exposed = START + timedelta(hours=1)
    pro = {"plan": "pro"}
    # user: (variant, [(event, minutes after exposure, properties)], steps reached)
    users = {
        "all-in-order": ("control", [("view_cart", 1, {}), ("start_checkout", 2, pro), ("purchase", 3, {})], 3),
        "same-minute": ("control", [("purchase", 5, {}), ("start_checkout", 5, pro), ("view_cart", 5, {})], 3),
        "paid-first": ("control", [("purchase", 1, {}), ("view_cart", 2, {}), ("start_checkout", 3, pro)], 2),
        "free-plan": (
            "control",
            [("view_cart", 1, {}), ("start_checkout", 2, {"plan": "free"}), ("purchase", 3, {})],
            1,
        ),
        "before-exposure": ("b", [("view_cart", -5, {}), ("start_checkout", 2, pro), ("purchase", 3, {})], 0),
        "too-late": ("b", [("view_cart", 1, {}), ("start_checkout", 2, pro), ("purchase", 8 * 24 * 60, {})], 2),
        "twice-round": (
            "b",
            [
                ("start_checkout", 1, pro),
                ("view_cart", 2, {}),
                ("purchase", 3, {}),
                ("start_checkout", 4, pro),
                ("purchase", 5, {}),
            ],
            3,
        ),
    }
    sent: list[object] = []
    for user, (variant, steps, _) in users.items():
        sent.append(_event("$exposure", user, exposed, {"experiment": "checkout", "variant": variant}))
        # Sent last event first: the order events arrive in is not the order they happened in.
        sent += [_event(name, user, exposed + timedelta(minutes=m), props) for name, m, props in reversed(steps)]
    first_half, second_half = sent[: len(sent) // 2], sent[len(sent) // 2 :]
    assert ingest.ingest("test", second_half, exposed + timedelta(days=8, hours=1))["rejected"] == []
    assert ingest.ingest("test", first_half, exposed + timedelta(days=9))["rejected"] == []  # the day after
    snapshot = ready(snapshots.recompute("test", "checkout", START + timedelta(days=10), send=nightly_inline.work_here))
    expected = {
        variant: [sum(1 for v, _, reached in users.values() if v == variant and reached >= step) for step in (1, 2, 3)]
        for variant in ("control", "b")
    }
    assert expected == {"control": [4, 3, 2], "b": [2, 2, 1]}
    got = {variant: [step["conversions"][variant] for step in snapshot["funnel_steps"]] for variant in expected}
    assert got == expected, snapshot["funnel_steps"]
    assert [step["event"] for step in snapshot["funnel_steps"]] == ["view_cart", "start_checkout", "purchase"]
    assert snapshot["funnel_steps"][1]["filters"] == [{"property": "plan", "operator": "eq", "value": "pro"}]
    rows = {row["key"]: row for row in snapshot["variants"]}
    assert snapshot["kind"] == "conversion", "the test is on the last step's conversion rate"
    assert (rows["control"]["exposures"], rows["control"]["conversions"]) == (4, 2)
    assert (rows["b"]["exposures"], rows["b"]["conversions"]) == (3, 1)
    text = text_report.text(snapshot, "checkout")
    assert 'funnel view_cart → start_checkout where plan = "pro" → purchase, in order within 7 days' in text, text
    assert "3. purchase" in text and "2 (50.00%)" in text and "1 (33.33%)" in text, text
    status, got_api = answer(
        invoke("ResultsFunction", sample_event("get_results", path="/experiments/checkout/results"))
    )
    assert status == 200 and got_api["funnel_steps"][2]["conversions"] == {"control": 2, "b": 1}, got_api
    page = html_page.page(cast(Any, {"key": "checkout", "name": "Checkout"}), [snapshot])
    assert '<table class="funnel">' in page and "start_checkout where plan = &quot;pro&quot;" in page


@pytest.mark.parametrize(
    ("breakdowns", "field", "words"),
    [
        (["country", "plan", "$browser", "$os"], "breakdowns", "at most 3"),
        (["country", "country"], "breakdowns", "each property once"),
        (["token"], "breakdowns", "credential"),
        ([""], "breakdowns[0]", "at least 1"),
    ],
)
def test_a_bad_breakdown_is_422_naming_it(project, breakdowns, field, words):
    messages = errors_of({"key": "bad", "breakdowns": breakdowns})
    assert field in messages and words in messages[field], messages


def test_breakdowns_are_frozen_while_the_experiment_runs(project):
    spec = ExperimentCreate.model_validate({**BASE, "key": "frozen", "breakdowns": ["country"]})
    definitions.create("test", spec, START - timedelta(days=1))
    definitions.apply("test", "frozen", "launch", START)
    patch = sample_event("update_experiment", body={"breakdowns": ["plan"]}, path="/experiments/frozen")
    status, got = answer(invoke("ResultsFunction", patch))
    assert status == 409 and got["error"]["field"] == "breakdowns", got


def _stored_breakdown_values(key: str, user: str) -> list | None:
    item = definitions.get("test", key)
    stored = assignments.AssignmentItem.get(item.assignment_partition(user), user)
    return stored.breakdown_values


def test_breakdown_values_are_those_of_the_first_exposure(project):
    """From /assign's properties, or from the exposure event's: the earliest exposure's, whatever
    order the events arrive in; a property not sent, or not a scalar, is None."""
    spec = ExperimentCreate.model_validate({**BASE, "key": "by", "breakdowns": ["plan", "$browser", "seats"]})
    definitions.create("test", spec, START - timedelta(days=1))
    definitions.apply("test", "by", "launch", START)
    request = AssignRequest(
        token="phc", distinct_id="u1", experiments=["by"], properties={"plan": "pro", "$browser": "Firefox"}
    )
    sticky.assign("test", request, START + timedelta(hours=1))
    again = AssignRequest(
        token="phc", distinct_id="u1", experiments=["by"], properties={"plan": "free", "$browser": "Chrome"}
    )
    sticky.assign("test", again, START + timedelta(hours=2))
    assert _stored_breakdown_values("by", "u1") == ["pro", "Firefox", None]

    def exposure(hours: int, browser: str, seats: object) -> dict:
        properties = {"$feature_flag": "by", "$feature_flag_response": "control", "$browser": browser, "seats": seats}
        return _event("$feature_flag_called", "u2", START + timedelta(hours=hours), properties)

    received = START + timedelta(days=1)
    assert ingest.ingest("test", [exposure(5, "Chrome", 3)], received)["rejected"] == []
    assert _stored_breakdown_values("by", "u2") == [None, "Chrome", 3]
    assert ingest.ingest("test", [exposure(7, "Edge", 4), exposure(3, "Safari", [1])], received)["rejected"] == []
    assert _stored_breakdown_values("by", "u2") == [None, "Safari", None], "the earlier exposure's, arriving later"
    long_name = "x" * 300
    request = AssignRequest(
        token="phc", distinct_id="u3", experiments=["by"], properties={"plan": long_name, "seats": 2.5}
    )
    sticky.assign("test", request, START + timedelta(hours=1))
    assert _stored_breakdown_values("by", "u3") == ["x" * 100, None, 2.5]


def test_breakdowns_analyse_the_top_values_and_other_with_holm_across_the_breakdown(project):
    """Users in 13 countries (c00 has the most) and with a plan or none, b lifting conversion from
    20% to 80% in the three largest countries alone: each value's users and conversions as a recount gives them, the
    top 10 countries then "other", and the p-values Holm-adjusted across the breakdown's
    comparisons, as statsmodels adjusts them."""
    spec = {
        "key": "bd",
        "name": "Breakdowns",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase", "window_days": 7},
        "minimum_detectable_effect": 0.5,
        "breakdowns": ["country", "plan"],
    }
    definitions.create("test", ExperimentCreate.model_validate(spec), START - timedelta(days=1))
    definitions.apply("test", "bd", "launch", START)
    rng = random.Random(16)
    exposed = START + timedelta(hours=1)
    users = []
    for country in range(13):
        for n in range(200 - country if country < 3 else 30 - 2 * country):
            user = f"c{country}-{n}"
            plan = rng.choice(["pro", "free", None])
            properties: dict[str, Scalar | list[Scalar] | None] = {"country": f"c{country:02}"}
            if plan:
                properties["plan"] = plan
            request = AssignRequest(token="phc", distinct_id=user, experiments=["bd"], properties=properties)
            variant = sticky.assign("test", request, exposed)["bd"]
            converted = rng.random() < (0.8 if variant == "b" and country < 3 else 0.2)
            users.append((properties.get("country"), properties.get("plan"), variant, converted, user))
    purchases: list[object] = [_event("purchase", u[4], exposed + timedelta(hours=1), {}) for u in users if u[3]]
    assert ingest.ingest("test", purchases, exposed + timedelta(hours=2))["rejected"] == []
    snapshot = ready(snapshots.recompute("test", "bd", START + timedelta(days=2), send=nightly_inline.work_here))
    by_country, by_plan = snapshot["breakdowns"]
    assert by_country["property"] == "country" and by_plan["property"] == "plan"

    other_countries = {f"c{n:02}" for n in range(10, 13)}

    def recount(index: int, value: object) -> dict[str, tuple[int, int]]:
        mine = [u for u in users if (u[index] == value if value != "other" else u[index] in other_countries)]
        return {v: (sum(u[2] == v for u in mine), sum(u[2] == v and u[3] for u in mine)) for v in ("control", "b")}

    expected_values = [f"c{n:02}" for n in range(10)]
    assert [s["value"] for s in by_country["segments"]] == [*expected_values, None]
    assert [s["other"] for s in by_country["segments"]] == [False] * 10 + [True]
    for segment in by_country["segments"]:
        value = "other" if segment["other"] else segment["value"]
        got = {row["key"]: (row["exposures"], row["conversions"]) for row in segment["variants"]}
        assert got == recount(0, value), value
        assert segment["complete"] and segment["users"] == sum(n for n, _ in got.values())
    plans = {segment["value"]: segment for segment in by_plan["segments"]}
    assert set(plans) == {"pro", "free", None} and not any(s["other"] for s in by_plan["segments"])
    for value, segment in plans.items():
        assert {row["key"]: (row["exposures"], row["conversions"]) for row in segment["variants"]} == recount(1, value)
    for breakdown in (by_country, by_plan):
        rows = [row for segment in breakdown["segments"] for row in segment["variants"] if "lift" in row]
        assert breakdown["comparisons"] == len(rows) == len(breakdown["segments"])
        # A segment whose control has no conversion has no relative lift, and no p-value to adjust.
        tested = [row for row in rows if row["p_value"] is not None]
        raw = [row["p_value"] for row in tested]
        assert len(set(raw)) > 2, "p-values that differ, so that the adjustment's order matters"
        expected = multipletests(raw, method="holm")[1]
        assert [row["p_value_adjusted"] for row in tested] == pytest.approx(list(expected), rel=1e-12)
        assert [row["significant"] for row in tested] == [p < 0.05 for p in expected]
    p_values = {s["value"]: s["variants"][1]["p_value"] for s in by_country["segments"] if not s["other"]}
    smallest = sorted(p_values, key=lambda value: p_values[value] or 1.0)[:3]
    assert set(smallest) == {"c00", "c01", "c02"}, ("where the effect lies", p_values)
    text = text_report.text(snapshot, "bd")
    assert "Breakdown by country at first exposure: each value analysed alone" in text, text
    assert "(not set)" in text and "\nother " in text, text
    page = html_page.page(cast(Any, {"key": "bd", "name": "Breakdowns"}), [snapshot])
    assert '<section class="breakdown"><h3>By country</h3>' in page
