"""Holdouts (issue 18): a share of the users kept on control in every experiment of a project or
a layer, never exposed to a treatment, and compared nightly with everyone else."""

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from abacus.assignment import sticky
from abacus.experiments import definitions, holdouts
from abacus.storage import experiments
from tests.conftest import TOKEN, answer, function_of, invoke, sample_event, stored_assignments
from tests.posthog_matcher import evaluate_locally

BASE = json.loads(sample_event("create_experiment")["body"])
SPLIT = [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}]
IDS = [f"user-{n}" for n in range(100_000)]


def call(name: str, body: dict | None = None, path: str | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    return answer(invoke(function_of(event), event))


def create(key: str, launch: bool = True, **fields) -> None:
    status, body = call("create_experiment", BASE | {"key": key, "variants": SPLIT} | fields)
    assert status == 201, body
    if launch:
        assert call("launch_experiment", path=f"/experiments/{key}/launch")[0] == 200


def holdout(key: str, share: int, layer: str | None = None) -> None:
    split = [{"key": "control", "weight": share}, {"key": "rest", "weight": 100 - share}]
    create(key, variants=split, holdout={"layer": layer}, primary_metric={"event": "purchase"})


@pytest.fixture
def covered(project):
    """A project holdout of 10% and a layer's of 20%, launched first; then a running experiment,
    a shipped one, and one in the layer."""
    holdout("everything", 10)
    holdout("page-holdout", 20, layer="page")
    create("running")
    create("shipped")
    assert call("ship_experiment", {"variant": "b"}, path="/experiments/shipped/ship")[0] == 200
    create("layered", layer={"key": "page", "share": 100})


def items() -> dict:
    return {item.key: item for item in experiments.in_project("test")}


def expected(known: dict, key: str, distinct_id: str, properties: dict | None = None) -> str | None:
    spec = definitions.definition(known[key])
    covering = holdouts.covering(known[key], known.values())
    return sticky.stateless_variant(known[key], spec, distinct_id, properties or {}, covering)


def test_a_holdout_takes_no_targeting_overrides_or_third_variant(project):
    split = [{"key": "control", "weight": 10}, {"key": "rest", "weight": 90}]
    targeted = [{"conditions": [{"property": "plan", "operator": "eq", "value": "pro"}]}]
    status, error = call(
        "create_experiment", BASE | {"key": "h", "variants": split, "holdout": {}, "targeting": targeted}
    )
    assert status == 422 and error["error"]["field"] == "holdout" and "targeting" in error["error"]["message"]
    three = [*split[:1], {"key": "a", "weight": 45}, {"key": "b", "weight": 45}]
    status, error = call("create_experiment", BASE | {"key": "h", "variants": three, "holdout": {}})
    assert status == 422 and "a holdout has two" in error["error"]["message"]


def test_held_out_users_get_control_everywhere_in_scope_over_100000_ids(covered):
    known = items()
    held = {
        key: {d for d in IDS if holdouts.variant_in(known[key], d) == "control"}
        for key in known
        if "holdout" in key or key == "everything"
    }
    assert abs(len(held["everything"]) / len(IDS) - 0.10) < 0.01
    assert abs(len(held["page-holdout"]) / len(IDS) - 0.20) < 0.01
    answers: Counter = Counter()
    for distinct_id in IDS:
        for key in ("running", "shipped", "layered"):
            got = expected(known, key, distinct_id)
            by_project = distinct_id in held["everything"]
            by_layer = key == "layered" and distinct_id in held["page-holdout"]
            if by_project or by_layer:
                assert got == "control", (key, distinct_id)
            answers[key, by_project or by_layer, got] += 1
    # Everyone else is randomised as before; the shipped variant reaches all but the held out.
    not_held = len(IDS) - len(held["everything"])
    assert abs(answers["running", False, "b"] / not_held - 0.5) < 0.01
    assert answers["shipped", False, "b"] == not_held and answers["shipped", False, "control"] == 0


def test_assign_never_exposes_a_held_out_user_and_exposes_everyone_to_the_holdout(covered):
    known = items()
    sample = IDS[:400]
    for distinct_id in sample:
        status, body = call(
            "assign", {"token": TOKEN, "distinct_id": distinct_id, "experiments": ["running", "shipped"]}
        )
        assert status == 200 and body["assignments"] == {
            k: expected(known, k, distinct_id) for k in ("running", "shipped")
        }
    held = {d for d in sample if holdouts.variant_in(known["everything"], d) == "control"}
    assert 15 < len(held) < 80
    in_running = {item.distinct_id: item.variant for item in stored_assignments("running")}
    assert not held & set(in_running) and len(in_running) == len(sample) - len(held)
    in_holdout = {item.distinct_id: item.variant for item in stored_assignments("everything") if item.exposed_at}
    assert in_holdout == {d: "control" if d in held else "rest" for d in sample}
    assert not [item for item in stored_assignments("page-holdout")]  # asked nothing of its layer


def test_an_exposure_event_of_a_held_out_user_is_refused_and_counts_for_the_holdout(covered):
    known = items()
    held = next(d for d in IDS if holdouts.variant_in(known["everything"], d) == "control")
    other = next(d for d in IDS if holdouts.variant_in(known["everything"], d) == "rest")
    at = datetime.now(UTC).isoformat()
    sent = [
        {
            "event": "$feature_flag_called",
            "distinct_id": d,
            "timestamp": at,
            "properties": {"$feature_flag": "running", "$feature_flag_response": expected(known, "running", d)},
        }
        for d in (held, other)
    ]
    event = sample_event("post_events")
    event["body"] = json.dumps({"token": TOKEN, "events": sent})
    status, body = answer(invoke("IngestFunction", event))
    assert status == 200 and body["refused_exposures"] == 1, body
    assert {item.distinct_id for item in stored_assignments("running") if item.exposed_at} == {other}
    exposed = {item.distinct_id: item.variant for item in stored_assignments("everything") if item.exposed_at}
    assert exposed == {held: "control", other: "rest"}


def test_the_holdouts_results_compare_the_held_out_with_everyone_else(covered):
    known = items()
    sample = IDS[:300]
    buyers = set(sample[::3])
    for distinct_id in sample:
        assert call("assign", {"token": TOKEN, "distinct_id": distinct_id, "experiments": ["running"]})[0] == 200
    bought = datetime.now(UTC)  # after every exposure, before the recompute's cut-off
    purchases = [{"event": "purchase", "distinct_id": d, "timestamp": bought.isoformat()} for d in buyers]
    event = sample_event("post_events")
    event["body"] = json.dumps({"token": TOKEN, "events": purchases})
    assert answer(invoke("IngestFunction", event))[0] == 200
    status, results = call("recompute_results", path="/experiments/everything/results")
    assert status == 200, results
    rows = {row["key"]: row for row in results["variants"]}
    for variant in ("control", "rest"):
        users = [d for d in sample if holdouts.variant_in(known["everything"], d) == variant]
        assert rows[variant]["exposures"] == len(users), variant
        assert rows[variant]["conversions"] == len([d for d in users if d in buyers]), variant


def test_posthog_local_evaluation_gives_the_held_out_control(covered):
    known = items()
    document = json.loads(invoke("AssignFunction", sample_event("posthog_flag_definitions"))["body"])
    flags = {flag["key"]: flag for flag in document["flags"]}
    for distinct_id in IDS[:20_000]:
        for key in ("running", "shipped", "layered", "everything"):
            local = evaluate_locally(flags, key, distinct_id, {})
            assert local == expected(known, key, distinct_id), (key, distinct_id)


def test_posthog_flags_answers_as_assign_does_for_holdouts_and_layers(covered):
    """/flags/ (what PostHog's SDKs ask when not evaluating locally) runs /assign's rules: the
    held out get control, from a running, a shipped and a layered experiment alike."""
    known = items()
    answered: Counter = Counter()
    for distinct_id in IDS[:300]:
        body = {"api_key": TOKEN, "distinct_id": distinct_id}
        status, document = answer(invoke("AssignFunction", sample_event("posthog_flags", body=body)))
        assert status == 200, document
        for key in ("running", "shipped", "layered", "everything"):
            variant = document["flags"][key]["variant"]
            assert variant == expected(known, key, distinct_id), (key, distinct_id)
            answered[key, variant] += 1
    # Held out by the project's 10% or the layer's 20%: control for about 64% of them, b for 36%.
    assert answered["layered", "control"] > answered["layered", "b"] > 0
