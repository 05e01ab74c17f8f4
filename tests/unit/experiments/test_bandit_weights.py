"""A bandit's shares over its phases (experiments/bandit_weights.py), its per-phase sums
(nightly/sums.py) and its verdict (nightly/bandit_analysis.py), without storage."""

from datetime import UTC, datetime, timedelta

import pytest

from abacus.experiments import bandit_weights
from abacus.experiments.spec import BanditAllocation, ExperimentFields
from abacus.nightly import bandit_analysis
from abacus.nightly.sums import PageSums
from abacus.nightly.values import UserValues
from abacus.storage.experiments import ExperimentItem

SPEC = ExperimentFields.model_validate(
    {
        "name": "arms",
        "variants": [{"key": "control", "weight": 34}, {"key": "b", "weight": 33}, {"key": "c", "weight": 33}],
        "primary_metric": {"event": "buy"},
        "allocation": {"kind": "bandit"},
    }
)
LAUNCH = datetime(2026, 12, 1, tzinfo=UTC)


def item(bandit: dict | None = None) -> ExperimentItem:
    return ExperimentItem("p", "arms", status="running", definition={}, started_at=LAUNCH, bandit=bandit)


@pytest.mark.parametrize("shares", [[1 / 3] * 3, [0.05, 0.05, 0.9], [0.123456, 0.654321, 0.222223], [0.5, 0.5]])
def test_shares_become_basis_points_summing_to_the_whole(shares):
    points = bandit_weights.to_points(shares)
    assert sum(points) == bandit_weights.WHOLE
    assert all(abs(p / bandit_weights.WHOLE - s / sum(shares)) < 1e-4 for p, s in zip(points, shares, strict=True))


def test_phase_zero_is_equal_then_the_latest_phase_applies_from_its_start_only():
    assert bandit_weights.points(item(), SPEC) == {"control": 3334, "b": 3333, "c": 3333}
    begins = LAUNCH + timedelta(hours=5)
    moved = bandit_weights.next_state(item(), SPEC, {"control": 2000, "b": 2000, "c": 6000}, begins, [])
    later = item(moved)
    assert bandit_weights.phase_number(later) == 1 and bandit_weights.phase_starts(later) == [begins]
    assert bandit_weights.points(later, SPEC, begins - timedelta(seconds=1))["c"] == 3333
    assert bandit_weights.points(later, SPEC, begins)["c"] == 6000
    assert bandit_weights.assignment_weights(later, SPEC, begins) == [("control", 20.0), ("b", 20.0), ("c", 60.0)]
    assert bandit_weights.phase_at([begins], begins - timedelta(microseconds=1)) == 0
    assert bandit_weights.phase_at([begins], begins) == 1
    assert bandit_weights.may_differ_locally(later, SPEC) and not bandit_weights.may_differ_locally(item(), SPEC)


def test_phase_cells_add_up_merge_and_survive_a_page_as_json():
    page = PageSums(["control", "b"], [SPEC.primary_metric])
    for n in range(10):
        page.add_user("b" if n % 2 else "control", UserValues([float(n % 3 == 0)], [0.0]), False, None, phase=n // 5)
    stored = PageSums.from_json(page.to_json())
    assert stored.phase_cells == page.phase_cells
    assert page.phase_cells["0"]["control"] == [3.0, 1.0, 1.0]  # users 0, 2, 4: user 0 bought
    total = PageSums(["control", "b"], [SPEC.primary_metric])
    total.merge(stored)
    total.merge(stored)
    assert total.phase_cells["1"]["b"] == [2 * c for c in page.phase_cells["1"]["b"]]


def test_the_verdict_waits_for_the_threshold_and_the_minimum_days():
    allocation = BanditAllocation(kind="bandit", decide_at=0.95, minimum_days=7)
    cells = {"0": {"control": [500, 50, 50], "b": [500, 150, 150]}}
    report = bandit_analysis.report(allocation, cells, ["control", "b"], {0: {"control": 5000, "b": 5000}})
    assert report["best"] == "b" and report["variants"][1]["probability_best"] > 0.999
    assert bandit_analysis.verdict(allocation, report, 6.9)["decision"] == "keep_running"
    assert bandit_analysis.verdict(allocation, report, 7.0) == {
        "decision": "ship",
        "variant": "b",
        "reason": "'b' is best with a 100.0% probability (at least 95%)",
    }
    close = {"0": {"control": [500, 50, 50], "b": [500, 55, 55]}}
    undecided = bandit_analysis.report(allocation, close, ["control", "b"], {0: {"control": 5000, "b": 5000}})
    assert bandit_analysis.verdict(allocation, undecided, 30)["decision"] == "keep_running"
    # Regret: b's users lost nothing, control's 500 lost b's 20 points each.
    assert report["regret"] == pytest.approx(500 * 0.2)
