"""abacus.stats conversion analysis against independent references (statsmodels, scipy)."""

import math

import numpy as np
import pytest
from scipy.stats import beta, norm
from statsmodels.stats import proportion

from abacus.stats import VariantCounts, analyse_conversion


def analyse(control: tuple[int, int], treatment: tuple[int, int]) -> dict:
    return analyse_conversion(
        [VariantCounts("control", *control), VariantCounts("test", *treatment)], control="control"
    )


@pytest.mark.parametrize(("control", "treatment"), [((10_000, 1_000), (10_000, 1_080)), ((500, 40), (480, 61))])
def test_p_value_equals_statsmodels_unpooled_wald(control, treatment):
    result = analyse(control, treatment)
    reference = proportion.test_proportions_2indep(
        treatment[1], treatment[0], control[1], control[0], method="wald", compare="diff"
    ).pvalue
    assert result["variants"][1]["p_value"] == pytest.approx(reference, rel=1e-9)


def test_relative_lift_interval_is_the_delta_method():
    (n_c, x_c), (n_t, x_t) = (8_000, 640), (8_000, 720)
    result = analyse((n_c, x_c), (n_t, x_t))["variants"][1]["lift"]
    p_c, p_t = x_c / n_c, x_t / n_t
    ratio = p_t / p_c
    # Textbook delta method for a ratio of independent means: Var(R) = R^2 (CV_t^2 + CV_c^2).
    cv_t2 = (p_t * (1 - p_t) / n_t) / p_t**2
    cv_c2 = (p_c * (1 - p_c) / n_c) / p_c**2
    half = norm.ppf(0.975) * ratio * math.sqrt(cv_t2 + cv_c2)
    assert result["relative"] == pytest.approx(ratio - 1)
    assert result["relative_ci"] == pytest.approx([ratio - 1 - half, ratio - 1 + half], rel=1e-9)


def test_relative_interval_covers_the_true_lift_about_95_percent_of_the_time():
    rng = np.random.default_rng(3)
    p_c, p_t, n = 0.10, 0.11, 20_000
    true_lift = p_t / p_c - 1
    covered = 0
    for _ in range(600):
        result = analyse((n, int(rng.binomial(n, p_c))), (n, int(rng.binomial(n, p_t))))
        low, high = result["variants"][1]["lift"]["relative_ci"]
        covered += low <= true_lift <= high
    assert 0.92 <= covered / 600 <= 0.975


def test_credible_interval_is_the_beta_posterior_quantiles():
    result = analyse((1_000, 87), (1_000, 0))
    for row, (n, x) in zip(result["variants"], [(1_000, 87), (1_000, 0)], strict=True):
        expected = [beta.ppf(0.025, 1 + x, 1 + n - x), beta.ppf(0.975, 1 + x, 1 + n - x)]
        assert row["credible_interval"] == pytest.approx(expected, rel=1e-9)


def test_degenerate_inputs_give_defined_numbers():
    for control, treatment in [((0, 0), (0, 0)), ((100, 0), (100, 0)), ((100, 100), (100, 100)), ((0, 0), (10, 3))]:
        result = analyse(control, treatment)
        treatment_row = result["variants"][1]
        assert treatment_row["p_value"] is None or 0 <= treatment_row["p_value"] <= 1
        for row in result["variants"]:
            assert not math.isnan(row["mean"]) and all(not math.isnan(x) for x in row["credible_interval"])
        assert result["verdict"]["decision"] == "keep_running"


def test_clear_winner_is_shipped_and_a_loser_is_not():
    assert analyse((10_000, 1_000), (10_000, 1_300))["verdict"] == {
        "decision": "ship",
        "variant": "test",
        "reason": "'test' converts significantly better than 'control'",
    }
    assert analyse((10_000, 1_300), (10_000, 1_000))["verdict"]["decision"] == "keep_running"


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="conversions"):
        analyse((10, 11), (10, 1))
    with pytest.raises(ValueError, match="control"):
        analyse_conversion([VariantCounts("a", 1, 0)], control="control")
