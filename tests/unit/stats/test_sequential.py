"""The mSPRT against its definition, and its error rates by simulation (fast versions of
bench/peeking_simulation.py and bench/msprt_small_samples.py)."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats import proportion

from abacus.stats import sequential
from abacus.stats.analysis import Settings, VariantData, analyse
from bench import msprt_small_samples
from bench.peeking_simulation import simulate


def mixture_ratio(estimate: float, variance: float, mde: float) -> float:
    """Lambda by numerical integration: the average over the mixture's scales of
    integral of N(estimate; theta, V) N(theta; 0, tau^2) dtheta / N(estimate; 0, V)."""
    sd = math.sqrt(variance)

    def ratio(tau):
        numerator = integrate.quad(
            lambda theta: stats.norm.pdf(estimate, theta, sd) * stats.norm.pdf(theta, 0, tau),
            -12 * tau,
            12 * tau,
            points=[estimate],
            epsabs=0,
            epsrel=1e-11,
            limit=500,
        )[0]
        return numerator / stats.norm.pdf(estimate, 0, sd)

    # Half the weight on tau = mde, the rest evenly over mde * 2, 4, ... up to the first past 16.
    taus = [mde * 2**j for j in range(40) if j == 0 or mde * 2 ** (j - 1) < 16]
    weights = [0.5] + [0.5 / (len(taus) - 1)] * (len(taus) - 1)
    return sum(w * ratio(tau) for w, tau in zip(weights, taus, strict=True))


@pytest.mark.parametrize(("estimate", "variance", "mde"), [(0.03, 0.0004, 0.05), (-0.1, 0.002, 0.05), (0.0, 1e-4, 0.2)])
def test_p_value_is_one_over_the_mixture_likelihood_ratio(estimate, variance, mde):
    z = estimate / math.sqrt(variance)
    mixture = mixture_ratio(estimate, variance, mde)
    assert sequential.always_valid_p_value(z, variance, mde) == pytest.approx(min(1, 1 / mixture), rel=1e-7)


def test_the_half_width_is_where_the_p_value_reaches_alpha():
    variance, mde, alpha = 0.0003, 0.05, 0.05
    half = sequential.half_width(variance, mde, alpha)
    assert sequential.always_valid_p_value(half, variance, mde) == pytest.approx(alpha, rel=1e-9)
    smaller = sequential.always_valid_p_value(0.99 * half, variance, mde)
    assert smaller is not None and smaller > alpha


def test_the_test_is_on_the_difference_of_the_rates_scaled_by_their_pooled_rate():
    # 1,000 users per arm, 100 against 135 conversions. Independently: statsmodels' Wald z of the
    # difference, the variance relative to the pooled rate (11.75%), the mixture by integration.
    row = analyse(
        "conversion", [VariantData("control", 1000, 100), VariantData("test", 1000, 135)], Settings(design="msprt")
    )["variants"][1]
    z = proportion.test_proportions_2indep(135, 1000, 100, 1000, method="wald", compare="diff").statistic
    p_t, p_c, pooled = 0.135, 0.1, 0.1175
    variance = (p_t * (1 - p_t) + p_c * (1 - p_c)) / 1000 / pooled**2
    sd = math.sqrt(variance)
    assert row["p_value"] == pytest.approx(1 / mixture_ratio(z * sd, variance, 0.05), rel=1e-6)
    # The confidence sequence: the ratios rho whose statistic (p_t - rho p_c) / sqrt(v_t + rho^2 v_c)
    # is within h of 0 (Fieller), where the integrated p-value at h is alpha.
    interval = row["lift"]["relative_ci"]
    assert interval is not None

    def statistic(rho):
        return (p_t - rho * p_c) / math.sqrt((p_t * (1 - p_t) + rho * rho * p_c * (1 - p_c)) / 1000)

    half = statistic(1 + interval[0])
    assert -statistic(1 + interval[1]) == pytest.approx(half, rel=1e-9)
    assert 1 / mixture_ratio(half * sd, variance, 0.05) == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize(("control", "treatment"), [(5, 1), (1, 5)])
def test_one_small_look_is_never_below_the_fixed_horizon_p_value(control, treatment):
    # 5/30 against 1/30: the relative lift's delta-method variance gave p = 0.029 (significant)
    # with the treatment low and p = 1 with it high, where the fixed-horizon p is 0.077 either way.
    variants = [VariantData("control", 30, control), VariantData("test", 30, treatment)]
    row = analyse("conversion", variants, Settings(design="msprt"))["variants"][1]
    reference = proportion.test_proportions_2indep(treatment, 30, control, 30, method="wald", compare="diff").pvalue
    assert row["p_value_fixed"] == pytest.approx(reference, rel=1e-9)
    assert row["p_value"] is not None and row["p_value"] >= reference and not row["significant"]
    swapped = analyse("conversion", variants[::-1], Settings(design="msprt", control="test"))["variants"][1]
    assert swapped["p_value"] == pytest.approx(row["p_value"], rel=1e-12)


def test_a_mean_metrics_always_valid_p_value_is_never_below_welchs():
    # Three users an arm, values 1, 2, 3 against 10, 11, 12: Welch's t has 4 degrees of freedom
    # (p = 3.8e-4), and the normal mixture alone would say p = 1e-10.
    def variant(key, values):
        return VariantData(key, len(values), sum=sum(values), sum_squares=sum(v * v for v in values))

    row = analyse("mean", [variant("control", [1, 2, 3]), variant("test", [10, 11, 12])], Settings(design="msprt"))
    treatment = row["variants"][1]
    welch = stats.ttest_ind([10, 11, 12], [1, 2, 3], equal_var=False).pvalue
    assert treatment["p_value_fixed"] == pytest.approx(welch, rel=1e-9)
    p_value, fixed = treatment["p_value"], treatment["p_value_fixed"]
    assert p_value is not None and fixed is not None and p_value >= fixed


@pytest.mark.parametrize(("per_day", "rate"), [(20, 0.10), (50, 0.05), (100, 0.01)])
def test_small_and_rare_samples_are_declared_different_at_most_alpha(per_day, rate):
    # The A/A: a look a day for 20 days; 7.6% and 9.1% were declared different at the
    # first two sizes. The bench's batched p-values are the engine's (checked first).
    rng = np.random.default_rng(per_day)
    assert msprt_small_samples.check_against_the_engine(rng) > 0
    arms = msprt_small_samples.draw(rng, 2000, 20, per_day, rate, rate)
    first = msprt_small_samples.first_days(msprt_small_samples.p_values(arms, "after"))
    assert np.isfinite(first).mean() <= 0.05


def test_an_overwhelming_difference_is_called_whatever_the_mde():
    # 800 users per arm converting 10% against 30%: the fixed-horizon p-value is about 5e-25.
    variants = [VariantData("control", 800, 80), VariantData("test", 800, 240)]
    fixed = analyse("conversion", variants, Settings(sequential=False))["variants"][1]
    assert fixed["p_value"] is not None and fixed["p_value"] < 1e-20
    for mde in (0.01, 0.05, 0.2):
        analysis = analyse("conversion", variants, Settings(design="msprt", mde=mde))
        row = analysis["variants"][1]
        assert analysis["verdict"]["decision"] == "ship" and row["p_value"] is not None and row["p_value"] < 1e-3
        interval, fixed_interval = row["lift"]["relative_ci"], fixed["lift"]["relative_ci"]
        assert interval is not None and fixed_interval is not None
        # Never more than a few times the fixed-horizon interval at the same look.
        assert (interval[1] - interval[0]) < 3 * (fixed_interval[1] - fixed_interval[0])


def test_sequential_fields_beside_the_fixed_ones():
    variants = [VariantData("control", 10_000, 1_000), VariantData("test", 10_000, 1_080)]
    row = analyse("conversion", variants, Settings(sequential=True))["variants"][1]
    fixed = analyse("conversion", variants, Settings(sequential=False))["variants"][1]
    assert row["p_value_fixed"] == fixed["p_value"] and row["relative_ci_fixed"] == fixed["lift"]["relative_ci"]
    p_value, p_value_fixed = row["p_value"], row["p_value_fixed"]
    assert p_value is not None and p_value_fixed is not None and p_value > p_value_fixed
    interval, fixed_interval = row["lift"]["relative_ci"], fixed["lift"]["relative_ci"]
    assert interval is not None and fixed_interval is not None and interval[0] < fixed_interval[0]


@pytest.mark.slow
def test_daily_peeking_keeps_false_positives_at_alpha_and_intervals_cover():
    # 2,000 experiments looked at daily for 56 days (2,000 users per arm a day, 10% baseline).
    result = simulate(experiments=2000, days=56, per_day=2000, seed=11)
    assert result["aa_false_positive_sequential"] <= 0.05 + 0.01
    assert result["aa_false_positive_fixed_peeking"] > 0.15  # why sequential testing is needed
    assert 0.94 <= result["coverage_fixed"] <= 0.96
    assert result["coverage_sequential"] >= 0.95
    # Planning: at the planned sample a single fixed-horizon look has the planned 80% power, and
    # the always-valid test reaches it within the inflated plan.
    assert result["power_fixed_horizon_at_planned_day"] == pytest.approx(0.8, abs=0.03)
    assert result["power_sequential_by_sequential_planned_day"] >= 0.78


def test_a_variance_that_underflows_gives_numbers():
    # 5e-324 (a subnormal) made V / (V + tau^2) exactly 0 and its logarithm an error.
    assert sequential.always_valid_p_value(0.1 / math.sqrt(5e-324), 5e-324, 0.05) == 0.0
    assert sequential.always_valid_p_value(0.0, 5e-324, 0.05) == 1.0
    assert math.isfinite(sequential.half_width(5e-324, 0.05, 0.05))
