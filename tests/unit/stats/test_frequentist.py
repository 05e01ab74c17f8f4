"""Fixed-horizon p-values and intervals against statsmodels, scipy and textbook formulas."""

import math

import pytest
from scipy import stats
from statsmodels.stats import proportion

from abacus.core.documents import MetricKind, VariantAnalysis
from abacus.stats.analysis import Settings, VariantData, analyse

FIXED = Settings(sequential=False)


def two_variants(
    kind: MetricKind, control: VariantData, treatment: VariantData, settings: Settings = FIXED
) -> VariantAnalysis:
    return analyse(kind, [control, treatment], settings)["variants"][1]


# Arms of equal size: unequal ones add the skewness correction (test_skewness.py checks it).
@pytest.mark.parametrize(("control", "treatment"), [((10_000, 1_000), (10_000, 1_080)), ((500, 40), (500, 61))])
def test_conversion_p_value_is_statsmodels_wald(control, treatment):
    row = two_variants("conversion", VariantData("control", *control), VariantData("t", *treatment))
    reference = proportion.test_proportions_2indep(
        treatment[1], treatment[0], control[1], control[0], method="wald", compare="diff"
    ).pvalue
    assert row["p_value"] == pytest.approx(reference, rel=1e-9)


def test_mean_p_value_is_welchs_t_test():
    n_c, m_c, s_c, n_t, m_t, s_t = 40, 10.0, 4.0, 55, 12.1, 6.5

    def variant(key, n, m, s):
        return VariantData(key, n, sum=m * n, sum_squares=s**2 * (n - 1) + m**2 * n)

    row = two_variants("mean", variant("control", n_c, m_c, s_c), variant("t", n_t, m_t, s_t))
    reference = stats.ttest_ind_from_stats(m_t, s_t, n_t, m_c, s_c, n_c, equal_var=False).pvalue
    assert row["p_value"] == pytest.approx(reference, rel=1e-9)
    assert row["lift"]["absolute"] == pytest.approx(m_t - m_c)


@pytest.mark.parametrize(("control", "treatment"), [((8_000, 640), (8_000, 720)), ((300, 12), (300, 5))])
def test_relative_interval_is_fiellers(control, treatment):
    # Arms of equal size: no skewness correction (test_relative_lift.py checks it with one).
    (n_c, x_c), (n_t, x_t) = control, treatment
    row = two_variants("conversion", VariantData("control", n_c, x_c), VariantData("t", n_t, x_t))
    p_c, p_t = x_c / n_c, x_t / n_t
    v_c, v_t = p_c * (1 - p_c) / n_c, p_t * (1 - p_t) / n_t
    ratio, z = p_t / p_c, stats.norm.ppf(0.975)
    # Fieller's textbook limits for a ratio of independent means, g = z^2 v_c / m_c^2:
    # (ratio +/- z / m_c sqrt(v_t + ratio^2 v_c - g v_t)) / (1 - g).
    g = z * z * v_c / p_c**2
    spread = z / p_c * math.sqrt(v_t + ratio**2 * v_c - g * v_t)
    assert row["lift"]["relative"] == pytest.approx(ratio - 1)
    fieller = [(ratio - spread) / (1 - g) - 1, (ratio + spread) / (1 - g) - 1]
    assert row["lift"]["relative_ci"] == pytest.approx(fieller, rel=1e-9)
