"""Values far from 1 (issue 13, item 7): every statistic computed without overflow, never a NaN or
an Infinity in an analysis, and input that is not finite refused naming the field."""

import json
import math
from typing import Any, cast

import pytest

from abacus.core.documents import Analysis
from abacus.stats.analysis import Settings, VariantData, analyse
from tests.unit.stats.test_verdict_and_edges import finite_everywhere

DESIGNS: dict[str, dict[str, Any]] = {
    "fixed": {"sequential": False},
    "msprt": {"design": "msprt"},
    "spending": {"planned_exposures": 3_000_000},
}
# 2^495, about 1.6e149: a million users' sum squared overflows a double (2.6e310), their sum of
# squares does not (5e304). A power of two, so the scaled problem is the same one exactly.
SCALE = 2.0**495


def arm(key: str, n: int, mean: float, sd: float, scale: float = 1.0) -> VariantData:
    """n users with this mean and sd, and a covariate of mean 1 and sd 1 correlated 0.5 with them."""
    sum_squares = sd * sd * (n - 1) + mean * mean * n
    cross = 0.5 * sd * (n - 1) + mean * n
    squared = scale * scale
    return VariantData(
        key, n, 0, mean * n * scale, sum_squares * squared, n * scale, (2 * n - 1) * squared, cross * squared
    )


def analysed(variants: list[VariantData], **settings: Any) -> Analysis:
    analysis = analyse("mean", variants, Settings(**settings))
    assert finite_everywhere(analysis)
    json.dumps(analysis, allow_nan=False)
    return analysis


@pytest.mark.parametrize("design", DESIGNS)
def test_huge_values_are_analysed_as_their_scaled_down_copy(design):
    small = [arm("control", 1_000_000, 1.0, 1.0), arm("b", 1_000_000, 1.004, 1.0)]
    huge = [arm("control", 1_000_000, 1.0, 1.0, SCALE), arm("b", 1_000_000, 1.004, 1.0, SCALE)]
    expected, got = analysed(small, **DESIGNS[design]), analysed(huge, **DESIGNS[design])
    assert got["cuped"] is not None and expected["cuped"] is not None
    assert got["cuped"]["theta"] == pytest.approx(expected["cuped"]["theta"], rel=1e-9)
    for mine, theirs in zip(got["variants"], expected["variants"], strict=True):
        for field in ("mean", "standard_error", "adjusted_mean", "adjusted_standard_error", "expected_loss"):
            mine_value, their_value = cast(dict[str, float], mine)[field], cast(dict[str, float], theirs)[field]
            assert mine_value == pytest.approx(their_value * SCALE, rel=1e-9), field
        assert mine["credible_interval"] == pytest.approx([x * SCALE for x in theirs["credible_interval"] or []])
        assert mine["probability_to_be_best"] == pytest.approx(theirs["probability_to_be_best"], rel=1e-9)
    mine_b, theirs_b = got["variants"][1], expected["variants"][1]
    assert mine_b["p_value"] == pytest.approx(theirs_b["p_value"], rel=1e-9)
    assert mine_b["lift"]["absolute"] == pytest.approx(theirs_b["lift"]["absolute"] * SCALE, rel=1e-6)
    assert mine_b["lift"]["relative_ci"] == pytest.approx(theirs_b["lift"]["relative_ci"], rel=1e-9)
    assert got["verdict"] == expected["verdict"]


def test_tiny_values_are_analysed_as_their_scaled_up_copy():
    small = [arm("control", 1_000, 1.0, 1.0, 2.0**-500), arm("b", 1_000, 1.2, 1.0, 2.0**-500)]
    expected = analysed([arm("control", 1_000, 1.0, 1.0), arm("b", 1_000, 1.2, 1.0)])
    got = analysed(small)
    assert got["variants"][1]["p_value"] == pytest.approx(expected["variants"][1]["p_value"], rel=1e-9)
    assert got["variants"][1]["standard_error"] == pytest.approx(expected["variants"][1]["standard_error"] * 2.0**-500)
    # The Bayesian numbers too: no absolute floor of a posterior's width swamps values this small.
    for mine, theirs in zip(got["variants"], expected["variants"], strict=True):
        assert mine["probability_to_be_best"] == pytest.approx(theirs["probability_to_be_best"], rel=1e-9)


@pytest.mark.parametrize("design", DESIGNS)
def test_a_control_mean_too_near_zero_for_a_relative_lift_gives_nulls(design):
    """b's mean over the control's is beyond a double: no relative lift, interval or always-valid
    p-value (they are relative), and no Infinity anywhere."""
    control = VariantData("control", 100, sum=1e-320, sum_squares=99.0)
    analysis = analysed([control, arm("b", 100, 1.0, 1.0)], cuped=False, **DESIGNS[design])
    b = analysis["variants"][1]
    assert b["lift"]["relative"] is None and b["lift"]["relative_ci"] is None
    assert b.get("relative_ci_fixed") is None
    assert b["lift"]["absolute"] == pytest.approx(1.0)


@pytest.mark.parametrize("field", ["sum", "sum_squares", "pre_sum", "pre_sum_squares", "cross_sum"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_input_that_is_not_finite_is_refused_naming_the_field(field, value):
    treatment = arm("b", 10, 1.0, 1.0)
    broken = VariantData(**{**treatment.__dict__, field: value})
    with pytest.raises(ValueError, match=f"variants.b.{field}: not a finite number"):
        analyse("mean", [arm("control", 10, 1.0, 1.0), broken], Settings())


def test_an_earlier_look_that_is_not_finite_is_left_out():
    """Snapshots stored before the fix may hold Infinity: such a look is left out, as a night
    the job did not run, and the experiment is analysed."""
    tonight = [arm("control", 400, 1.0, 1.0), arm("b", 400, 1.3, 1.0)]
    good = [arm("control", 200, 1.0, 1.0), arm("b", 200, 1.3, 1.0)]
    broken = [VariantData("control", 100, sum=1e200, sum_squares=math.inf), arm("b", 100, 1.3, 1.0)]
    planned = {"planned_exposures": 1000}
    with_broken = analysed(tonight, previous_looks=[broken, good], **planned)
    without = analysed(tonight, previous_looks=[good], **planned)
    assert with_broken["variants"] == without["variants"]


def test_a_sum_whose_square_overflows_is_still_checked():
    """sum_squares >= sum^2 / exposures, checked without squaring the sum."""
    with pytest.raises(ValueError, match=r"variants\.b\.sum_squares: smaller"):
        analyse("mean", [arm("control", 10, 1.0, 1.0), VariantData("b", 10, sum=1e200, sum_squares=1e300)], Settings())


def test_whatever_comes_out_not_finite_is_null_and_said_so(monkeypatch):
    """The last guard: a statistic that is NaN or infinite however it got so is null in the
    analysis, which says why, so the JSON is always valid."""
    from abacus.stats import analysis, bayesian

    original = bayesian.best_and_loss

    def broken(posteriors):
        best, loss = original(posteriors)
        return best * math.nan, loss * math.inf

    monkeypatch.setattr(bayesian, "best_and_loss", broken)
    result = analyse("mean", [arm("control", 10, 1.0, 1.0), arm("b", 10, 1.1, 1.0)], Settings())
    json.dumps(result, allow_nan=False)
    assert [row["probability_to_be_best"] for row in result["variants"]] == [None, None]
    assert [row["expected_loss"] for row in result["variants"]] == [None, None]
    assert analysis.NOT_FINITE in result["explanation"]
