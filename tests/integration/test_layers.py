"""Layers (issue 18): mutually exclusive experiments. Each experiment of a layer takes its share
of the layer's buckets at its launch; over 100,000 ids no user is in two of them, each share is
within 1% of its allocation, assignments stay put across a neighbour's launch and completion, and
PostHog's local evaluation of the published definitions gives the same answers."""

import json
import threading
from collections import Counter

import pytest

from abacus import projects
from abacus.assignment import sticky
from abacus.experiments import definitions, experiment_layers
from abacus.storage import experiments, layer_allocations
from abacus.storage.layer_allocations import LayerItem
from tests.conftest import TOKEN, answer, function_of, invoke, sample_event
from tests.posthog_matcher import evaluate_locally

BASE = json.loads(sample_event("create_experiment")["body"])
IDS = [f"user-{n}" for n in range(100_000)]


def call(name: str, body: dict | None = None, path: str | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    return answer(invoke(function_of(event), event))


def create(key: str, share: int, layer: str = "checkout", **fields) -> None:
    status, body = call("create_experiment", BASE | {"key": key, "layer": {"key": layer, "share": share}} | fields)
    assert status == 201, body


def act(key: str, action: str, body: dict | None = None) -> tuple[int, dict]:
    return call(f"{action}_experiment", body, path=f"/experiments/{key}/{action}")


def answers(keys: list[str]) -> dict[str, Counter]:
    """Every id's variant in each experiment, by /assign's rules for a user it has stored nothing
    for (what the 100,000 are checked on; a sample goes through /assign itself below)."""
    items = {item.key: item for item in experiments.in_project("test") if item.key in keys}
    return {
        key: Counter(
            sticky.stateless_variant(items[key], definitions.definition(items[key]), distinct_id, {})
            for distinct_id in IDS
        )
        for key in keys
    }


def members(key: str) -> set[str]:
    item = experiments.get("test", key)
    assert item is not None
    spec = definitions.definition(item)
    return {d for d in IDS if sticky.stateless_variant(item, spec, d, {}) is not None}


def assign(distinct_id: str, keys: list[str] | None = None) -> dict:
    status, body = call("assign", {"token": TOKEN, "distinct_id": distinct_id, "experiments": keys})
    assert status == 200, body
    return body["assignments"]


def test_a_layers_experiments_never_share_a_user_and_each_gets_its_share(project):
    create("one", 30)
    create("two", 50, variants=[{"key": "control", "weight": 50}, {"key": "b", "weight": 50}])
    for key in ("one", "two"):
        assert act(key, "launch")[0] == 200
    create("three", 30)
    status, error = act("three", "launch")
    assert status == 409 and error["error"]["field"] == "layer.share", error
    assert "has 20% of its users free" in error["error"]["message"] and "at most 20" in error["error"]["message"]
    one, two = members("one"), members("two")
    assert not one & two
    assert abs(len(one) / len(IDS) - 0.30) < 0.01 and abs(len(two) / len(IDS) - 0.50) < 0.01
    # Another layer's experiments are independent of this one's.
    create("elsewhere", 100, layer="pricing")
    assert act("elsewhere", "launch")[0] == 200
    assert abs(len(members("elsewhere") & one) / len(one) - 1) < 1e-9  # everyone: share 100


def test_assignments_stay_put_across_a_neighbours_launch_and_completion(project):
    create("one", 40)
    create("two", 60)
    assert act("one", "launch")[0] == 200 and act("two", "launch")[0] == 200
    sample = IDS[:300]
    before = {d: assign(d) for d in sample}  # exposed through /assign itself
    assert {tuple(sorted(k for k, v in a.items() if v)) for a in before.values()} == {("one",), ("two",)}
    assert act("two", "stop")[0] == 200  # its buckets go back to the layer
    create("three", 60)
    assert act("three", "launch")[0] == 200  # takes them
    one, three = members("one"), members("three")
    assert not one & three and abs(len(three) / len(IDS) - 0.60) < 0.01
    for distinct_id in sample:
        now = assign(distinct_id, ["one", "two", "three"])
        assert now["one"] == before[distinct_id]["one"], distinct_id  # the running neighbour's users stay
        assert now["two"] == "control"  # complete: control for everyone
        assert (now["one"] is None) or now["three"] is None  # never in two running experiments
    # Users of the completed experiment are like any other user of the buckets it gave back.
    was_in_two = [d for d in sample if before[d]["two"] is not None]
    assert was_in_two and all(assign(d)["three"] is not None for d in was_in_two)
    stored = LayerItem.get("layer#test#checkout")
    assert set(stored.allocations) == {"one", "three"}


def test_two_launches_racing_for_the_last_buckets_one_wins(project, monkeypatch):
    create("one", 50)
    assert act("one", "launch")[0] == 200
    create("two", 40)
    create("three", 40)
    statuses: dict[str, int] = {}
    # The race made certain: both launches read the layer before either writes.
    both_read, read = threading.Barrier(2), layer_allocations.get

    def read_then_wait(project_id: str, layer_key: str):
        layer = read(project_id, layer_key)
        both_read.wait(timeout=30)
        return layer

    monkeypatch.setattr(layer_allocations, "get", read_then_wait)

    def launch(key: str) -> None:
        statuses[key] = act(key, "launch")[0]

    threads = [threading.Thread(target=launch, args=(key,)) for key in ("two", "three")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses.values()) == [200, 409], statuses
    running = [item.key for item in experiments.in_project("test") if item.status == "running"]
    allocations = LayerItem.get("layer#test#checkout").allocations
    assert sorted(allocations) == sorted(running) and len(running) == 2
    taken = [b for ranges in allocations.values() for first, end in ranges for b in range(first, end)]
    assert len(taken) == len(set(taken)) == 90


def test_the_layer_is_frozen_while_running_and_validated(project):
    create("one", 30)
    assert act("one", "launch")[0] == 200
    status, error = call("update_experiment", {"layer": {"key": "checkout", "share": 60}}, path="/experiments/one")
    assert status == 409 and "layer" in error["error"]["message"], error
    status, error = call("create_experiment", BASE | {"key": "bad", "layer": {"key": "checkout", "share": 0}})
    assert status == 422 and error["error"]["field"] == "layer.share", error


def test_posthog_local_evaluation_of_a_layer_equals_assign(project):
    create("one", 30, variants=[{"key": "control", "weight": 50}, {"key": "b", "weight": 50}])
    create("two", 45, rollout_percentage=80)
    create("three", 25, targeting=[{"conditions": [{"property": "plan", "operator": "eq", "value": "pro"}]}])
    for key in ("one", "two", "three"):
        assert act(key, "launch")[0] == 200
    assert act("two", "stop")[0] == 200  # freed: the layer flag has a free segment in the middle
    create("four", 20)
    assert act("four", "launch")[0] == 200
    document = json.loads(invoke("AssignFunction", sample_event("posthog_flag_definitions"))["body"])
    flags = {flag["key"]: flag for flag in document["flags"]}
    assert experiment_layers.flag_key("checkout") in flags
    items = {item.key: item for item in experiments.in_project("test")}
    seen: Counter = Counter()
    for n, distinct_id in enumerate(IDS):
        properties = {"plan": "pro"} if n % 2 else {"plan": "free"}
        for key in ("one", "three", "four"):
            local = evaluate_locally(flags, key, distinct_id, properties)
            spec = definitions.definition(items[key])
            expected = sticky.stateless_variant(items[key], spec, distinct_id, properties)
            assert local == expected, (key, distinct_id, local, expected)
            seen[key, expected is not None] += 1
    assert all(seen[key, True] > 5_000 for key in ("one", "three", "four")), seen


def test_a_deleted_projects_layers_go_with_it(project):
    create("one", 30)
    assert act("one", "launch")[0] == 200
    from datetime import UTC, datetime

    deleted = projects.delete("test", datetime.now(UTC))
    assert deleted["layers"] == 1
    with pytest.raises(LayerItem.DoesNotExist):
        LayerItem.get("layer#test#checkout")
