"""The nightly job on stored data: snapshots dated by their cut-off, reruns, failures, stored values
reused or written, the group-sequential looks. Its statistics against a brute-force recount of
the raw events: tests/unit/nightly/test_recount.py (and test_counting_property.py, end to end)."""

import json
import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from abacus.core import keys
from abacus.core.errors import Conflict
from abacus.experiments import definitions
from abacus.experiments.spec import ExperimentCreate
from abacus.nightly import page, runs
from abacus.storage import assignments, events, results
from abacus.storage.events import EventItem
from abacus_local import nightly_inline
from tests.conftest import assignment_partition, invoke, sample_event, sample_path


def test_snapshot_is_dated_by_the_data_cutoff_and_reruns_converge(project):
    from abacus.storage.results import SnapshotItem

    invoke("ResultsFunction", sample_event("create_experiment"))
    definitions.apply("test", "new-checkout", "launch", datetime(2026, 11, 19, tzinfo=UTC))  # before the night
    scheduled = json.loads(sample_path("nightly").read_text())
    first = invoke("ResultsFunction", scheduled)
    # One run planned, a unit per shard of the experiment's users, worked through the queue.
    assert first == {"date": "2026-11-24", "planned": 1, "units": 16, "failed": 0}
    computed = SnapshotItem.get("test#new-checkout", "2026-11-24")
    invoke("ResultsFunction", scheduled)
    snapshots = list(SnapshotItem.query("test#new-checkout"))
    assert [s.date for s in snapshots] == ["2026-11-24"]
    assert snapshots[0].analysis == computed.analysis and snapshots[0].computed_at > computed.computed_at


def _two_experiments_of_four_users() -> None:
    for key in ("first", "second"):
        body = json.loads(sample_event("create_experiment")["body"]) | {"key": key}
        invoke("ResultsFunction", sample_event("create_experiment", body=body))
        definitions.apply("test", key, "launch", datetime(2026, 11, 19, tzinfo=UTC))  # before the exposures
        for n in range(4):
            partition = assignment_partition(key, f"u{n}")
            assignments.assign(partition, f"u{n}", "control", datetime(2026, 11, 20, tzinfo=UTC), expose=True)


def test_an_experiment_that_fails_to_plan_does_not_stop_the_others(project, monkeypatch):
    from abacus.storage.results import SnapshotItem

    _two_experiments_of_four_users()
    scheduled = json.loads(sample_path("nightly").read_text())
    original = runs.plan

    def dies_on_second(experiment, cutoff, now):
        if experiment.key == "second":
            raise RuntimeError("DynamoDB went away")
        return original(experiment, cutoff, now)

    monkeypatch.setattr(runs, "plan", dies_on_second)
    # The first is planned, then the invocation fails, so that Lambda retries it.
    with pytest.raises(runs.NightNotPlanned, match="1 experiments not planned"):
        invoke("ResultsFunction", scheduled, request_id="nightly-1")
    first = SnapshotItem.get("test#first", "2026-11-24").analysis
    with pytest.raises(SnapshotItem.DoesNotExist):
        SnapshotItem.get("test#second", "2026-11-24")
    monkeypatch.setattr(runs, "plan", original)
    # Lambda's retry (the same request id) plans the second alone: the first's units all went out.
    retried = invoke("ResultsFunction", scheduled, request_id="nightly-1")
    assert retried == {"date": "2026-11-24", "planned": 2, "units": 16, "failed": 0}
    assert SnapshotItem.get("test#first", "2026-11-24").analysis == first  # the same numbers again
    assert SnapshotItem.get("test#second", "2026-11-24").analysis["variants"][0]["exposures"] == 4
    # The night run again by hand (a new invocation) plans both anew.
    assert invoke("ResultsFunction", scheduled) == {"date": "2026-11-24", "planned": 2, "units": 32, "failed": 0}


def test_units_that_keep_failing_wait_in_the_dead_letter_queue_and_a_redrive_finishes_the_run(project, monkeypatch):
    """A unit whose every attempt fails is received maxReceiveCount (5) times, then SQS moves it to
    the dead-letter queue; the other experiment's run is not held up. Redriven once the cause is
    gone (what `aws sqs start-message-move-task` does), the run finishes with the right counts."""
    import boto3

    from abacus.storage.results import SnapshotItem
    from abacus_local.queues import redrive

    _two_experiments_of_four_users()
    scheduled = json.loads(sample_path("nightly").read_text())
    original = page.users_sums
    attempts = []

    def dies_on_second(experiment, *args, **kwargs):
        if experiment.key == "second":
            attempts.append(experiment.key)
            raise RuntimeError("DynamoDB went away")
        return original(experiment, *args, **kwargs)

    monkeypatch.setattr(page, "users_sums", dies_on_second)
    assert invoke("ResultsFunction", scheduled) == {"date": "2026-11-24", "planned": 2, "units": 32, "failed": 0}
    assert SnapshotItem.get("test#first", "2026-11-24").analysis["variants"][0]["exposures"] == 4
    with pytest.raises(SnapshotItem.DoesNotExist):
        SnapshotItem.get("test#second", "2026-11-24")
    sqs = boto3.client("sqs", region_name="us-east-1")
    dead = sqs.get_queue_url(QueueName="NightlyWorkDeadLetters")["QueueUrl"]
    waiting = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(waiting["Attributes"]["ApproximateNumberOfMessages"]) == 16  # each of second's shards
    assert len(attempts) == 16 * 5

    monkeypatch.setattr(page, "users_sums", original)
    assert redrive(sqs, dead, sqs.get_queue_url(QueueName="NightlyWorkQueue")["QueueUrl"]) == 16
    invoke("ResultsFunction", {"project": "test", "experiment": "first"})  # the queue is worked meanwhile
    assert SnapshotItem.get("test#second", "2026-11-24").analysis["variants"][0]["exposures"] == 4


def test_one_experiment_recomputed_for_a_past_day(project):
    invoke("ResultsFunction", sample_event("create_experiment"))
    definitions.apply("test", "new-checkout", "launch", datetime(2026, 11, 19, tzinfo=UTC))  # before the exposure
    partition = assignment_partition("new-checkout", "u")
    assignments.assign(partition, "u", "control", datetime(2026, 11, 20, 12, tzinfo=UTC), expose=True)
    answer_ = invoke("ResultsFunction", {"project": "test", "experiment": "new-checkout", "as_of": "2026-11-20"})
    assert answer_["date"] == "2026-11-20" and answer_["variants"][0]["exposures"] == 1
    answer_ = invoke("ResultsFunction", {"project": "test", "experiment": "new-checkout", "as_of": "2026-11-19"})
    assert answer_["variants"][0]["exposures"] == 0  # exposed after that day's cut-off


@pytest.mark.parametrize(
    ("launched", "analysed"),
    [
        (datetime(2026, 11, 25, 10, tzinfo=UTC), 0),  # after the cut-off
        (datetime(2026, 11, 25, tzinfo=UTC), 0),  # at it: no exposure can come before it
        (datetime(2026, 11, 24, 23, 59, tzinfo=UTC), 1),
    ],
)
def test_a_night_before_the_launch_gets_no_snapshot(project, launched, analysed):
    """The sample nightly event (03:00 on 2026-11-25: data up to midnight) finds nothing to count
    for an experiment launched at or after that midnight, and stores no snapshot of 0 exposures."""
    invoke("ResultsFunction", sample_event("create_experiment"))
    definitions.apply("test", "new-checkout", "launch", launched)
    scheduled = json.loads(sample_path("nightly").read_text())
    assert invoke("ResultsFunction", scheduled)["planned"] == analysed
    assert (results.latest("test#new-checkout") is not None) == bool(analysed)
    # The night after covers the launch.
    assert invoke("ResultsFunction", scheduled | {"time": "2026-11-26T03:00:00Z"})["planned"] == 1
    latest = results.latest("test#new-checkout")
    assert latest is not None and latest.date == "2026-11-25"


def test_no_recompute_for_a_day_before_the_launch(project):
    invoke("ResultsFunction", sample_event("create_experiment"))
    definitions.apply("test", "new-checkout", "launch", datetime(2026, 11, 20, 12, tzinfo=UTC))
    with pytest.raises(Conflict) as refused:
        invoke("ResultsFunction", {"project": "test", "experiment": "new-checkout", "as_of": "2026-11-19"})
    assert refused.value.field == "as_of" and "launched on 2026-11-20" in refused.value.message
    assert results.latest("test#new-checkout") is None
    answer_ = invoke("ResultsFunction", {"project": "test", "experiment": "new-checkout", "as_of": "2026-11-20"})
    assert answer_["date"] == "2026-11-20"


def test_results_command_prints_the_report_as_text(project, capsys):
    from abacus.__main__ import main

    invoke("ResultsFunction", sample_event("create_experiment"))
    definitions.apply("test", "new-checkout", "launch", datetime(2026, 11, 19, tzinfo=UTC))  # before the night
    assert main(["results", "new-checkout", "--project", "test"]) == 0
    assert "no results yet" in capsys.readouterr().out
    assignments.assign(
        assignment_partition("new-checkout", "u"), "u", "one-page", datetime(2026, 11, 20, 12, tzinfo=UTC), expose=True
    )
    invoke("ResultsFunction", json.loads(sample_path("nightly").read_text()))
    assert main(["results", "new-checkout", "--project", "test"]) == 0
    printed = capsys.readouterr().out
    assert "one-page" in printed and "Sample ratio check" in printed and "2026-11-24" in printed
    # The test that ran, in a sentence: without exposures in the control there is no plan yet,
    # so the always-valid test ran.
    assert "An always-valid test: the results may be read every day" in printed
    assert main(["results", "missing", "--project", "test"]) == 2


def test_the_terminal_and_the_report_show_the_secondary_metrics(project, capsys):
    from abacus.__main__ import main

    body = json.loads(sample_event("create_experiment")["body"])
    body["secondary_metrics"] = [{"event": "view", "kind": "count"}, {"event": "buy", "kind": "sum", "property": "x"}]
    invoke("ResultsFunction", sample_event("create_experiment", body=body))
    definitions.apply("test", "new-checkout", "launch", datetime(2026, 11, 19, tzinfo=UTC))
    for n, variant in enumerate(["control", "one-page"] * 3):
        user = f"u{n}"
        assignments.assign(
            assignment_partition("new-checkout", user),
            user,
            variant,
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            expose=True,
        )
    invoke("ResultsFunction", json.loads(sample_path("nightly").read_text()))
    assert main(["results", "new-checkout", "--project", "test"]) == 0
    printed = capsys.readouterr().out.splitlines()
    report_page = invoke("ResultsFunction", sample_event("get_report"))["body"]
    for heading in ("Secondary metric: view (count)", "Secondary metric: buy (sum)"):
        start = printed.index(heading)
        assert [line.split()[:2] for line in printed[start + 2 : start + 4]] == [["control", "3"], ["one-page", "3"]]
        assert f"<h3>{heading}</h3>" in report_page


def test_values_recomputed_unchanged_are_not_written_again_and_stay_right(project, monkeypatch):
    """A buyer buying again changes no conversion: recomputed, the stored values are kept as they
    are (no write), and the nights after still count them; a count metric's value changes and is
    written."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for key, kind in (("converts", "conversion"), ("counts", "count")):
        spec = ExperimentCreate.model_validate(
            {
                "key": key,
                "name": key,
                "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
                "primary_metric": {"event": "buy", "kind": kind, "window_days": 30},
            }
        )
        definitions.create("test", spec, start)
        definitions.apply("test", key, "launch", start)
        assignments.assign(assignment_partition(key, "buyer"), "buyer", "b", start, expose=True)
    saved: list[str] = []
    original_save = assignments.save_values

    def counting_save(user, *args):
        saved.append(user.experiment_id.split("#")[1])
        original_save(user, *args)

    monkeypatch.setattr(assignments, "save_values", counting_save)

    def buy(uuid: str, day: int) -> None:
        at = start + timedelta(days=day, hours=12)
        item = EventItem(
            keys.user_id("test", "buyer"), uuid, event="buy", distinct_id="buyer", timestamp=at, received_at=at,
            expires_at=0, **events.receipt_keys("test", at, "buyer", uuid),
        )  # fmt: skip
        assert events.write_all([item]) == []

    def night(day: int) -> dict[str, float]:
        """The treatment's total per experiment after the night that follows `day`."""
        cutoff = start + timedelta(days=day + 1)
        totals = {}
        for key in ("converts", "counts"):
            snapshot = nightly_inline.compute_snapshot(
                definitions.get("test", key), cutoff, cutoff + timedelta(hours=3)
            )
            row = snapshot.analysis["variants"][1]
            totals[key] = row["conversions"] if "conversions" in row else row["sum"]
        return totals

    buy("first", 1)
    assert night(1) == {"converts": 1, "counts": 1.0} and saved == ["converts", "counts"]
    buy("second", 2)  # the buyer is active in the next run: recomputed in both
    assert night(2) == {"converts": 1, "counts": 2.0} and saved == ["converts", "counts", "counts"]
    assert night(3) == {"converts": 1, "counts": 2.0} and len(saved) == 3  # nothing new: reused
    assert night(10) == {"converts": 1, "counts": 2.0} and len(saved) == 3


def test_a_user_converted_in_every_metric_is_not_read_again(project, monkeypatch):
    """More events cannot undo a conversion: a converted user who keeps sending the metric's event
    is counted from the stored values, without reading their events again; a night for an earlier
    day (before the purchase) still reads them."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    spec = ExperimentCreate.model_validate(
        {
            "key": "converted",
            "name": "Converted",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "visit", "window_days": 30},
        }
    )
    definitions.create("test", spec, start)
    definitions.apply("test", "converted", "launch", start)
    assignments.assign(assignment_partition("converted", "fan"), "fan", "b", start, expose=True)
    reads: list[str] = []
    original_read = events.user_events

    def counting_read(user_id, *args):
        reads.append(user_id)
        return original_read(user_id, *args)

    monkeypatch.setattr(page, "user_events", counting_read)

    def visit(day: int) -> None:
        at = start + timedelta(days=day, hours=12)
        uuid = f"visit-{day}"
        item = EventItem(
            keys.user_id("test", "fan"), uuid, event="visit", distinct_id="fan", timestamp=at, received_at=at,
            expires_at=0, **events.receipt_keys("test", at, "fan", uuid),
        )  # fmt: skip
        assert events.write_all([item]) == []

    def conversions(day: int) -> int:
        cutoff = start + timedelta(days=day + 1)
        snapshot = nightly_inline.compute_snapshot(
            definitions.get("test", "converted"), cutoff, cutoff + timedelta(hours=3)
        )
        return int(snapshot.analysis["variants"][1]["conversions"])

    visit(1)
    assert conversions(1) == 1 and len(reads) == 1
    for day in range(2, 6):
        visit(day)  # active every night
        assert conversions(day) == 1
    assert len(reads) == 1
    assert conversions(0) == 0 and len(reads) == 2  # before the first visit: read, and not converted


def _nightly_week(cuped: bool, baseline: float | None = None) -> list[dict]:
    """An experiment run for six nights: 60 users a day (exposed that day), each with a purchase
    before their exposure at random and after it more often if they did, B converting more."""
    primary = {"event": "buy", "window_days": 7} | ({"baseline": baseline} if baseline else {})
    spec = ExperimentCreate.model_validate(
        {
            "key": "week",
            "name": "Week",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": primary,
            "cuped": cuped,
        }
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    definitions.create("test", spec, start)
    definitions.apply("test", "week", "launch", start)
    rng = random.Random(3)
    stored = []
    snapshots = []
    for day in range(6):
        for n in range(60):
            distinct_id, variant = f"d{day}-u{n}", ["control", "b"][n % 2]
            exposed = start + timedelta(days=day, hours=rng.uniform(0, 23))
            assignments.assign(assignment_partition("week", distinct_id), distinct_id, variant, exposed, expose=True)
            before = rng.random() < 0.3
            times = [exposed - timedelta(days=rng.uniform(1, 10))] if before else []
            if rng.random() < (0.6 if before else 0.15) + (0.15 if variant == "b" else 0):
                times.append(exposed + timedelta(minutes=30))
            for index, at in enumerate(times):
                uuid = f"{distinct_id}-{index}"
                stored.append(
                    EventItem(
                        keys.user_id("test", distinct_id),
                        uuid,
                        event="buy",
                        distinct_id=distinct_id,
                        timestamp=at,
                        received_at=exposed,
                        expires_at=0,
                        **events.receipt_keys("test", exposed, distinct_id, uuid),
                    )
                )
        assert events.write_all(stored) == []
        stored = []
        cutoff = start + timedelta(days=day + 1)
        snapshot = nightly_inline.compute_snapshot(definitions.get("test", "week"), cutoff, cutoff + timedelta(hours=3))
        snapshots.append(snapshot.analysis)
    return snapshots


def test_the_nightly_looks_are_one_group_sequential_test(project):
    looks = _nightly_week(cuped=True)
    assert {look["design"] for look in looks} == {"spending"}
    # Without a planning baseline, the plan is made at the first look and kept.
    assert len({look["planned_exposures"] for look in looks}) == 1 and looks[0]["planned_exposures"] > 0
    rows = [look["variants"][1] for look in looks]
    fractions = [row["information_fraction"] for row in rows]
    boundaries = [row["boundary"] for row in rows]
    # Each night adds information; so early in the plan every look's bar is far above 1.96.
    assert fractions == sorted(fractions) and len(set(fractions)) == len(fractions)
    assert all(3 < boundary < 6 for boundary in boundaries), boundaries
    # Buying before the exposure predicts buying after it: the adjustment narrows the variance.
    assert all(look["cuped"] is not None for look in looks) and looks[-1]["cuped"]["variance_reduction"] > 0.05
    # The last look again, outside the nightly job: the command line given the stored looks.
    problem = {
        "metric": {"kind": "conversion"},
        "planned_exposures": looks[-1]["planned_exposures"],
        "previous_looks": [[_problem_variant(row) for row in look["variants"]] for look in looks[:-1]],
        "variants": [_problem_variant(row) for row in looks[-1]["variants"]],
    }
    answer_ = subprocess.run(
        [sys.executable, "-m", "abacus.stats"], input=json.dumps(problem), capture_output=True, text=True, check=True
    )
    again = json.loads(answer_.stdout)["variants"][1]
    assert again["p_value"] == pytest.approx(rows[-1]["p_value"], rel=1e-9)
    assert again["lift"]["relative_ci"] == pytest.approx(rows[-1]["lift"]["relative_ci"], rel=1e-9)
    assert again["boundary"] == pytest.approx(rows[-1]["boundary"], rel=1e-9)


def _problem_variant(row: dict) -> dict:
    fields = ("key", "exposures", "conversions", "pre_sum", "pre_sum_squares", "cross_sum")
    return {name: row[name] for name in fields if name in row}


def test_cuped_off_and_a_planning_baseline(project):
    looks = _nightly_week(cuped=False, baseline=0.2)
    from abacus.core import planning

    expected = math.ceil(planning.exposures_for_conversion(0.2, 0.05) * planning.SPENDING_INFLATION)
    assert {look["planned_exposures"] for look in looks} == {expected}
    assert all(look["cuped"] is None and "pre_sum" not in look["variants"][0] for look in looks)
