"""The mSPRT against its definition, and its error rates by simulation (a fast version of
bench/peeking_simulation.py)."""

import math

import pytest
from scipy import integrate, stats

from abacus.stats import Settings, VariantData, analyse, sequential
from bench.peeking_simulation import simulate


@pytest.mark.parametrize(("estimate", "variance", "mde"), [(0.03, 0.0004, 0.05), (-0.1, 0.002, 0.05), (0.0, 1e-4, 0.2)])
def test_p_value_is_one_over_the_mixture_likelihood_ratio(estimate, variance, mde):
    sd = math.sqrt(variance)

    def ratio(tau):
        # Lambda_tau = integral of N(estimate; theta, V) N(theta; 0, tau^2) dtheta / N(estimate; 0, V)
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
    mixture = sum(w * ratio(tau) for w, tau in zip(weights, taus, strict=True))
    assert sequential.always_valid_p_value(estimate, variance, mde) == pytest.approx(min(1, 1 / mixture), rel=1e-7)


def test_confidence_sequence_inverts_the_test():
    estimate, variance, mde, alpha = 0.04, 0.0003, 0.05, 0.05
    interval = sequential.confidence_sequence(estimate, variance, mde, alpha)
    assert interval is not None
    for edge in interval:
        # At the sequence's edge, testing theta = edge gives p = alpha exactly.
        assert sequential.always_valid_p_value(estimate - edge, variance, mde) == pytest.approx(alpha, rel=1e-9)


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
    assert sequential.always_valid_p_value(0.1, 5e-324, 0.05) == 0.0
    assert sequential.always_valid_p_value(0.0, 5e-324, 0.05) == 1.0
    interval = sequential.confidence_sequence(0.1, 5e-324, 0.05, 0.05)
    assert interval is not None and interval[0] == pytest.approx(0.1) and interval[1] == pytest.approx(0.1)
