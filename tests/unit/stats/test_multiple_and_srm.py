"""Holm-Bonferroni against statsmodels; sample ratio mismatch against scipy's chi-squared test."""

import numpy as np
import pytest
from scipy.stats import chisquare
from statsmodels.stats.multitest import multipletests

from abacus.stats import srm
from abacus.stats.analysis import Settings, VariantData, analyse
from abacus.stats.multiple import holm
from abacus.stats.srm import sample_ratio_mismatch


@pytest.mark.parametrize("p_values", [[0.01, 0.04, 0.03, 0.2], [0.5], [0.001, 0.001, 0.9], [0.04, 0.01]])
def test_holm_equals_statsmodels(p_values):
    assert holm(p_values) == pytest.approx(list(multipletests(p_values, method="holm")[1]))


def test_holm_skips_undefined_p_values():
    adjusted = holm([0.01, None, 0.04])
    assert adjusted[1] is None
    assert [adjusted[0], adjusted[2]] == pytest.approx(list(multipletests([0.01, 0.04], method="holm")[1]))


def test_analysis_reports_adjusted_beside_raw():
    variants = [VariantData("control", 5000, 500)] + [VariantData(f"v{i}", 5000, 500 + 25 * i) for i in range(1, 4)]
    rows = analyse("conversion", variants, Settings(sequential=False))["variants"][1:]
    raw = [row["p_value"] for row in rows]
    assert [row["p_value_adjusted"] for row in rows] == pytest.approx(list(multipletests(raw, method="holm")[1]))


@pytest.mark.parametrize(
    ("exposures", "weights"), [([5000, 5000], [50, 50]), ([5200, 4800], [50, 50]), ([900, 2000, 3100], [20, 30, 50])]
)
def test_srm_p_value_equals_scipy_chisquare(exposures, weights):
    total = sum(exposures)
    expected = [total * w / sum(weights) for w in weights]
    reference = chisquare(exposures, expected).pvalue
    result = sample_ratio_mismatch(exposures, weights)
    assert result["p_value"] == pytest.approx(reference, rel=1e-9)
    assert result["mismatch"] == (reference < 0.001)


def test_srm_edge_cases():
    assert sample_ratio_mismatch([0, 0], [50, 50]) == {"p_value": 1.0, "mismatch": False}
    assert sample_ratio_mismatch([10, 3], [100, 0]) == {"p_value": 0.0, "mismatch": True}
    assert sample_ratio_mismatch([5500, 4500], [50, 50])["mismatch"] is True


def test_the_check_by_day_names_the_first_day_the_split_broke():
    """30 days of a healthy 50/50 split, but for days 12 and 20 where b's exposures were logged
    twice over. Each day's p-value is scipy's chi-squared test; the threshold is shared over the
    30 days (Bonferroni), so the healthy days pass and day 12 is named."""
    rng = np.random.default_rng(8)
    days = []
    for day in range(1, 31):
        control = int(rng.binomial(2000, 0.5))
        b = 2000 - control
        if day in (12, 20):
            b *= 2
        days.append((f"2026-11-{day:02d}", [control, b]))
    checked = srm.by_day(days, [50.0, 50.0])
    assert checked["threshold"] == pytest.approx(0.001 / 30)
    assert checked["first_mismatch"] == "2026-11-12"
    assert [d["date"] for d in checked["days"] if d["mismatch"]] == ["2026-11-12", "2026-11-20"]
    for (date, exposures), result in zip(days, checked["days"], strict=True):
        assert result["date"] == date and result["exposures"] == exposures
        assert result["p_value"] == pytest.approx(chisquare(exposures).pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.slow
def test_a_healthy_split_over_many_days_is_flagged_about_once_in_a_thousand():
    """2,000 simulated healthy experiments of 60 days each: the share with any day flagged stays
    near the single check's 0.1% (Bonferroni), where an unshared 0.001 would flag about 6%."""
    rng = np.random.default_rng(9)
    flagged = 0
    for _ in range(2000):
        controls = rng.binomial(500, 0.5, size=60)
        days = [(f"d{day}", [int(c), int(500 - c)]) for day, c in enumerate(controls)]
        flagged += srm.by_day(days, [1.0, 1.0])["first_mismatch"] is not None
    assert flagged / 2000 <= 0.004, flagged
