"""The automation's guards (abacus.experiments.automation.decide), without storage: each rule off
by default, the minimum runtime, a harmed guardrail and a broken split holding ship and no_effect
back, the SRM stop acting at once. The snapshots are built by the nightly job's own analysis
(abacus.nightly.snapshot) from users' sums, so the verdicts are the statistics' own."""

import copy
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from abacus.core.documents import SnapshotAnalysis
from abacus.experiments.automation import decide
from abacus.experiments.spec import AutomationSpec, ExperimentCreate
from abacus.nightly import snapshot
from abacus.nightly.sums import PageSums
from tests.unit.nightly.plain import Event, Timeline, computed

START = datetime(2026, 11, 1, tzinfo=UTC)
CUTOFF = START + timedelta(days=10)
ERRORS = {"event": "error", "kind": "conversion"}


def analysed(
    converted: dict[str, int],
    users: int = 400,
    errors: dict[str, int] | None = None,
    split: dict[str, int] | None = None,
    mde: float = 0.05,
) -> SnapshotAnalysis:
    """The nightly job's analysis of `users` per variant (or `split`'s counts) of whom `converted`
    purchased and `errors` had an error (an error-rate guardrail), exposed over ten days."""
    spec = ExperimentCreate.model_validate(
        {
            "key": "e",
            "name": "E",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
            "guardrail_metrics": [ERRORS],
            "cuped": False,
            "minimum_detectable_effect": mde,
        }
    )
    metrics = spec.all_metrics()
    total = PageSums(["control", "b"], metrics)
    for variant in ("control", "b"):
        for n in range((split or {}).get(variant, users)):
            exposed = START + timedelta(days=n % 10, hours=1)
            events = [Event("purchase", exposed + timedelta(minutes=5))] if n < converted[variant] else []
            events += [Event("error", exposed + timedelta(minutes=6))] if n < (errors or {}).get(variant, 0) else []
            total.add_user(variant, computed(metrics, exposed, events, CUTOFF)[0], False, exposed)
    return snapshot.analysis(spec, Timeline("running", START), CUTOFF, total, [])


@pytest.fixture(scope="module")
def ship() -> SnapshotAnalysis:
    """b converts 40%, control 10%: ship b."""
    found = analysed({"control": 40, "b": 160})
    assert found["verdict"]["decision"] == "ship" and found["verdict"]["variant"] == "b"
    return found


def test_every_rule_is_off_by_default(ship):
    decision = decide(AutomationSpec(), ship, days_run=30)
    assert decision.action is None and decision.rule is None and decision.reason == "automation is off"
    assert AutomationSpec().model_dump() == {"ship": False, "no_effect": False, "srm": False, "minimum_days": 7}


def test_ship_waits_for_the_minimum_runtime(ship):
    policy = AutomationSpec(ship=True)
    waiting = decide(policy, ship, days_run=3.4)
    assert (waiting.rule, waiting.action, waiting.blocked_by) == ("ship", None, "minimum_runtime")
    assert "waiting for minimum runtime (3 of 7 days)" in waiting.reason
    assert decide(policy, ship, days_run=6.99).action is None
    shipped = decide(policy, ship, days_run=7)
    assert (shipped.rule, shipped.action, shipped.variant, shipped.blocked_by) == ("ship", "ship", "b", None)
    assert decide(AutomationSpec(ship=True, minimum_days=2), ship, days_run=2).action == "ship"


def test_a_harmed_guardrail_holds_the_ship_back():
    """b wins on purchases and doubles the error rate (20% to 40%): no automatic ship, whatever
    the runtime; the stats' own verdict is held_back, and a ship verdict with a harmed guardrail
    (another treatment's, or as the snapshot says) is refused too."""
    harmed = analysed({"control": 40, "b": 160}, errors={"control": 80, "b": 160})
    assert harmed["guardrail_metrics"][0]["guardrail"]["status"] == {"b": "harmed"}
    policy = AutomationSpec(ship=True, no_effect=True)
    assert decide(policy, harmed, days_run=30).action is None
    as_ship = copy.deepcopy(harmed)
    as_ship["verdict"] = {"decision": "ship", "variant": "b", "reason": "wins"}
    refused = decide(policy, as_ship, days_run=30)
    assert (refused.action, refused.blocked_by) == (None, "guardrail")
    assert "'b' harms error (conversion)" in refused.reason


def test_no_effect_stops_once_the_runtime_is_reached():
    """Both convert 20% on 4,000 users each: every lift interval inside +/-50% (the mde), no_effect."""
    flat = analysed({"control": 800, "b": 800}, users=4000, mde=0.5)
    assert flat["verdict"]["decision"] == "no_effect"
    assert decide(AutomationSpec(ship=True), flat, days_run=30).action is None  # the no_effect rule is off
    policy = AutomationSpec(no_effect=True)
    assert decide(policy, flat, days_run=5).blocked_by == "minimum_runtime"
    stop = decide(policy, flat, days_run=7)
    assert (stop.rule, stop.action, stop.variant) == ("no_effect", "stop", None)


def test_a_broken_split_refuses_ship_and_stops_at_once_when_the_srm_rule_is_on(ship):
    """600 users in control and 400 in b on a 50/50 split: a sample ratio mismatch. With the srm
    rule off nothing happens; on, it stops on day one, a harmed guardrail notwithstanding. A
    mismatch on one day alone (exposures_by_day) holds a ship verdict back likewise."""
    broken = analysed({"control": 60, "b": 160}, split={"control": 600, "b": 400})
    assert broken["srm"]["mismatch"] and broken["verdict"]["decision"] == "invalid"
    off = decide(AutomationSpec(ship=True, no_effect=True), broken, days_run=30)
    assert off.action is None and "srm rule is off" in off.reason
    on = decide(AutomationSpec(srm=True), broken, days_run=0.5)
    assert (on.rule, on.action, on.variant) == ("srm", "stop", None)
    harmed = analysed({"control": 60, "b": 160}, split={"control": 600, "b": 400}, errors={"control": 60, "b": 300})
    assert harmed["guardrail_metrics"][0]["guardrail"]["status"] == {"b": "harmed"}
    assert decide(AutomationSpec(srm=True), harmed, days_run=0.5).action == "stop"

    assert "exposures_by_day" in ship and ship["exposures_by_day"]["first_mismatch"] is None
    one_day = copy.deepcopy(ship)
    one_day["exposures_by_day"]["first_mismatch"] = "2026-11-03"
    held = decide(AutomationSpec(ship=True), one_day, days_run=30)
    assert (held.rule, held.action, held.blocked_by) == ("ship", None, "srm")
    assert "2026-11-03" in held.reason
    assert decide(AutomationSpec(ship=True, srm=True), one_day, days_run=1).rule == "srm"


@pytest.mark.parametrize(
    "given", [{"minimum_days": 0}, {"minimum_days": 91}, {"ship": "yes"}, {"minimum_days": 2.5}, {"stop": True}]
)
def test_the_policy_refuses_what_it_cannot_mean(given):
    with pytest.raises(ValidationError):
        AutomationSpec.model_validate(given)
