"""Scheduled launches and stops (abacus.experiments.schedules.run_due) on moto's tables, the
schedule's fields through the API (422 and 409 naming the field), and the by-due index that finds
what is due without a Scan."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from abacus.experiments import schedules
from abacus.storage import experiments
from tests.conftest import answer, function_of, invoke, sample_event

BASE = json.loads(sample_event("create_experiment")["body"])


def call(name: str, body: dict | None = None, path: str | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    return answer(invoke(function_of(event), event))


def create(key: str, **fields) -> dict:
    status, body = call("create_experiment", BASE | {"key": key} | fields)
    assert status == 201, body
    return body


def get(key: str) -> dict:
    return call("get_experiment", path=f"/experiments/{key}")[1]


def patch(key: str, body: dict) -> tuple[int, dict]:
    return call("update_experiment", body, path=f"/experiments/{key}")


def lifecycle(key: str, action: str, body: dict | None = None) -> tuple[int, dict]:
    return call(f"{action}_experiment", body, path=f"/experiments/{key}/{action}")


def at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def due_keys(now: datetime) -> set[str]:
    return {key for _, key in experiments.due(now, 100)}


def test_run_due_launches_due_drafts_and_stops_due_experiments_and_leaves_the_rest(project):
    now = datetime.now(UTC)
    create("due-launch", starts_at=at(now + timedelta(hours=1)), ends_at=at(now + timedelta(days=3)))
    create("later-launch", starts_at=at(now + timedelta(hours=3)))
    create("due-stop")
    create("later-stop")
    create("by-hand")  # no schedule: never in the index
    for key, ends in (("due-stop", 1), ("later-stop", 5)):
        assert lifecycle(key, "launch")[0] == 200
        assert patch(key, {"ends_at": at(now + timedelta(hours=ends))})[0] == 200
    assert lifecycle("by-hand", "launch")[0] == 200
    assert due_keys(now + timedelta(days=30)) == {"due-launch", "later-launch", "due-stop", "later-stop"}

    run = now + timedelta(hours=2)
    summary = schedules.run_due(run)
    assert summary == {
        "launched": ["test/due-launch"],
        "stopped": ["test/due-stop"],
        "failed": [],
        "raced": 0,
        "errors": 0,
    }
    launched, stopped = get("due-launch"), get("due-stop")
    assert launched["status"] == "running" and launched["started_at"] == run.isoformat()
    assert launched["starts_at"] is None and launched["ends_at"] is not None  # its stop is still to come
    entry = launched["history"][-1]
    assert (entry["action"], entry["by"]) == ("launch", "schedule")
    assert entry["changes"]["starts_at"] == {"from": at(now + timedelta(hours=1)), "to": None}
    assert stopped["status"] == "complete" and stopped["stopped_at"] == run.isoformat() and stopped["ends_at"] is None
    assert (stopped["history"][-1]["action"], stopped["history"][-1]["by"]) == ("stop", "schedule")
    for key, status in (("later-launch", "draft"), ("later-stop", "running"), ("by-hand", "running")):
        assert get(key)["status"] == status
    # Done is done: nothing due any more until the later ones' times (and due-launch's ends_at).
    assert schedules.run_due(run)["launched"] == [] and due_keys(run) == set()
    assert due_keys(now + timedelta(days=30)) == {"due-launch", "later-launch", "later-stop"}


def test_a_refused_launch_is_recorded_and_not_tried_again(project):
    """A draft whose layer has too few users free when its time comes: the launch's own check
    (409 by hand) refuses it; the refusal is in its history, its starts_at is cleared, and the
    next runs leave it alone (a person launches it once the layer has room)."""
    now = datetime.now(UTC)
    create("holder", layer={"key": "checkout", "share": 60})
    assert lifecycle("holder", "launch")[0] == 200
    starts_at = at(now + timedelta(minutes=5))
    create("crowded", layer={"key": "checkout", "share": 60}, starts_at=starts_at)

    run = now + timedelta(minutes=6)
    summary = schedules.run_due(run)
    assert summary["launched"] == [] and [f["key"] for f in summary["failed"]] == ["crowded"]
    assert "layer.share" in summary["failed"][0]["reason"]
    crowded = get("crowded")
    assert crowded["status"] == "draft" and crowded["starts_at"] is None and crowded["started_at"] is None
    entry = crowded["history"][-1]
    assert (entry["action"], entry["by"]) == ("launch_refused", "schedule")
    assert "layer 'checkout' has 40% of its users free" in entry["changes"]["reason"]
    assert entry["changes"]["starts_at"] == {"from": starts_at, "to": None}
    later = schedules.run_due(run + timedelta(minutes=1))
    assert later["failed"] == [] and len(get("crowded")["history"]) == len(crowded["history"])
    assert due_keys(run + timedelta(days=1)) == set()


def test_at_most_limit_a_run_the_earliest_first(project):
    now = datetime.now(UTC)
    for minutes, key in ((3, "third"), (1, "first"), (2, "second")):
        create(key, starts_at=at(now + timedelta(minutes=minutes)))
    run = now + timedelta(minutes=10)
    assert schedules.run_due(run, limit=2)["launched"] == ["test/first", "test/second"]
    assert get("third")["status"] == "draft"
    assert schedules.run_due(run, limit=2)["launched"] == ["test/third"]


def test_a_launch_or_stop_by_hand_clears_the_schedule(project):
    now = datetime.now(UTC)
    create("early", starts_at=at(now + timedelta(hours=1)), ends_at=at(now + timedelta(hours=5)))
    status, launched = lifecycle("early", "launch")
    assert status == 200 and launched["starts_at"] is None and launched["ends_at"] == at(now + timedelta(hours=5))
    assert launched["history"][-1]["changes"]["starts_at"]["to"] is None
    assert due_keys(now + timedelta(days=1)) == {"early"}  # now due to stop
    status, stopped = lifecycle("early", "stop")
    assert status == 200 and stopped["ends_at"] is None
    assert due_keys(now + timedelta(days=1)) == set()
    # A ship stops too.
    create("shipped", ends_at=at(now + timedelta(hours=5)))
    assert lifecycle("shipped", "launch")[0] == 200
    status, shipped = lifecycle("shipped", "ship", {"variant": "one-page"})
    assert status == 200 and shipped["ends_at"] is None and due_keys(now + timedelta(days=1)) == set()


def test_the_schedule_and_automation_are_shown_and_changed_as_the_status_allows(project):
    now = datetime.now(UTC)
    created = create("policy", automation={"ship": True, "minimum_days": 14})
    assert created["automation"] == {"ship": True, "no_effect": False, "srm": False, "minimum_days": 14}
    assert created["starts_at"] is None and created["ends_at"] is None
    assert create("defaults")["automation"] == {"ship": False, "no_effect": False, "srm": False, "minimum_days": 7}
    # An offset is kept as the same instant in UTC.
    status, body = patch("policy", {"starts_at": (now + timedelta(days=1)).astimezone().isoformat()})
    assert status == 200 and body["starts_at"] == at(now + timedelta(days=1))
    assert lifecycle("policy", "launch")[0] == 200
    status, body = patch("policy", {"ends_at": at(now + timedelta(days=20)), "automation": {"srm": True}})
    assert status == 200 and body["automation"]["srm"] and not body["automation"]["ship"]  # replaced whole
    status, body = patch("policy", {"starts_at": at(now + timedelta(days=2))})
    assert status == 409 and body["error"]["field"] == "starts_at"
    duplicate = call("duplicate_experiment", {"key": "policy-again"}, path="/experiments/policy/duplicate")[1]
    assert duplicate["ends_at"] is None and duplicate["automation"]["srm"]  # the policy is copied, not the run's times
    assert lifecycle("policy", "stop")[0] == 200
    for field, value in (("ends_at", at(now + timedelta(days=30))), ("automation", {"ship": True})):
        status, body = patch("policy", {field: value})
        assert status == 409 and body["error"]["field"] == field


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"starts_at": "-1h"}, "starts_at", "has passed"),
        ({"ends_at": "-1h"}, "ends_at", "has passed"),
        ({"starts_at": "+2h", "ends_at": "+1h"}, "ends_at", "after starts_at"),
        ({"starts_at": "2030-01-01T00:00:00"}, "starts_at", "timezone"),
        # Past the last time Python holds once in UTC (found by the fuzzing test: a 500 before).
        ({"ends_at": "9999-12-31T23:30:00-01:00"}, "ends_at", "years 1 to 9999"),
        ({"starts_at": "0001-01-01T00:30:00+01:00"}, "starts_at", "years 1 to 9999"),
        ({"automation": {"minimum_days": 0}}, "automation.minimum_days", "greater than or equal to 1"),
        ({"automation": {"ship": "yes"}}, "automation.ship", "boolean"),
        ({"automation": {"stop": True}}, "automation.stop", ""),
        ({"automation": None}, "automation", ""),
    ],
)
def test_a_schedule_or_policy_that_cannot_be_is_a_422_naming_the_field(project, fields, field, words):
    now = datetime.now(UTC)
    relative = {"-1h": now - timedelta(hours=1), "+1h": now + timedelta(hours=1), "+2h": now + timedelta(hours=2)}
    body = {name: at(relative[value]) if str(value) in relative else value for name, value in fields.items()}
    status, refused = call("create_experiment", BASE | {"key": "bad"} | body)
    assert status == 422 and refused["error"]["field"] == field, refused
    assert words.lower() in refused["error"]["message"].lower()
    create("fine")
    status, refused = patch("fine", body)
    assert status == 422 and refused["error"]["field"] == field, refused


def test_a_launch_after_its_scheduled_stop_is_refused_naming_ends_at(project):
    """A draft whose ends_at has passed before anyone launched it would stop at once: 409."""
    now = datetime.now(UTC)
    create("late", ends_at=at(now + timedelta(hours=1)))
    experiments_item = experiments.get("test", "late")
    assert experiments_item is not None
    experiments_item.definition = {**experiments_item.definition, "ends_at": at(now - timedelta(minutes=1))}
    experiments.save(experiments_item)  # as if an hour went by
    status, body = lifecycle("late", "launch")
    assert status == 409 and body["error"]["field"] == "ends_at" and "has passed" in body["error"]["message"]
