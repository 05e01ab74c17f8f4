"""The nightly job's counting in its corner cases (issue 13): failed runs, expired raw events,
experiments that stop. Each test reproduces a miscount found by review, on moto."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from abacus.core import keys
from abacus.experiments import definitions
from abacus.experiments.spec import ExperimentCreate
from abacus.storage import assignments, events, receipt_layouts, results
from abacus.storage.events import EventItem
from abacus_local import nightly_inline
from tests.conftest import assignment_partition, stored_assignment

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
    definitions.create("test", spec, START)
    definitions.apply("test", key, "launch", START)


def _event(user: str, uuid: str, at: datetime, received_at: datetime, amount: float = 30.0) -> None:
    item = EventItem(
        keys.user_id("test", user), uuid, event="buy", distinct_id=user, timestamp=at, received_at=received_at,
        properties={"amount": amount}, expires_at=0, **events.receipt_keys("test", received_at, user, uuid),
    )  # fmt: skip
    assert events.write_all([item]) == []


def _expose(distinct_id: str, variant: str, at: datetime) -> None:
    assignments.assign(assignment_partition("exp", distinct_id), distinct_id, variant, at, expose=True)


def _latest(experiment_id: str) -> Any:
    snapshot = results.latest(experiment_id)
    assert snapshot is not None
    return snapshot


def _row(analysis) -> dict:
    return next(row for row in analysis["variants"] if row["key"] == "b")


def _treatment(snapshot) -> dict:
    return _row(snapshot.analysis)


def test_a_late_event_after_a_failed_first_run_is_counted(project, monkeypatch):
    # The first run stores the users' values, then fails before its snapshot is written. A purchase
    # stamped the day before arrives afterwards: the retry, and every later run, must count it.
    _experiment()
    exposed = START + timedelta(days=1, hours=9)
    _expose("late buyer", "b", exposed)
    cutoff = START + timedelta(days=2)

    def fails(snapshot):
        raise RuntimeError("throttled")

    monkeypatch.setattr(results, "put_unless_newer", fails)
    with pytest.raises(RuntimeError):
        nightly_inline.compute_snapshot(definitions.get("test", "exp"), cutoff, cutoff + timedelta(hours=3))
    monkeypatch.undo()
    stored = stored_assignment("exp", "late buyer")
    assert stored.metric_values == [0.0]  # the failed run's values were saved

    _event("late buyer", "p1", exposed + timedelta(hours=5), received_at=cutoff + timedelta(hours=3, minutes=30))
    retry = nightly_inline.compute_snapshot(definitions.get("test", "exp"), cutoff, cutoff + timedelta(hours=4))
    assert _treatment(retry)["conversions"] == 1
    later = nightly_inline.compute_snapshot(
        definitions.get("test", "exp"), cutoff + timedelta(days=1), cutoff + timedelta(days=1, hours=3)
    )
    assert _treatment(later)["conversions"] == 1


def _expire(before: datetime) -> None:
    """What DynamoDB's TTL does: deletes the events stamped before `before`."""
    for item in list(EventItem.scan()):
        if item.timestamp < before:
            item.delete()


def _kept_days(monkeypatch, days: int) -> None:
    import dataclasses

    from abacus.core import retention
    from abacus.core.settings import settings

    shorter = dataclasses.replace(settings, event_retention_days=days)
    monkeypatch.setattr(retention, "settings", shorter)
    monkeypatch.setattr(definitions, "settings", shorter)


@pytest.mark.parametrize("kind", ["conversion", "sum"])
def test_expired_raw_events_do_not_erase_counted_values(project, monkeypatch, kind):
    # A 30-day window with events kept 46 days (the least it needs): a user buys on day 2 and again
    # on day 100, long after the window closed and the first purchase's raw event expired. The
    # counted purchase stays counted; a rerun for a day inside the window says it cannot be done.
    _kept_days(monkeypatch, 46)
    _experiment(window_days=30, kind=kind)
    exposed = START + timedelta(days=1)
    _expose("buyer", "b", exposed)
    _event("buyer", "first", START + timedelta(days=2), received_at=START + timedelta(days=2))

    def night(day: int):
        cutoff = START + timedelta(days=day)
        return _treatment(
            nightly_inline.compute_snapshot(definitions.get("test", "exp"), cutoff, cutoff + timedelta(hours=3))
        )

    expected = {"conversion": ("conversions", 1), "sum": ("sum", 30.0)}[kind]
    for day in (3, 20, 40, 47, 60):
        assert night(day)[expected[0]] == expected[1], day
    _expire(START + timedelta(days=100) - timedelta(days=46))
    _event("buyer", "again", START + timedelta(days=100), received_at=START + timedelta(days=100))
    assert night(101)[expected[0]] == expected[1]
    from abacus.core.errors import Conflict
    from abacus.results import snapshots

    later = START + timedelta(days=101, hours=5)
    # Inside the window, after the purchase: the stored values still answer for it, rightly.
    assert (
        _row(snapshots.recompute("test", "exp", later, as_of="2026-11-20", send=nightly_inline.work_here))[expected[0]]
        == expected[1]
    )
    # Before the purchase: only the expired raw events could say.
    with pytest.raises(Conflict, match="have expired") as refused:
        snapshots.recompute("test", "exp", later, as_of="2026-11-02", send=nightly_inline.work_here)
    assert "read the snapshot stored for that day: GET /experiments/exp/results?date=2026-11-02" in str(refused.value)


def test_an_experiment_whose_windows_outlast_the_events_is_refused(project, monkeypatch):
    from abacus.core.errors import Invalid

    _kept_days(monkeypatch, 46)
    with pytest.raises(Invalid, match=r"primary_metric\.window_days: at most 30 days"):
        _experiment("long", window_days=31)
    spec = ExperimentCreate.model_validate(
        {"key": "pre", "name": "pre", "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
         "primary_metric": {"event": "buy"}, "pre_exposure_days": 31},
    )  # fmt: skip
    with pytest.raises(Invalid, match="pre_exposure_days"):
        definitions.create("test", spec, START)


def test_a_stopped_experiment_gets_its_final_results(project):
    # Traffic between the last nightly cut-off and the stop, and conversions completing inside
    # their windows after it, reach the snapshots; once no event can change a window, the last
    # snapshot is marked final and the nightly job leaves the experiment alone.
    from abacus.storage import experiments

    _experiment(window_days=3)
    experiment_id = keys.experiment_id("test", "exp")
    _expose("early", "b", START + timedelta(hours=5))
    night = START + timedelta(days=1, hours=3)
    assert nightly_inline.run_all(night, night, on_failure=lambda e, err: pytest.fail(str(err)))["analysed"] == 1
    late_exposure = START + timedelta(days=1, hours=10)  # after the last cut-off, before the stop
    _expose("late", "b", late_exposure)
    definitions.apply("test", "exp", "stop", START + timedelta(days=1, hours=12))
    _event("late", "buy-after-stop", late_exposure + timedelta(days=2), received_at=late_exposure + timedelta(days=2))

    def night_of(day: int) -> Any:
        scheduled = START + timedelta(days=day, hours=3)
        return nightly_inline.run_all(scheduled, scheduled, on_failure=lambda e, err: pytest.fail(str(err)))

    assert night_of(2) == {"date": "2026-11-02", "analysed": 1, "failed": 0}
    snapshot = _latest(experiment_id)
    assert _treatment(snapshot)["exposures"] == 2 and _treatment(snapshot)["conversions"] == 0
    assert not snapshot.final
    assert night_of(4)["analysed"] == 1
    assert _treatment(_latest(experiment_id))["conversions"] == 1  # after the stop
    # The last window ends on day 4 at 12:00; a late event could arrive until 14 days after.
    assert night_of(18)["analysed"] == 1 and not _latest(experiment_id).final
    assert night_of(19)["analysed"] == 1
    final = _latest(experiment_id)
    assert final.final and _treatment(final)["conversions"] == 1 and _treatment(final)["exposures"] == 2
    stopped: Any = experiments.get("test", "exp")
    assert stopped.results_final
    assert night_of(20) == {"date": "2026-11-20", "analysed": 0, "failed": 0}
    from abacus.results import snapshots

    served: Any = snapshots.snapshot("test", "exp")
    assert served["final"] is True


def test_users_made_overrides_and_exposures_stored_before_launch_are_not_counted(project):
    # Exposures the ingestion now refuses may be stored already (before the rule, or before the
    # user became a QA override): the nightly job does not count them either.
    from abacus.experiments.spec import ExperimentPatch

    _experiment()
    _expose("customer", "b", START + timedelta(hours=5))
    _expose("tester", "b", START + timedelta(hours=6))
    _expose("before launch", "b", START - timedelta(days=3))
    definitions.update("test", "exp", ExperimentPatch.model_validate({"overrides": {"tester": "b"}}), START)
    cutoff = START + timedelta(days=1)
    snapshot = nightly_inline.compute_snapshot(definitions.get("test", "exp"), cutoff, cutoff + timedelta(hours=3))
    assert _treatment(snapshot)["exposures"] == 1


@pytest.mark.parametrize(
    ("before", "after", "assignment_shards"),
    [(32, 64, 64), (8, 32, 16), (64, 32, 16)],
    ids=["raised from 32 to 64, 64 assignment shards", "raised from 8 to 32", "lowered from 64 to 32"],
)
def test_changing_the_receipt_shards_between_two_nights_loses_no_buyer(
    project, monkeypatch, before, after, assignment_shards
):
    """A first night finds no purchase (every user's stored value is 0). Then users buy, received
    under `before` receipt shards, the count changes to `after` (a stack update), more users buy,
    and the second night runs under `after`: it must read every user who bought since the first
    (else their stored 0 is reused), as a recount of the purchases says. Read in today's layout
    alone, the users whose purchases sit under keys of the old count were lost: after a raise from
    32 to 64, shards 32-63's users (stored under h % 32); after a lowering, the dropped shards'."""
    from dataclasses import replace

    from abacus.core.settings import settings

    monkeypatch.setattr(definitions, "settings", replace(settings, assignment_shards=assignment_shards))
    monkeypatch.setattr(receipt_layouts, "_recorded", set())  # this environment wrote nothing yet
    _experiment()
    assert definitions.get("test", "exp").shards == assignment_shards
    users = {f"u{n}": "control" if n % 2 else "b" for n in range(160)}
    for user, variant in users.items():
        _expose(user, variant, START + timedelta(hours=1))
    night_one, night_two = START + timedelta(days=1), START + timedelta(days=2)
    monkeypatch.setattr(events, "settings", replace(settings, receipt_shards=before))
    first = nightly_inline.compute_snapshot(definitions.get("test", "exp"), night_one, night_one + timedelta(hours=3))
    assert [row["conversions"] for row in first.analysis["variants"]] == [0, 0]

    buyers: list[str] = []
    for count, hour, every in ((before, 5, 0), (after, 8, 1)):
        monkeypatch.setattr(events, "settings", replace(settings, receipt_shards=count))
        at = night_one + timedelta(hours=hour)
        for n, user in enumerate(users):
            if n % 3 == every:
                _event(user, f"buy-{user}", at, at)
                buyers.append(user)
    second = nightly_inline.compute_snapshot(definitions.get("test", "exp"), night_two, night_two + timedelta(hours=3))
    recount = {variant: sum(users[user] == variant for user in buyers) for variant in ("control", "b")}
    assert {row["key"]: row["conversions"] for row in second.analysis["variants"]} == recount
    assert receipt_layouts.counts("test", night_one.date()) == {before, after}
