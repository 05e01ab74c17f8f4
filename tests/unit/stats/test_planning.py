"""Planning against the two-proportion formula (written here with scipy) and statsmodels' power."""

import math

import pytest
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import power_proportions_2indep

from abacus.core import planning


@pytest.mark.parametrize(("baseline", "mde", "alpha", "power"), [(0.1, 0.05, 0.05, 0.8), (0.02, 0.1, 0.01, 0.9)])
def test_conversion_sample_size_is_the_two_proportion_formula(baseline, mde, alpha, power):
    p1, p2 = baseline, baseline * (1 + mde)
    pbar = (p1 + p2) / 2
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    expected = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (
        p2 - p1
    ) ** 2
    n = planning.exposures_for_conversion(baseline, mde, alpha, power)
    assert n == math.ceil(expected)
    # statsmodels' power at that sample size is the power asked for.
    achieved = power_proportions_2indep(p2 - p1, p1, n, alpha=alpha, alternative="two-sided").power
    assert achieved == pytest.approx(power, abs=0.002)


def test_mean_sample_size_matches_statsmodels():
    mean, sd, mde = 25.0, 40.0, 0.05
    n = planning.exposures_for_mean(mean, sd, mde, alpha=0.05, power=0.8)
    reference = NormalIndPower().solve_power(
        effect_size=mean * mde / sd, alpha=0.05, power=0.8, alternative="two-sided"
    )
    assert n == math.ceil(reference)


def test_more_variants_split_alpha():
    two = planning.exposures_for_conversion(0.1, 0.05, variants=2)
    four = planning.exposures_for_conversion(0.1, 0.05, alpha=0.05, variants=4)
    assert four == planning.exposures_for_conversion(0.1, 0.05, alpha=0.05 / 3, variants=2) > two


def test_days_left():
    assert planning.days_left(10_000, 4_000, days_running=4) == (6, None)
    assert planning.days_left(10_000, 12_000, days_running=0.1) == (0, None)  # reached: no rate needed
    no_exposures = planning.days_left(10_000, 0, days_running=2)
    assert no_exposures.days is None and no_exposures.unknown_because


def test_days_left_are_not_estimated_from_less_than_a_full_day():
    # A minute of traffic said "1 more day" for 8,280 exposures still to come.
    a_minute = planning.days_left(8_291, 11, days_running=1 / 1440)
    assert a_minute.days is None
    assert a_minute.unknown_because == "cannot be estimated before a full day of exposures (1 minute so far)"
    half_a_day = planning.days_left(8_291, 11, days_running=0.5)
    assert half_a_day == (None, "cannot be estimated before a full day of exposures (12 hours so far)")
    assert planning.days_left(8_291, 4_000, days_running=1).days == 2


def test_bad_planning_input_names_the_field():
    with pytest.raises(ValueError, match="baseline"):
        planning.exposures_for_conversion(0, 0.05)
    with pytest.raises(ValueError, match="baseline_sd"):
        planning.exposures_for_mean(10, 0, 0.05)


@pytest.mark.parametrize(("baseline", "mde"), [(5e-324, 5e-324), (0.5, 1e-153), (0.5, 5e-324)])
def test_an_effect_too_small_to_plan_for_is_refused_by_name(baseline, mde):
    # Its square is 0, or the sample beyond any experiment's: never a ZeroDivisionError or an overflow.
    with pytest.raises(ValueError, match=r"^mde: too small"):
        planning.exposures_for_conversion(baseline, mde)
    with pytest.raises(ValueError, match=r"^mde: too small"):
        planning.exposures_for_mean(max(baseline, 1e-300), 1.0, mde)


def test_planning_needs_no_scipy():
    import subprocess
    import sys

    probe = "import sys, abacus.core.planning; print(any(m.split('.')[0] in ('scipy', 'numpy') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sequential_inflation_solves_its_equation():
    from scipy.optimize import brentq
    from scipy.stats import norm

    mde = 0.05
    k = planning.sequential_inflation(0.05, 0.8, mde)
    s = norm.ppf(0.975) + norm.ppf(0.8)
    variance = (mde / s) ** 2 / k
    taus = [mde * 2**j for j in range(12) if j == 0 or mde * 2 ** (j - 1) < 16]
    weights = [0.5] + [0.5 / (len(taus) - 1)] * (len(taus) - 1)

    def log_ratio(z):
        # The mixture of normal likelihood ratios at an estimate z standard errors from zero.
        x = z * math.sqrt(variance)
        terms = [w * norm.pdf(x, 0, math.sqrt(variance + t * t)) for w, t in zip(weights, taus, strict=True)]
        return math.log(sum(terms) / norm.pdf(x, 0, math.sqrt(variance)))

    # At k times the fixed-horizon sample the sequence's half-width is where the ratio reaches
    # 1/alpha, and the mde, s sqrt(k) standard errors away, clears it by z_{1-b}.
    half_width = brentq(lambda z: log_ratio(z) - math.log(20), 0.1, 20, xtol=1e-12)
    assert s * math.sqrt(k) - norm.ppf(0.8) == pytest.approx(half_width, rel=1e-6)
    assert 1.9 < k < 2.5


def test_the_spending_designs_inflation_is_the_boundaries():
    from abacus.stats import spending

    # 30 nightly looks over the plan, the design's spending function: the recursion's answer.
    expected = spending.inflation(0.05, 0.8, spending.DESIGN_GAMMA, 30, spending.DESIGN_FAMILY)
    assert planning.SPENDING_INFLATION == pytest.approx(expected, abs=5e-4)
