"""Experiments through the assign handler: lifecycle, changes, history, listing, assignment rules,
stickiness, exactly-once exposure, isolation, caching, and the operator's project commands."""

import json
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from abacus import projects
from abacus.assignment import sticky
from abacus.core.cache import TtlCache
from abacus.experiments import definitions
from abacus.storage.assignments import AssignmentItem
from tests.conftest import (
    ADMIN_KEY,
    TOKEN,
    answer,
    assignment_partition,
    function_of,
    invoke,
    sample_event,
    stored_assignment,
    stored_assignments,
)

BASE = json.loads(sample_event("create_experiment")["body"])


def call(name: str, body: dict | None = None, path: str | None = None, **headers) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path, **headers)
    return answer(invoke(function_of(event), event))


def create(key: str = "new-checkout", **fields) -> dict:
    status, body = call("create_experiment", BASE | {"key": key} | fields)
    assert status == 201, body
    return body


def action(key: str, name: str, body: dict | None = None) -> tuple[int, dict]:
    verb = {"launch_experiment": "launch", "stop_experiment": "stop", "ship_experiment": "ship"}.get(name, "archive")
    return call(name, body, path=f"/experiments/{key}/{verb}")


def patch(key: str, body: dict) -> tuple[int, dict]:
    return call("update_experiment", body, path=f"/experiments/{key}")


def assign(distinct_id: str, keys: list[str] | None = None, expose: bool | None = None, **properties) -> dict:
    body: dict[str, object] = {"token": TOKEN, "distinct_id": distinct_id, "properties": properties}
    if expose is not None:
        body["expose"] = expose
    if keys is not None:
        body["experiments"] = keys
    status, got = call("assign", body)
    assert status == 200, got
    return got["assignments"]


def test_every_transition_and_its_refusal(project):
    create("a")
    assert action("a", "stop_experiment")[0] == 409
    assert action("a", "ship_experiment", {"variant": "one-page"})[0] == 409
    assert action("a", "launch_experiment")[1]["status"] == "running"
    assert action("a", "launch_experiment")[0] == 409
    assert action("a", "archive_experiment")[0] == 409
    status, body = action("a", "ship_experiment", {"variant": "nope"})
    assert status == 422 and body["error"]["field"] == "variant"
    status, shipped = action("a", "ship_experiment", {"variant": "one-page"})
    assert status == 200 and shipped["status"] == "complete" and shipped["shipped_variant"] == "one-page"
    assert action("a", "stop_experiment")[0] == 409
    assert action("a", "archive_experiment")[1]["status"] == "archived"
    for name in ("launch_experiment", "stop_experiment", "archive_experiment"):
        status, body = action("a", name)
        assert status == 409 and "archived" in body["error"]["message"]
    create("b")
    assert action("b", "archive_experiment")[1]["status"] == "archived"  # a draft may be dropped
    history = call("get_experiment", path="/experiments/a")[1]["history"]
    assert [entry["action"] for entry in history] == ["create", "launch", "ship", "archive"]
    assert history[2]["changes"] == {"from": "running", "to": "complete", "variant": "one-page"}


def test_every_conflict_names_the_next_step(project, monkeypatch):
    create("dup")
    status, body = call("create_experiment", BASE | {"key": "dup"})
    assert (
        status == 409
        and "choose another key, change that one with PATCH /experiments/dup, or delete it (DELETE /experiments/dup)"
        in body["error"]["message"]
    )
    status, body = answer(invoke("ResultsFunction", sample_event("recompute_results", path="/experiments/dup/results")))
    assert status == 409 and "launch it (POST /experiments/dup/launch)" in body["error"]["message"], body
    from abacus.storage import experiments

    def changed_meanwhile(item):
        raise experiments.ChangedMeanwhile

    monkeypatch.setattr(experiments, "save", changed_meanwhile)
    status, body = patch("dup", {"name": "other"})
    assert status == 409 and "GET /experiments/dup and send the change again" in body["error"]["message"], body


def test_changes_follow_the_status(project):
    create("c", rollout_percentage=20)
    status, changed = patch(
        "c", {"description": "new", "variants": [{"key": "control", "weight": 30}, {"key": "one-page", "weight": 70}]}
    )
    assert status == 200 and changed["variants"][1]["weight"] == 70
    action("c", "launch_experiment")
    status, body = patch("c", {"variants": BASE["variants"]})
    assert status == 409 and body["error"]["field"] == "variants"
    assert patch("c", {"primary_metric": {"event": "other"}})[0] == 409
    assert patch("c", {"rollout_percentage": 10})[0] == 409  # only widens
    assert patch("c", {"rollout_percentage": 60, "hypothesis": "h"})[0] == 200
    targeting = [{"conditions": [{"property": "country", "operator": "eq", "value": "DE"}]}]
    assert patch("c", {"targeting": targeting, "overrides": {"qa-1": "one-page"}})[0] == 200
    status, body = patch("c", {"overrides": {"qa-1": "nope"}})
    assert status == 422 and "nope" in body["error"]["message"]
    history = call("get_experiment", path="/experiments/c")[1]["history"]
    update = [entry for entry in history if entry["action"] == "update"][1]
    assert update["changes"]["rollout_percentage"] == {"from": 20, "to": 60}


def test_listing_is_paged(project):
    for index in range(5):
        create(f"exp-{index}")
    status, first = call("list_experiments", path="/experiments")
    event = sample_event("list_experiments")
    event["rawQueryString"], event["queryStringParameters"] = "limit=2", {"limit": "2"}
    status, first = answer(invoke("ResultsFunction", event))
    assert status == 200 and [e["key"] for e in first["experiments"]] == ["exp-0", "exp-1"] and first["next"]
    event["queryStringParameters"] = {"limit": "2", "after": first["next"]}
    second = answer(invoke("ResultsFunction", event))[1]
    assert [e["key"] for e in second["experiments"]] == ["exp-2", "exp-3"]
    event["queryStringParameters"] = {"limit": "0"}
    assert answer(invoke("ResultsFunction", event))[0] == 422


def test_a_launch_may_be_dated_back_but_not_ahead_nor_before_events_can_arrive(project):
    create("m")
    now = datetime.now(UTC)
    for started_at in ["last week", "2026-11-01T00:00:00", (now + timedelta(hours=1)).isoformat(), 5]:
        status, body = action("m", "launch_experiment", {"started_at": started_at})
        assert status == 422 and body["error"]["field"] == "started_at", (started_at, body)
    status, body = action("m", "launch_experiment", {"started_at": (now - timedelta(days=15)).isoformat()})
    assert status == 422 and body["error"]["field"] == "started_at" and "14 days" in body["error"]["message"]
    assert action("m", "launch_experiment", {"start": now.isoformat()})[0] == 422
    week_ago = now - timedelta(days=7)
    status, launched = action("m", "launch_experiment", {"started_at": week_ago.isoformat()})
    assert status == 200 and launched["status"] == "running"
    assert datetime.fromisoformat(launched["started_at"]) == week_ago
    assert (
        call("get_experiment", path="/experiments/m")[1]["history"][-1]["changes"]["started_at"] == week_ago.isoformat()
    )
    create("n")
    status, launched = action("n", "launch_experiment", {})  # no time given: now
    assert status == 200 and datetime.fromisoformat(launched["started_at"]) >= now


def test_draft_previews_only_overrides_and_complete_serves_the_shipped_variant(project):
    create("d", overrides={"qa-1": "one-page"})
    assert assign("qa-1", ["d"]) == {"d": "one-page"}
    assert assign("someone", ["d"]) == {"d": None}
    action("d", "launch_experiment")
    before = assign("someone", ["d"])["d"]
    assert before in {"control", "one-page"}
    action("d", "stop_experiment")
    assert assign("someone", ["d"]) == {"d": "control"}  # stopped without shipping: control
    action("d", "ship_experiment", {"variant": "one-page"})
    assert assign("someone", ["d"]) == {"d": "one-page"}
    assert assign("qa-1", ["d"]) == {"d": "one-page"}


def test_targeting_and_rollout_decide_who_is_in(project):
    targeting = [{"conditions": [{"property": "country", "operator": "in", "value": ["DE", "AT"]}]}]
    create("t", targeting=targeting, rollout_percentage=50)
    action("t", "launch_experiment")
    assert assign("u1", ["t"], country="FR") == {"t": None}
    inside = [assign(f"user-{i}", ["t"], country="DE")["t"] for i in range(200)]
    share = sum(v is not None for v in inside) / 200
    assert 0.35 < share < 0.65
    # No assignment was stored for those outside the targeting.
    with pytest.raises(AssignmentItem.DoesNotExist):
        stored_assignment("t", "u1")


def test_variant_sticks_through_rollout_and_targeting_widening(project):
    create("s", rollout_percentage=30, variants=[{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50}])
    action("s", "launch_experiment")
    first = {f"u{i}": assign(f"u{i}", ["s"])["s"] for i in range(100)}
    inside = {k: v for k, v in first.items() if v is not None}
    patch(
        "s", {"rollout_percentage": 100, "targeting": [{"conditions": [{"property": "x", "operator": "is_not_set"}]}]}
    )
    for distinct_id, variant in inside.items():
        assert assign(distinct_id, ["s"])["s"] == variant
    assert all(assign(k, ["s"])["s"] is not None for k in first)


def test_an_exposed_user_keeps_their_variant_whatever_the_request_or_the_targeting_says(project):
    # Leaving silently when a later request carries no properties, or the targeting changed, would
    # bias the results: an exposed user keeps their variant while the experiment runs.
    targeting = [{"conditions": [{"property": "country", "operator": "in", "value": ["DE"]}]}]
    create("k", targeting=targeting)
    action("k", "launch_experiment")
    variant = assign("exposed", ["k"], country="DE")["k"]
    assert variant is not None
    assert assign("prefetched", ["k"], expose=False, country="DE")["k"] is not None
    assert assign("exposed", ["k"])["k"] == variant  # no properties this time
    patch("k", {"targeting": [{"conditions": [{"property": "country", "operator": "in", "value": ["FR"]}]}]})
    assert assign("exposed", ["k"], country="DE")["k"] == variant
    # Only exposure makes a user stay: one assigned without it, or never, follows the targeting.
    assert assign("prefetched", ["k"], country="DE")["k"] is None
    assert assign("someone", ["k"], country="DE")["k"] is None


def test_stored_variant_wins_over_the_hash(project):
    create("w")
    action("w", "launch_experiment")
    AssignmentItem(
        assignment_partition("w", "pinned"), "pinned", variant="one-page", assigned_at=datetime.now(UTC)
    ).save()
    assert all(assign("pinned", ["w"])["w"] == "one-page" for _ in range(3))


def test_exposure_is_recorded_once_under_concurrent_calls(project):
    create("x")
    action("x", "launch_experiment")
    results, barrier = [], threading.Barrier(16)

    def worker():
        barrier.wait()
        results.append(assign("racer", ["x"])["x"])

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 16
    items = list(stored_assignments("x"))
    assert len(items) == 1 and items[0].exposed_at is not None
    first = items[0].exposed_at
    assign("racer", ["x"])
    assert stored_assignment("x", "racer").exposed_at == first


def test_projects_are_isolated(project):
    other = projects.create("Other")
    create("mine")
    action("mine", "launch_experiment")
    other_admin = f"Bearer {other['admin_key']}"
    assert call("get_experiment", path="/experiments/mine", authorization=other_admin)[0] == 404
    assert call("update_experiment", {"name": "x"}, path="/experiments/mine", authorization=other_admin)[0] == 404
    status, body = call("list_experiments", authorization=other_admin)
    assert status == 200 and body["experiments"] == []
    status, _ = call("assign", {"token": other["token"], "distinct_id": "u", "experiments": ["mine"]})
    assert status == 404
    assert call("assign", {"token": other["token"], "distinct_id": "u"})[1] == {"assignments": {}}


def test_definitions_are_cached_and_a_returning_user_costs_two_reads_no_write(project, monkeypatch):
    from pynamodb.connection import base

    from abacus.assignment.spec import AssignRequest

    create("y", targeting=[{"conditions": [{"property": "country", "operator": "eq", "value": "DE"}]}])
    action("y", "launch_experiment")
    monkeypatch.setattr(definitions, "_definitions", TtlCache(ttl_seconds=60))
    sticky.assign("test", AssignRequest(token=TOKEN, distinct_id="warm"), datetime.now(UTC))  # fills the cache
    calls: list[tuple[str, bool]] = []
    original = base.Connection.dispatch

    def dispatching(self, operation, data):
        per_table = data.get("RequestItems", {}).values() if operation == "BatchGetItem" else []
        calls.append((operation, bool(data.get("ConsistentRead")) or any(t.get("ConsistentRead") for t in per_table)))
        return original(self, operation, data)

    monkeypatch.setattr(base.Connection, "dispatch", dispatching)
    inside = AssignRequest(token=TOKEN, distinct_id="steady", experiments=["y"], properties={"country": "DE"})
    first = sticky.assign("test", inside, datetime.now(UTC))["y"]
    assert first is not None
    # A new user: their person (BatchGetItem of one key: an id never joined has no item), their
    # assignment, then the write, the live check's counter of first exposures, and the check that
    # no join took the person meanwhile (strongly consistent).
    person, read = ("BatchGetItem", False), ("GetItem", False)
    write, settled = ("UpdateItem", False), ("BatchGetItem", True)
    assert calls == [person, read, write, write, settled]
    for request in (inside, inside.model_copy(update={"expose": False})):
        calls.clear()
        # Returning, exposed already: two eventually consistent reads (fractions of a write), no write.
        assert sticky.assign("test", request, datetime.now(UTC))["y"] == first
        assert calls == [person, read]
    calls.clear()
    # Outside the targeting now, exposed before: keeps the variant, for the same reads (sticky).
    outside = AssignRequest(token=TOKEN, distinct_id="steady", experiments=["y"], properties={"country": "FR"})
    assert sticky.assign("test", outside, datetime.now(UTC))["y"] == first
    assert calls == [person, read]
    calls.clear()
    # Assigned without exposure, then exposed: the write that records the first exposure.
    quiet = AssignRequest(
        token=TOKEN, distinct_id="quiet", experiments=["y"], properties={"country": "DE"}, expose=False
    )
    sticky.assign("test", quiet, datetime.now(UTC))
    calls.clear()
    sticky.assign("test", quiet.model_copy(update={"expose": True}), datetime.now(UTC))
    assert calls == [person, read, write, write, settled]
    assert stored_assignment("y", "quiet").exposed_at is not None


def test_first_exposure_is_recorded_once_when_returning_and_new_calls_race(project):
    """Half the racers find the user assigned but not exposed (the read-first path must still
    write the exposure, once); the exposure time is the first write's, whatever the order."""
    create("race")
    action("race", "launch_experiment")
    assert assign("racer", ["race"], expose=False)["race"] is not None
    results, barrier = [], threading.Barrier(16)

    def worker(expose: bool):
        barrier.wait()
        results.append(assign("racer", ["race"], expose=expose)["race"])

    threads = [threading.Thread(target=worker, args=(index % 2 == 0,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 16
    stored = stored_assignment("race", "racer")
    assert stored.exposed_at is not None
    assign("racer", ["race"])
    assert stored_assignment("race", "racer").exposed_at == stored.exposed_at


def test_planning_fields(project):
    created = create("p", primary_metric={"event": "purchase", "baseline": 0.1}, minimum_detectable_effect=0.05)
    from abacus.core import planning

    # Sized for the group-sequential test the nightly job runs.
    expected = planning.exposures_for_conversion(0.1, 0.05) * planning.SPENDING_INFLATION
    assert created["recommended_exposures_per_variant"] == pytest.approx(expected, abs=1)
    assert created["estimated_days_left"] is None
    assert create("q")["recommended_exposures_per_variant"] is None  # no baseline, no results yet


def test_days_left_wait_for_a_full_day_of_exposures(project):
    create("soon", primary_metric={"event": "purchase", "baseline": 0.1})
    assert (
        "once it has run a full day"
        in call("get_experiment", path="/experiments/soon")[1]["estimated_days_left_reason"]
    )
    action("soon", "launch_experiment")
    for index in range(20):
        assign(f"user-{index}", ["soon"])
    event = sample_event("recompute_results", path="/experiments/soon/results")
    status, results = answer(invoke("ResultsFunction", event))
    assert status == 200 and results["verdict"]["decision"] == "keep_running", results
    assert results["verdict"]["days_left"] is None and "before a full day of exposures" in results["verdict"]["reason"]
    described = call("get_experiment", path="/experiments/soon")[1]
    assert described["estimated_days_left"] is None
    assert described["estimated_days_left_reason"].startswith("cannot be estimated before a full day of exposures (")


def test_the_pre_exposure_window_reaches_no_further_back_than_events_are_kept(project):
    created = create("cuped")
    assert created["cuped"] is True and created["pre_exposure_days"] == 14
    # 91: past the 90 days events are kept (EVENT_RETENTION_DAYS); 400: past any retention.
    for days in (91, 400):
        status, body = call("create_experiment", BASE | {"key": "far", "pre_exposure_days": days})
        assert status == 422 and "pre_exposure_days" in json.dumps(body), body
    status, body = patch("cuped", {"pre_exposure_days": 91})
    assert status == 422 and "pre_exposure_days" in json.dumps(body), body
    status, body = patch("cuped", {"cuped": False, "pre_exposure_days": 30})
    assert status == 200 and body["cuped"] is False and body["pre_exposure_days"] == 30


def test_project_commands_create_and_rotate(tables, capsys):
    from abacus.__main__ import main
    from abacus.storage.credentials import key_owner

    assert main(["project", "create", "Shop"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert key_owner(created["token"]) == (created["project_id"], "token", None, None)
    assert main(["project", "rotate", created["project_id"], "--admin-key"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert key_owner(created["admin_key"]) is None
    assert key_owner(rotated["admin_key"]) == (created["project_id"], "admin", "admin", None)
    assert key_owner(created["token"]) == (created["project_id"], "token", None, None)  # untouched
    # Only hashes of the secrets are stored; the public token, readable on its project's item alone.
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("ProjectsTable")
    items = table.scan()["Items"]
    dump = json.dumps(items, default=str)
    assert rotated["admin_key"] not in dump and created["admin_key"] not in dump and created["flags_key"] not in dump
    assert [item["pk"] for item in items if created["token"] in json.dumps(item, default=str)] == [
        f"project#{created['project_id']}"
    ]
    assert main(["project", "rotate", "missing", "--token"]) == 2


def test_a_key_another_project_holds_is_refused_as_taken(tables):
    """The one failure that says a key is taken: the write's uniqueness condition (any other
    failure says what it was: tests/integration/test_operator_cli.py)."""
    projects.create("One", project_id="one", token="phc_taken", admin_key="abacus_one")
    with pytest.raises(ValueError, match=r"^that token key already belongs to another project$"):
        projects.create("Two", project_id="two", token="phc_taken", admin_key="abacus_two")


def test_rotated_admin_key_is_refused_at_once(project):
    rotated = projects.rotate("test", admin_key=True)
    assert call("list_experiments")[0] == 401  # the sample events carry the old key
    assert call("list_experiments", authorization=f"Bearer {rotated['admin_key']}")[0] == 200
    assert ADMIN_KEY != rotated["admin_key"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": TOKEN, "distinct_id": "u", "properties": {"nested": {"a": 1}}}, "properties"),
        ({"token": TOKEN, "distinct_id": "u", "properties": [1, 2]}, "properties"),
        ({"token": TOKEN, "distinct_id": "u", "expose": "yes"}, "expose"),
        ({"token": TOKEN, "distinct_id": "u", "experiments": ["Bad Key"]}, "experiments"),
    ],
)
def test_bad_assign_input_is_422_naming_the_field(project, body, field):
    status, got = call("assign", body)
    assert status == 422 and got["error"]["field"].startswith(field), got


def test_duplicate_variant_keys_are_refused(project):
    variants = [{"key": "control", "weight": 50}, {"key": "control", "weight": 50}]
    status, got = call("create_experiment", BASE | {"variants": variants})
    assert status == 422 and "unique" in got["error"]["message"]


def test_ids_with_any_characters_never_collide(project):
    create("ids")
    action("ids", "launch_experiment")
    ids = ["a", "a#", "a#b", "#a", "a/b", "ä", "a\u0308", "😀", "a b", "A"]
    for distinct_id in ids:
        assign(distinct_id, ["ids"])
    stored = {item.distinct_id for item in stored_assignments("ids")}
    assert stored == set(ids)


def test_an_experiments_users_spread_over_its_shards_and_an_unsharded_one_keeps_its_key(project):
    from abacus.storage.experiments import ExperimentItem

    create("spread")
    action("spread", "launch_experiment")
    for index in range(320):
        assign(f"spread-{index}", ["spread"])
    item = ExperimentItem.get("test", "spread")
    assert item.assignment_shards == 16
    per_key: dict[str, int] = {}
    for partition in item.assignment_partitions():
        per_key[partition] = len(list(AssignmentItem.query(partition)))
    # No one key holds the experiment: every shard its share (a binomial(320, 1/16) count).
    assert sum(per_key.values()) == 320 and len(per_key) == 16 and max(per_key.values()) < 3 * 320 / 16
    assert all(count > 0 for count in per_key.values())
    # An experiment created before there were shards keeps its one key: assignments, exposures
    # reported as events and the nightly job all find its users there.
    create("old")
    action("old", "launch_experiment")
    old = ExperimentItem.get("test", "old")
    old.assignment_shards = None
    old.save()
    definitions._definitions.clear()
    variant = assign("old-user", ["old"])["old"]
    assert AssignmentItem.get("test#old", "old-user").variant == variant


def test_every_invalid_field_is_named_at_once_saying_what_to_fix(project):
    body = BASE | {
        "key": "New Checkout",
        "variants": [{"key": "control", "weight": 60}, {"key": "one-page", "weight": 60}],
        "overrides": {"Alice": 5},
        "primary_metric": {"event": "purchase", "kind": "median"},
    }
    status, got = call("create_experiment", body)
    assert status == 422, got
    error = got["error"]
    fields = [entry["field"] for entry in error["errors"]]
    assert fields == ["variants", "overrides.Alice", "primary_metric.kind", "key"], error
    assert error["field"] == "variants", "the first stays where clients read it"
    for entry in error["errors"]:
        assert f"{entry['field']}: {entry['message']}" in error["message"]
    text = json.dumps(got)
    assert "Value error" not in text and "pattern" not in text and "^[" not in text, text
    messages = {entry["field"]: entry["message"] for entry in error["errors"]}
    assert messages["variants"] == "weights must sum to 100, not 120"
    assert "lowercase slug: letters, digits, - and _, at most 64" in messages["key"]


def test_independent_checks_across_fields_are_all_reported(project):
    body = BASE | {
        "name": "",
        "variants": [{"key": "b", "weight": 60}, {"key": "b", "weight": 60}],
        "primary_metric": {"event": "purchase", "kind": "count", "property": "amount", "baseline": 0.2},
    }
    status, got = call("create_experiment", body)
    messages = {entry["field"]: entry["message"] for entry in got["error"]["errors"]}
    assert status == 422 and set(messages) == {"name", "variants", "primary_metric"}, got
    assert all(part in messages["variants"] for part in ("unique", "'control'", "not 120")), messages
    assert "only a sum metric takes a property" in messages["primary_metric"]
    assert "baseline_mean and baseline_sd" in messages["primary_metric"]
    # An override naming no variant is found beside another field's error.
    status, got = call("create_experiment", BASE | {"name": "", "overrides": {"qa-1": "nope", "qa-2": "nah"}})
    messages = {entry["field"]: entry["message"] for entry in got["error"]["errors"]}
    assert status == 422 and set(messages) == {"name", "overrides"}, got
    assert "'qa-1'" in messages["overrides"] and "'qa-2'" in messages["overrides"]
    # Windows longer than events are kept: every one of them.
    long_windows = {"pre_exposure_days": 80, "primary_metric": {"event": "purchase", "window_days": 80}}
    status, got = call("create_experiment", BASE | long_windows)
    fields = [entry["field"] for entry in got["error"]["errors"]]
    assert status == 422 and fields == ["pre_exposure_days", "primary_metric.window_days"], got


def test_a_change_leaving_the_experiment_invalid_names_the_field(project):
    create("e")
    status, got = patch(
        "e",
        {
            "variants": [{"key": "control", "weight": 50}, {"key": "two-page", "weight": 50}],
            "overrides": {"qa-1": "one-page"},
        },
    )
    assert status == 422 and got["error"]["field"] == "overrides", got
    assert got["error"]["errors"] == [
        {"field": "overrides", "message": "'qa-1' is given 'one-page', which is not a variant (control, two-page)"}
    ]
