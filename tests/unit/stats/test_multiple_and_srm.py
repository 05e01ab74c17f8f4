"""Holm-Bonferroni against statsmodels; sample ratio mismatch against scipy's chi-squared test."""

import pytest
from scipy.stats import chisquare
from statsmodels.stats.multitest import multipletests

from abacus.stats import Settings, VariantData, analyse
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
