"""The nightly job's counting in its corner cases (issue 13): failed runs, expired raw events,
experiments that stop. Each test reproduces a miscount found by review, on moto."""

from datetime import UTC, datetime, timedelta

import pytest

from abacus import experiments, keys, nightly
from abacus.schemas import ExperimentCreate
from abacus.storage import assignments, events
from abacus.storage import results as result_store
from abacus.storage.events import EventItem

START = datetime(2026, 11, 1, tzinfo=UTC)


def _experiment(key: str = "exp", window_days: int = 3, kind: str = "conversion") -> None:
    metric = {"event": "buy", "kind": kind, "window_days": window_days}
    if kind == "sum":
        metric["property"] = "amount"
    spec = ExperimentCreate.model_validate(
        {
            "key": key,
            "name": key,
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": metric,
        }
    )
    experiments.create("test", spec, START)
    experiments.apply("test", key, "launch", START)


def _event(user: str, uuid: str, at: datetime, received_at: datetime, amount: float = 30.0) -> None:
    item = EventItem(
        keys.user_id("test", user), uuid, event="buy", distinct_id=user, timestamp=at, received_at=received_at,
        properties={"amount": amount}, expires_at=0, **events.receipt_keys("test", received_at, uuid),
    )  # fmt: skip
    assert events.write_all([item]) == []


def _treatment(snapshot) -> dict:
    return next(row for row in snapshot.analysis["variants"] if row["key"] == "b")


def test_a_late_event_after_a_failed_first_run_is_counted(project, monkeypatch):
    # The first run stores the users' values, then fails before its snapshot is written. A purchase
    # stamped the day before arrives afterwards: the retry, and every later run, must count it.
    _experiment()
    exposed = START + timedelta(days=1, hours=9)
    assignments.assign(keys.experiment_id("test", "exp"), "late buyer", "b", exposed, expose=True)
    cutoff = START + timedelta(days=2)

    def fails(snapshot):
        raise RuntimeError("throttled")

    monkeypatch.setattr(result_store, "put", fails)
    with pytest.raises(RuntimeError):
        nightly.compute_snapshot(experiments.get("test", "exp"), cutoff, cutoff + timedelta(hours=3))
    monkeypatch.undo()
    stored = assignments.AssignmentItem.get(keys.experiment_id("test", "exp"), "late buyer")
    assert stored.metric_values == [0.0]  # the failed run's values were saved

    _event("late buyer", "p1", exposed + timedelta(hours=5), received_at=cutoff + timedelta(hours=3, minutes=30))
    retry = nightly.compute_snapshot(experiments.get("test", "exp"), cutoff, cutoff + timedelta(hours=4))
    assert _treatment(retry)["conversions"] == 1
    later = nightly.compute_snapshot(experiments.get("test", "exp"), cutoff + timedelta(days=1), cutoff + timedelta(days=1, hours=3))
    assert _treatment(later)["conversions"] == 1
