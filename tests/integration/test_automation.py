"""Automatic actions (abacus.experiments.automation.act) on moto's tables: the snapshots are the
nightly job's own analysis (abacus.nightly.snapshot) of users' sums, stored as the job stores
them; the experiment is created and launched through the API."""

import json
from datetime import UTC, datetime, timedelta

from abacus.core.documents import SnapshotAnalysis
from abacus.experiments import automation, definitions
from abacus.nightly import cutoffs, snapshot
from abacus.nightly.sums import PageSums
from abacus.storage import results
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem
from tests.conftest import answer, function_of, invoke, sample_event
from tests.unit.nightly.plain import Event, computed

BASE = json.loads(sample_event("create_experiment")["body"])
ERRORS = {"event": "error", "kind": "conversion"}


def call(name: str, body: dict | None = None, path: str | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    return answer(invoke(function_of(event), event))


def launched(key: str, variants: list[str], days_ago: float, **fields) -> ExperimentItem:
    """A running experiment launched `days_ago` (a launch dated back), the automation's ship on."""
    weights = [100 // len(variants) + (n < 100 % len(variants)) for n in range(len(variants))]
    body = BASE | {
        "key": key,
        "variants": [{"key": v, "weight": w} for v, w in zip(variants, weights, strict=True)],
        "guardrail_metrics": [ERRORS],
        "cuped": False,
        "automation": {"ship": True},
    }
    assert call("create_experiment", body | fields)[0] == 201
    started_at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    status, body = call("launch_experiment", {"started_at": started_at}, path=f"/experiments/{key}/launch")
    assert status == 200, body
    return definitions.get("test", key)


def stored_snapshot(
    item: ExperimentItem, days: float, purchases: dict[str, int], errors: dict[str, int], users: int = 400
) -> SnapshotItem:
    """The nightly job's snapshot `days` after the launch: `users` per variant, of whom the first
    `purchases[v]` purchased and the first `errors[v]` had an error, exposed over those days."""
    assert item.started_at is not None
    cutoff = item.started_at + timedelta(days=days)
    spec = definitions.definition(item)
    metrics, keys = spec.all_metrics(), [v.key for v in spec.variants]
    sums = PageSums(keys, metrics)
    for variant in keys:
        for n in range(users):
            exposed = item.started_at + timedelta(hours=1 + (n % int(days * 24 - 2)))
            events = [Event("purchase", exposed + timedelta(minutes=5))] if n < purchases[variant] else []
            events += [Event("error", exposed + timedelta(minutes=6))] if n < errors.get(variant, 0) else []
            sums.add_user(variant, computed(metrics, exposed, events, cutoff)[0], False, exposed)
    analysis: SnapshotAnalysis = snapshot.analysis(spec, item, cutoff, sums, [])
    stored = SnapshotItem(
        item.experiment_id,
        cutoffs.snapshot_date(cutoff),
        cutoff=cutoff,
        computed_at=datetime.now(UTC),
        analysis=analysis,
    )
    results.put(stored)
    return stored


def history(key: str) -> list[dict]:
    return definitions.get("test", key).history


def test_ship_waits_for_the_minimum_runtime_then_ships_and_records_why(project):
    """b converts 40% against control's 10% from day 3 on: the day-3 snapshot says ship, and the
    automation waits (7 days by default); the day-8 one still says ship, and b is shipped, the
    history naming the automation, the rule, the snapshot and its decision."""
    item = launched("auto-ship", ["control", "b"], days_ago=9)
    day_3 = stored_snapshot(item, 3, {"control": 40, "b": 160}, {})
    assert day_3.analysis["verdict"]["decision"] == "ship"
    assert automation.act(item, day_3, datetime.now(UTC)) is None
    waiting = automation.decision_for(item, day_3)
    assert waiting.blocked_by == "minimum_runtime" and "(3 of 7 days)" in waiting.reason
    assert definitions.get("test", "auto-ship").status == "running"
    before = len(history("auto-ship"))

    day_8 = stored_snapshot(item, 8, {"control": 40, "b": 160}, {})
    assert automation.act(item, day_3, datetime.now(UTC)) is None  # a late day-3 message: day 8 decides
    done = automation.act(item, day_8, datetime.now(UTC))
    assert done == {"rule": "ship", "action": "ship", "variant": "b", "snapshot": day_8.date, "decision": "ship"}
    shipped = definitions.get("test", "auto-ship")
    assert shipped.status == "complete" and shipped.shipped_variant == "b"
    entries = history("auto-ship")
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry["action"], entry["by"]) == ("ship", "automation")
    assert entry["changes"] == {
        "from": "running",
        "to": "complete",
        "rule": "ship",
        "snapshot": day_8.date,
        "decision": "ship",
        "variant": "b",
    }
    # Idempotent: the same snapshot again (a redelivered message) does nothing more.
    assert automation.act(item, day_8, datetime.now(UTC)) is None
    assert len(history("auto-ship")) == before + 1
    # Undone as a person's ship is: another variant shipped by hand.
    status, body = call("ship_experiment", {"variant": "control"}, path="/experiments/auto-ship/ship")
    assert status == 200 and body["shipped_variant"] == "control"


def test_ship_is_refused_while_a_guardrail_is_harmed(project):
    """b wins the most and triples the error rate; c wins and harms nothing, so the verdict is to
    ship c. A guardrail is harmed all the same: the automation leaves it to a person."""
    item = launched("guarded", ["control", "b", "c"], days_ago=12)
    purchases = {"control": 40, "b": 200, "c": 160}
    errors = {"control": 40, "b": 120, "c": 40}
    day_10 = stored_snapshot(item, 10, purchases, errors)
    assert day_10.analysis["verdict"]["decision"] == "ship" and day_10.analysis["verdict"]["variant"] == "c"
    statuses = day_10.analysis["guardrail_metrics"][0]["guardrail"]["status"]
    assert statuses["b"] == "harmed" and statuses["c"] != "harmed"
    before = len(history("guarded"))
    assert automation.act(item, day_10, datetime.now(UTC)) is None
    refused = automation.decision_for(item, day_10)
    assert refused.blocked_by == "guardrail" and "'b' harms error (conversion)" in refused.reason
    assert definitions.get("test", "guarded").status == "running" and len(history("guarded")) == before


def test_a_policy_turned_off_meanwhile_is_not_acted_on(project):
    """act() decides on the experiment as stored, not on the copy it was given."""
    item = launched("turned-off", ["control", "b"], days_ago=9)
    day_8 = stored_snapshot(item, 8, {"control": 40, "b": 160}, {})
    status, _ = call("update_experiment", {"automation": {"ship": False}}, path="/experiments/turned-off")
    assert status == 200
    assert automation.act(item, day_8, datetime.now(UTC)) is None
    assert definitions.get("test", "turned-off").status == "running"


def test_the_srm_rule_stops_a_broken_split_at_once(project):
    """600 control users and 400 b users on 50/50, a day after the launch: stopped by the srm rule
    (on), before any minimum runtime."""
    item = launched("broken", ["control", "b"], days_ago=1.5, automation={"srm": True})
    cutoff_days = 1
    assert item.started_at is not None
    cutoff = item.started_at + timedelta(days=cutoff_days)
    spec = definitions.definition(item)
    metrics = spec.all_metrics()
    sums = PageSums(["control", "b"], metrics)
    for variant, users in (("control", 600), ("b", 400)):
        for n in range(users):
            exposed = item.started_at + timedelta(hours=1 + n % 20)
            sums.add_user(variant, computed(metrics, exposed, [], cutoff)[0], False, exposed)
    analysis = snapshot.analysis(spec, item, cutoff, sums, [])
    broken = SnapshotItem(
        item.experiment_id, cutoffs.snapshot_date(cutoff), cutoff=cutoff, computed_at=cutoff, analysis=analysis
    )
    results.put(broken)
    done = automation.act(item, broken, datetime.now(UTC))
    assert done is not None and (done["rule"], done["action"], done["decision"]) == ("srm", "stop", "invalid")
    stopped = definitions.get("test", "broken")
    assert stopped.status == "complete" and stopped.shipped_variant is None
    assert stopped.history[-1]["changes"]["rule"] == "srm" and stopped.history[-1]["by"] == "automation"
