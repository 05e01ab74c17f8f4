"""An arm with fewer than two exposures has no variance to estimate: whatever the design, no
p-value, no interval and no verdict come from it (issue 13, item 8)."""

import json
from typing import Any

import pytest

from abacus.core.documents import Analysis, MetricKind
from abacus.stats.analysis import Settings, VariantData, analyse

DESIGNS: dict[str, dict[str, Any]] = {
    "fixed": {"sequential": False},
    "msprt": {"design": "msprt"},
    "spending": {"planned_exposures": 200},
}


def arm(key: str, n: int, mean: float, sd: float) -> VariantData:
    return VariantData(key, n, sum=mean * n, sum_squares=sd * sd * (n - 1) + mean * mean * n)


def analysed(kind: MetricKind, variants: list[VariantData], design: str) -> Analysis:
    """The analysis by `design`, the weights those of the split (no sample ratio mismatch)."""
    weights = {v.key: float(v.exposures) for v in variants}
    analysis = analyse(kind, variants, Settings(weights=weights, **DESIGNS[design]))
    json.dumps(analysis, allow_nan=False)
    return analysis


def assert_nothing_tested(analysis: Analysis) -> None:
    treatment = analysis["variants"][1]
    assert treatment["p_value"] is None and treatment["p_value_adjusted"] is None
    assert treatment["significant"] is False
    assert treatment["lift"]["relative_ci"] is None
    assert treatment.get("p_value_fixed") is None and treatment.get("relative_ci_fixed") is None
    assert treatment.get("information_fraction") is None and treatment.get("boundary") is None
    assert analysis["verdict"]["decision"] == "keep_running"
    assert any("fewer than 2" in sentence.lower() for sentence in analysis["explanation"])


@pytest.mark.parametrize("design", DESIGNS)
def test_a_control_of_one_user_gets_no_p_value_interval_or_verdict(design):
    """The issue's case: b's 99 users average 1.2 (sd 0.5), the one control user 1.0. It used to
    ship b (fixed p = 0.00013, always-valid 0.011)."""
    analysis = analysed("mean", [VariantData("control", 1, sum=1.0, sum_squares=1.0), arm("b", 99, 1.2, 0.5)], design)
    assert_nothing_tested(analysis)
    assert analysis["variants"][1]["lift"]["relative"] == pytest.approx(0.2)  # the estimate itself stands
    assert all(row["credible_interval"] is None for row in analysis["variants"])


@pytest.mark.parametrize("design", DESIGNS)
def test_a_treatment_of_one_user_gets_no_p_value_interval_or_verdict(design):
    analysis = analysed("mean", [arm("control", 99, 1.0, 0.5), VariantData("b", 1, sum=9.0, sum_squares=81.0)], design)
    assert_nothing_tested(analysis)


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("converted", [0, 1])
def test_a_conversion_arm_of_one_user_gets_no_p_value_interval_or_verdict(design, converted):
    """One user's rate is 0 or 1, and p (1 - p) / n says 0: a variance that is not one."""
    analysis = analysed("conversion", [VariantData("control", 1, converted), VariantData("b", 99, 50)], design)
    assert_nothing_tested(analysis)
    # The Beta posteriors stay proper (the uniform prior), so the Bayesian numbers are defined.
    assert all(row["probability_to_be_best"] is not None for row in analysis["variants"])


def test_an_earlier_look_with_a_control_of_one_user_cannot_reject():
    """The group-sequential test: a look where an arm had fewer than 2 users has no estimate and
    spends nothing (its alpha passes on), like a look without users; tonight shows no difference."""
    tonight = [arm("control", 150, 1.2, 0.5), arm("b", 250, 1.2, 0.5)]
    results = []
    for control in (VariantData("control", 1, sum=1.0, sum_squares=1.0), VariantData("control", 0)):
        earlier = [control, arm("b", 99, 1.2, 0.5)]
        settings = Settings(planned_exposures=1000, previous_looks=[earlier])
        results.append(analyse("mean", tonight, settings)["variants"][1])
    one_user, no_user = results
    p_value = one_user["p_value"]
    assert p_value is not None and p_value > 0.05 and one_user["significant"] is False
    assert one_user == no_user


def test_two_users_are_enough():
    analysis = analysed("mean", [arm("control", 2, 1.0, 0.5), arm("b", 99, 1.2, 0.5)], "fixed")
    assert analysis["variants"][1]["p_value"] is not None
    assert not any("fewer than 2" in sentence.lower() for sentence in analysis["explanation"])
