"""The group-sequential design inside analyse(): its looks, its end, its answers."""

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from scipy.stats import norm
from statsmodels.stats import proportion

from abacus.stats import spending
from abacus.stats.analysis import Settings, VariantData, analyse

PLANNED = 20_000


def treatment_row(analysis: Any) -> Any:
    """The treatment's row, its optional numbers taken as present (the test asserts them)."""
    return analysis["variants"][1]


def look(n: int, control: int, treatment: int) -> list[VariantData]:
    return [VariantData("control", n, control), VariantData("test", n, treatment)]


def test_the_boundary_is_the_spending_functions_at_the_looks_taken():
    # Nights at 1,000, 3,000 (a missed night) and 4,000 users per arm, 10% converting in both.
    looks = [look(1000, 100, 100), look(3000, 300, 300)]
    analysis = analyse("conversion", look(4000, 400, 400), Settings(planned_exposures=PLANNED, previous_looks=looks))
    row = treatment_row(analysis)
    assert analysis["design"] == "spending" and row["information_fraction"] == pytest.approx(0.2)
    # Equal rates at every look: the information per user is the same, so the fractions are n / N.
    expected = spending.boundaries([0.05, 0.15, 0.2], 0.05, spending.DESIGN_GAMMA, spending.DESIGN_FAMILY)[-1]
    assert row["boundary"] == pytest.approx(expected, rel=1e-9)
    assert row["p_value"] == 1.0 and row["significant"] is False
    # The repeated confidence interval: the ratios rho the look's test does not reject (Fieller's
    # textbook closed form, for independent means at 10% with 4,000 a side: each variance 0.09 / 4000).
    mean, variance = 0.1, 0.09 / 4000
    g = expected**2 * variance / mean**2
    spread = expected / mean * math.sqrt(variance + variance - g * variance)
    fieller = [(1 - spread) / (1 - g) - 1, (1 + spread) / (1 - g) - 1]
    assert row["lift"]["relative_ci"] == pytest.approx(fieller, rel=1e-9)


def test_p_value_is_below_alpha_exactly_when_the_boundary_is_crossed():
    for treatment in range(400, 520, 4):
        row = treatment_row(analyse("conversion", look(4000, 400, treatment), Settings(planned_exposures=PLANNED)))
        z = proportion.test_proportions_2indep(treatment, 4000, 400, 4000, method="wald", compare="diff").statistic
        assert (row["p_value"] < 0.05) == (abs(z) >= row["boundary"])
        # The interval inverts the same test: it excludes 0 exactly then.
        low, high = row["lift"]["relative_ci"]
        assert (row["p_value"] < 0.05) == (low > 0 or high < 0)
        # alpha * P(|Z| >= |z|) / P(|Z| >= c), the p-value's definition.
        expected = min(1.0, 0.05 * norm.sf(abs(z)) / norm.sf(row["boundary"]))
        assert row["p_value"] == pytest.approx(expected, rel=1e-6)


def test_a_crossing_stands_at_later_looks():
    crossed = look(2000, 200, 300)  # +50%: far past the first look's bar
    first = analyse("conversion", crossed, Settings(planned_exposures=PLANNED))
    assert first["verdict"]["decision"] == "ship"
    # The next night the data regress towards no difference: the design had stopped and rejected.
    later = analyse("conversion", look(4000, 400, 430), Settings(planned_exposures=PLANNED, previous_looks=[crossed]))
    # (Each look's fraction is recomputed with tonight's information per user, so the earlier
    # look's p-value moves a little; the crossing, far past the bar, stands.)
    assert treatment_row(later)["p_value_fixed"] > 0.05
    assert treatment_row(later)["p_value"] < 0.05 and later["verdict"]["decision"] == "ship"


def test_a_crossing_keeps_its_direction_when_tonight_s_estimate_turns():
    """The first look crossed with the treatment far below the control (60 against 25 of 500
    converting); tonight's totals put it a hair above. The design decided at the crossing: the
    treatment is worse, and tonight's +1% may not turn that into "test beats control"."""
    crossed = [VariantData("control", 500, 60), VariantData("test", 500, 25)]
    settings = Settings(mde=0.1, planned_exposures=1000, previous_looks=[crossed])
    later = analyse("conversion", [VariantData("control", 1000, 100), VariantData("test", 1000, 101)], settings)
    row = treatment_row(later)
    assert row["lift"]["absolute"] > 0 and row["significant"] is True
    assert row["direction"] == "lower"
    assert later["verdict"] == {
        "decision": "ship",
        "variant": "control",
        "reason": "every variant is significantly worse than 'control'",
    }


def test_each_design_says_which_side_of_the_control_a_treatment_is_on():
    for settings in (Settings(planned_exposures=PLANNED), Settings(sequential=False), Settings(design="msprt")):
        above = analyse("conversion", look(4000, 400, 480), settings)
        below = analyse("conversion", look(4000, 400, 330), settings)
        assert treatment_row(above)["direction"] == "higher" and treatment_row(below)["direction"] == "lower"


def test_the_final_look_ends_the_test_and_later_looks_change_nothing():
    nights = [look(n, n // 10, n // 10 + n // 400) for n in range(4000, 24_001, 4000)]  # +2.5%
    settings = Settings(planned_exposures=PLANNED, previous_looks=nights[:-1])
    final = analyse("conversion", nights[-1], settings)
    row = treatment_row(final)
    assert row["information_fraction"] >= 1 and row["p_value"] >= 0.05
    assert final["verdict"]["decision"] == "no_effect" and "test is over" in final["verdict"]["reason"]
    # A week later the lift looks significant by a fixed-horizon test, but the design's answer stands.
    later = analyse("conversion", look(40_000, 4000, 4300), Settings(planned_exposures=PLANNED, previous_looks=nights))
    assert treatment_row(later)["p_value_fixed"] < 0.01
    assert treatment_row(later)["p_value"] >= 0.05 and later["verdict"]["decision"] == "no_effect"
    assert treatment_row(later)["information_fraction"] == pytest.approx(2.0)


def test_design_and_plan_are_checked_naming_the_field():
    with pytest.raises(ValueError, match=r"^planned_exposures"):
        analyse("conversion", look(100, 10, 10), Settings(design="spending"))
    with pytest.raises(ValueError, match=r"^previous_looks\[0\]"):
        analyse("conversion", look(100, 10, 10), Settings(planned_exposures=10, previous_looks=[[VariantData("x", 1)]]))
    msprt = analyse("conversion", look(100, 10, 10), Settings(planned_exposures=10, design="msprt"))
    assert msprt["design"] == "msprt" and msprt["planned_exposures"] is None
    assert analyse("conversion", look(100, 10, 10), Settings())["design"] == "msprt"  # no plan
    assert analyse("conversion", look(100, 10, 10), Settings(sequential=False))["design"] == "fixed"


def test_the_command_line_names_a_bad_look():
    problem = {
        "metric": {"kind": "conversion"},
        "planned_exposures": 100,
        "previous_looks": [[{"key": "control", "exposures": 10}, {"key": "test", "exposures": 10, "conversions": 1}]],
        "variants": [
            {"key": "control", "exposures": 20, "conversions": 2},
            {"key": "test", "exposures": 20, "conversions": 3},
        ],
    }
    answer = subprocess.run(
        [sys.executable, "-m", "abacus.stats"], input=json.dumps(problem), capture_output=True, text=True, check=False
    )
    assert answer.returncode == 2 and "previous_looks[0][0].conversions" in answer.stderr, answer.stderr


def test_a_control_without_conversions_or_a_perfect_covariate_gives_numbers_not_errors():
    # A control mean of 0 has no relative lift (schemathesis' fuzzing found the interval divided by it).
    row = treatment_row(analyse("conversion", look(1000, 0, 30), Settings(planned_exposures=PLANNED)))
    assert row["lift"]["relative_ci"] is None and row["p_value"] is not None
    # Outcomes the covariate predicts exactly: the adjusted variance is 0, and the sentence says so.
    perfect = [
        VariantData("control", 100, 0, 30.0, 30.0, 30.0, 30.0, 30.0),
        VariantData("test", 100, 0, 40.0, 40.0, 40.0, 40.0, 40.0),
    ]
    analysis = analyse("mean", perfect, Settings(planned_exposures=PLANNED))
    assert analysis["cuped"] is not None and analysis["cuped"]["variance_reduction"] == pytest.approx(1.0)
    assert "many times the users" in analysis["explanation"][-1]
