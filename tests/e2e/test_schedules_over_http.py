"""A scheduled launch and stop on a running stack: a draft created with starts_at a few seconds
ahead is running shortly after, and stopped at its ends_at, by AutomationFunction's schedule (the
local stack fires the template's rate(...) schedule every ABACUS_LOCAL_RATE_SECONDS; deployed,
EventBridge every minute), under the function's own IAM policy (the stack fixture fails the
module on a refused call)."""

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from abacus_local.client import AbacusClient
from tests.e2e.conftest import TARGET_URL

RATE_SECONDS = "1"
# Locally the schedule fires every second; deployed, EventBridge's minute, and its own delay.
WAIT_S = 180 if TARGET_URL else 60


@pytest.fixture(scope="module", autouse=True)
def fast_schedules() -> Iterator[None]:
    """The module's local stack (started after this, by stack_url) fires its schedules every second."""
    before = os.environ.get("ABACUS_LOCAL_RATE_SECONDS")
    os.environ["ABACUS_LOCAL_RATE_SECONDS"] = RATE_SECONDS
    yield
    if before is None:
        del os.environ["ABACUS_LOCAL_RATE_SECONDS"]
    else:
        os.environ["ABACUS_LOCAL_RATE_SECONDS"] = before


def wait_for_status(client: AbacusClient, key: str, status: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        experiment = client.call("GET", f"/experiments/{key}", admin=True)
        if experiment["status"] == status:
            return experiment
        assert time.monotonic() < deadline, f"{key} is still {experiment['status']}, not {status}"
        time.sleep(0.5)


def at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def test_a_scheduled_launch_and_stop_happen(client):
    """Launched at starts_at and stopped at ends_at, each recorded as the schedule's. The times
    are far enough ahead for the creation to come first on a busy machine (the function is warmed
    up before), and the test reads the history rather than catching the running status."""
    client.call("GET", "/experiments?limit=1", admin=True)  # a cold start is not the creation's
    now = datetime.now(UTC)
    key = f"scheduled-{now.strftime('%H%M%S%f')}"
    starts_at, ends_at = now + timedelta(seconds=15), now + timedelta(seconds=20)
    created = client.create_experiment(
        {
            "key": key,
            "name": "Scheduled",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
            "starts_at": at(starts_at),
            "ends_at": at(ends_at),
        }
    )
    assert created["status"] == "draft" and created["starts_at"] is not None
    complete = wait_for_status(client, key, "complete")
    assert [(entry["action"], entry.get("by")) for entry in complete["history"][1:]] == [
        ("launch", "schedule"),
        ("stop", "schedule"),
    ]
    assert datetime.fromisoformat(complete["started_at"]) >= starts_at
    assert datetime.fromisoformat(complete["stopped_at"]) >= ends_at
    assert complete["starts_at"] is None and complete["ends_at"] is None


def test_a_bandit_is_reweighted_by_the_schedule(client):
    """A bandit's first recompute is an hour after its launch: launched as of an hour ago less
    LEAD_S, it is due LEAD_S from now. Meanwhile its users are assigned and convert over HTTP; then
    the schedule starts the recompute, the nightly job's worker computes its snapshot and
    reweights it: its second phase moves traffic to the variant that converts."""
    lead = timedelta(seconds=45)  # far more than 60 assignments and a batch of events take
    now = datetime.now(UTC)
    key = f"bandit-{now.strftime('%H%M%S%f')}"
    rates = {"control": 0.1, "b": 0.1, "c": 0.9, "d": 0.1}
    client.create_experiment(
        {
            "key": key,
            "name": "Scheduled bandit",
            "variants": [{"key": variant, "weight": 25} for variant in rates],
            "primary_metric": {"event": "purchase"},
            "allocation": {"kind": "bandit", "burn_in": 5, "reweight_every_hours": 1},
        }
    )
    due = now + lead
    client.launch(key, started_at=due - timedelta(hours=1))
    shown = {f"{key}-u{n}": client.assign(f"{key}-u{n}", [key])[key] for n in range(60)}
    assert set(shown.values()) == set(rates)  # 60 users in 4 equal shares: each has some (1 - 4 * 0.75^60)
    buyers = [
        distinct_id
        for variant, rate in rates.items()
        for distinct_id in [d for d, v in shown.items() if v == variant][
            : round(rate * list(shown.values()).count(variant))
        ]
    ]
    at = datetime.now(UTC).isoformat()
    events = [{"event": "purchase", "distinct_id": d, "uuid": f"{d}-purchase", "timestamp": at} for d in buyers]
    assert client.send_events(events)["accepted"] == len(events)
    assert datetime.now(UTC) < due, "the users came after the recompute was due: it would have counted none"
    deadline = time.monotonic() + (due - datetime.now(UTC)).total_seconds() + WAIT_S
    while len((experiment := client.call("GET", f"/experiments/{key}", admin=True))["bandit_phases"]) < 2:
        assert time.monotonic() < deadline, f"{key} was not reweighted: {experiment['bandit_phases']}"
        time.sleep(0.5)
    first, second = experiment["bandit_phases"]
    assert first["weights"] == dict.fromkeys(rates, 0.25)
    assert second["weights"]["c"] > 0.25 and all(second["weights"][v] < 0.25 for v in ("control", "b", "d"))
    assert "Thompson" in second["reason"]
