"""Issue 31: what a team meets in its first hour. A bare /assign exposes no one; a draft can be
deleted and any experiment duplicated; an archived experiment's key can be taken again (at once
with `replace_archived`, or once its retention has passed), its data kept apart; the list filters
by status; weights are whole percentages, with the split to send instead; a nightly run started
early never counts time that has not happened."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from abacus import projects
from abacus.experiments import definitions
from abacus.experiments.spec import nearest_whole_split
from abacus.storage import experiments
from abacus.storage.assignments import AssignmentItem
from abacus.storage.experiments import ExperimentItem
from tests.conftest import TOKEN, answer, function_of, invoke, sample_event, stored_assignment

BASE = json.loads(sample_event("create_experiment")["body"])


def call(name: str, body: dict | None = None, path: str | None = None, query: dict | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return answer(invoke(function_of(event), event))


def create(key: str, **fields) -> tuple[int, dict]:
    return call("create_experiment", BASE | {"key": key} | fields)


def act(key: str, action: str, body: dict | None = None) -> tuple[int, dict]:
    return call(f"{action}_experiment", body, path=f"/experiments/{key}/{action}")


def exposed_at(key: str, distinct_id: str) -> datetime | None:
    """The user's stored first exposure to the experiment; None when none is stored."""
    try:
        return stored_assignment(key, distinct_id).exposed_at
    except AssignmentItem.DoesNotExist:
        return None


def assign(distinct_id: str, **fields) -> tuple[int, dict]:
    return call("assign", {"token": TOKEN, "distinct_id": distinct_id} | fields)


# A bare /assign


def test_a_bare_assign_answers_variants_but_exposes_no_one(project):
    assert create("new-checkout")[0] == 201 and act("new-checkout", "launch")[0] == 200
    status, body = assign("user-1")
    assert status == 200 and body["assignments"]["new-checkout"] in ("control", "one-page")
    assert exposed_at("new-checkout", "user-1") is None  # not a first exposure
    status, body = assign("user-1", expose=True)
    assert status == 422 and body["error"]["field"] == "experiments", body
    assert "diluting them all" in body["error"]["message"]
    status, body = assign("user-2", experiments=["new-checkout"])
    assert status == 200 and exposed_at("new-checkout", "user-2") is not None
    # Asked again with the list, the first user's variant is the one answered before (sticky).
    variant = assign("user-1")[1]["assignments"]["new-checkout"]
    assert assign("user-1", experiments=["new-checkout"])[1]["assignments"]["new-checkout"] == variant
    assert exposed_at("new-checkout", "user-1") is not None


# Drafts deleted, experiments duplicated


def test_a_draft_is_deleted_and_its_key_is_free_again(project):
    assert create("typo")[0] == 201
    status, _ = call("delete_experiment", path="/experiments/typo")
    assert status == 204
    assert call("get_experiment", path="/experiments/typo")[0] == 404
    assert create("typo")[0] == 201  # the key is free
    assert call("delete_experiment", path="/experiments/missing")[0] == 404


@pytest.mark.parametrize(("steps", "advice"), [(["launch"], "stop it first"), (["launch", "stop"], "archive it")])
def test_only_a_draft_can_be_deleted(project, steps, advice):
    assert create("ran")[0] == 201
    for step in steps:
        assert act("ran", step)[0] == 200
    status, body = call("delete_experiment", path="/experiments/ran")
    assert status == 409 and advice in body["error"]["message"], body
    assert call("get_experiment", path="/experiments/ran")[0] == 200


def test_a_running_experiment_is_duplicated_into_a_draft_with_its_definition(project):
    assert create("frozen", overrides={"tester": "one-page"})[0] == 201 and act("frozen", "launch")[0] == 200
    status, body = call("duplicate_experiment", {"key": "frozen-v2"}, path="/experiments/frozen/duplicate")
    assert status == 201, body
    original = call("get_experiment", path="/experiments/frozen")[1]
    assert body["status"] == "draft" and body["key"] == "frozen-v2"
    for field in ("name", "variants", "primary_metric", "overrides", "minimum_detectable_effect", "targeting"):
        assert body[field] == original[field], field
    history = call("get_experiment", path="/experiments/frozen-v2")[1]["history"]
    assert history[0]["action"] == "create" and history[0]["changes"] == {"duplicated_from": "frozen"}
    # The copy is a draft: what was frozen can change now.
    status, changed = call(
        "update_experiment",
        {"variants": [{"key": "control", "weight": 30}, {"key": "one-page", "weight": 70}]},
        path="/experiments/frozen-v2",
    )
    assert status == 200 and changed["variants"][1]["weight"] == 70
    status, body = call(
        "duplicate_experiment", {"key": "frozen", "name": "Again"}, path="/experiments/frozen/duplicate"
    )
    assert status == 409 and body["error"]["field"] == "key"
    status, body = call("duplicate_experiment", {"key": "Not A Key"}, path="/experiments/frozen/duplicate")
    assert status == 422 and body["error"]["field"] == "key"


# Archived keys


def _archived(key: str) -> None:
    assert create(key)[0] == 201
    for step in ("launch", "stop", "archive"):
        assert act(key, step)[0] == 200, step


def test_an_archived_key_is_refused_saying_when_it_is_free_and_how_to_take_it_now(project):
    _archived("reused")
    status, body = create("reused")
    assert status == 409 and body["error"]["field"] == "key"
    message = body["error"]["message"]
    free_from = (datetime.now(UTC) + timedelta(days=90)).date()
    assert "archived experiment until" in message and '"replace_archived": true' in message, message
    assert str(free_from.year) in message


def test_replacing_an_archived_experiment_keeps_its_data_apart(project):
    _archived("reused")
    # One user exposed in the archived experiment, with a snapshot of its results.
    assert create("other")[0] == 201  # keeps the project's list non-trivial
    old = ExperimentItem.get("test", "reused")
    old_partition = old.assignment_partition("user-1")
    status, body = create("reused", replace_archived=True, name="Second try")
    assert status == 201 and body["status"] == "draft" and body["name"] == "Second try", body
    new = ExperimentItem.get("test", "reused")
    assert new.generation == 2 and new.assignment_partition("user-1") != old_partition
    assert new.experiment_id == "test#reused~2"
    # The archived one is retired: not listed, not readable, but kept for its data's deletion.
    listed = [row["key"] for row in call("list_experiments")[1]["experiments"]]
    assert listed == ["other", "reused"]
    retired = ExperimentItem.get("test", "reused~1")
    assert (
        retired.status == "retired"
        and retired.experiment_id == "test#reused"
        and retired.history[-1]["action"] == "archive"
    )
    assert call("get_experiment", path="/experiments/reused~1")[0] == 404
    # The new experiment starts from nothing: no results, no stored variant of the old one's users.
    assert act("reused", "launch")[0] == 200
    assert call("get_results", path="/experiments/reused/results")[1]["status"] == "pending"
    status, body = assign("user-1", experiments=["reused"])
    assert status == 200 and stored_assignment("reused", "user-1").experiment_id.startswith("test#reused~2#")
    # Taking the key again while the new one runs is refused: it is not archived.
    status, body = create("reused", replace_archived=True)
    assert status == 409 and "running" in body["error"]["message"]


def test_a_project_deleted_deletes_its_retired_experiments_data_too(project):
    _archived("reused")
    assert assign("user-1", experiments=["reused"])[0] == 200  # archived: served, nothing stored
    assert create("reused", replace_archived=True)[0] == 201
    deleted = projects.delete("test", datetime.now(UTC))
    assert deleted["experiments"] == 2  # the new one and the retired one
    assert experiments.in_project("test", with_retired=True) == []


def test_an_archived_key_is_free_once_its_retention_has_passed(project, monkeypatch):
    _archived("old")
    archived = ExperimentItem.get("test", "old")
    later = definitions.archived_key_free(archived) + timedelta(minutes=1)
    assert archived.updated_at + timedelta(days=90) <= later
    from abacus.experiments.spec import ExperimentCreate

    item = definitions.create("test", ExperimentCreate.model_validate(BASE | {"key": "old"}), later)
    assert item.generation == 2 and item.status == "draft"


def test_a_replacement_racing_a_change_of_the_archived_one_is_refused(project, monkeypatch):
    _archived("raced")
    original_get = experiments.get

    def read_then_changed(project_id: str, key: str):
        held = original_get(project_id, key)
        fresher = original_get(project_id, key)  # someone else saves it meanwhile (a new version)
        assert fresher is not None
        fresher.save()  # unchanged, but saved: its version moves on
        return held

    monkeypatch.setattr(experiments, "get", read_then_changed)
    status, body = create("raced", replace_archived=True)
    assert status == 409 and "changed meanwhile" in body["error"]["message"], body
    monkeypatch.undo()
    assert ExperimentItem.get("test", "raced").status == "archived"
    assert experiments.get("test", "raced~1") is None


# The list


def test_the_list_filters_by_status(project):
    assert create("a-draft")[0] == 201
    assert create("b-running")[0] == 201 and act("b-running", "launch")[0] == 200
    _archived("c-archived")
    for wanted, keys in (("running", ["b-running"]), ("draft", ["a-draft"]), ("archived", ["c-archived"])):
        got = call("list_experiments", query={"status": wanted})
        assert got[0] == 200 and [row["key"] for row in got[1]["experiments"]] == keys, wanted
    status, body = call("list_experiments", query={"status": "live"})
    assert status == 422 and body["error"]["field"] == "status", body


# Weights


def test_fractional_weights_are_refused_with_the_whole_split_to_send(project):
    variants = [{"key": "control", "weight": 33.4}, {"key": "b", "weight": 33.3}, {"key": "c", "weight": 33.3}]
    status, body = create("thirds", variants=variants)
    assert status == 422 and body["error"]["field"] == "variants", body
    assert "whole percentages" in body["error"]["message"] and "send 34/33/33" in body["error"]["message"]
    assert create("thirds", variants=[{"key": "control", "weight": 34.0}, {"key": "b", "weight": 66}])[0] == 201


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([33.4, 33.3, 33.3], [34, 33, 33]),
        ([50.5, 49.5], [51, 49]),
        ([12.5, 12.5, 75], [13, 12, 75]),
        ([1, 1, 1], [34, 33, 33]),  # scaled to 100 first
        ([0.2, 99.8], [0, 100]),
    ],
)
def test_the_nearest_whole_split_sums_to_100(weights, expected):
    split = nearest_whole_split(weights)
    assert split == expected and sum(split) == 100


# The cut-off


def test_a_nightly_run_started_early_counts_the_day_so_far_not_the_future(project):
    from abacus.nightly import cutoffs
    from abacus_local import nightly_inline

    launched = datetime.now(UTC) - timedelta(minutes=3)
    assert create("early")[0] == 201
    definitions.apply("test", "early", "launch", launched)
    assert assign("user-1", experiments=["early"])[0] == 200
    now = datetime.now(UTC)
    tonight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=3)
    assert cutoffs.capped_cutoff(tonight, now) == now
    nightly_inline.run_all(tonight, now, lambda experiment, error: pytest.fail(str(error)))
    results = call("get_results", path="/experiments/early/results")[1]
    assert results["status"] == "ready" and datetime.fromisoformat(results["cutoff"]) == now
    assert results["date"] == now.date().isoformat()
    assert "the day so far" in results["covers"] and "never passes the time" in results["covers"]
    days = results["verdict"].get("days_running")
    assert days is None or days < 0.01, results["verdict"]


def test_the_terminal_warns_of_a_metric_event_never_received_before_the_first_snapshot(project, capsys):
    from abacus.__main__ import main
    from abacus.ingestion import ingest

    assert create("typo", primary_metric={"event": "purchse"})[0] == 201 and act("typo", "launch")[0] == 200
    sent = {"event": "purchase", "distinct_id": "user-1", "uuid": "0b7e1d3c-0000-4000-8000-000000000001"}
    assert ingest.ingest("test", [sent], datetime.now(UTC))["accepted"] == 1
    assert main(["results", "typo", "--project", "test"]) == 0
    printed = capsys.readouterr().out
    assert "no results yet" in printed and "Warning: no `purchse` event received since the launch" in printed
    assert "received: `purchase`" in printed


def test_a_launch_body_that_is_not_an_object_is_refused(project):
    """Found by the fuzzer once a duplicate gave it a draft to launch: `[null, null]` was read as no body."""
    assert create("body")[0] == 201
    event = sample_event("launch_experiment", path="/experiments/body/launch")
    event["body"] = "[null, null]"
    status, body = answer(invoke("ResultsFunction", event))
    assert status == 422 and body["error"]["field"] == "body", body
    assert call("get_experiment", path="/experiments/body")[1]["status"] == "draft"
    assert act("body", "launch")[0] == 200  # no body at all: now
