"""Alpha-spending boundaries against independent references: published tables (gsDesign's and
rpact's own test suites), Genz's multivariate normal integration (scipy), and a seeded Monte Carlo
simulation of Brownian motion at irregular looks."""

import math

import numpy as np
import pytest
from scipy import optimize, stats

from abacus.stats import spending

Z_975 = stats.norm.ppf(0.975)
FIVE = np.arange(1, 6) / 5


def genz(c, t, mean, lower=None, upper=None):
    """P(lower_j < Z_j < upper_j for every look) for the canonical joint distribution, by
    scipy's Genz integration (lower/upper default to -c/c), with a fixed seed."""
    t = np.asarray(t, dtype=float)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    low = -np.asarray(c) if lower is None else np.asarray(lower)
    high = np.asarray(c) if upper is None else np.asarray(upper)
    return stats.multivariate_normal.cdf(
        high, mean=mean, cov=cov, lower_limit=low, abseps=1e-8, releps=1e-8, maxpts=400_000, rng=1
    )


# Published tables. gsDesign and rpact state their designs as one-sided or as two-sided with
# alpha per side; a symmetric two-sided design at level alpha spends alpha/2 on each side, which
# is what abacus.stats.spending computes with `alpha` the two-sided total.


def test_lan_demets_obrien_fleming_type_five_looks():
    # The classic table for two-sided 0.05, K = 5 equally spaced (as quoted in issue #12; the
    # rpact case below checks the same spending function against a stored reference).
    assert spending.boundaries(FIVE, 0.05, family="obrien-fleming") == pytest.approx(
        [4.877, 3.357, 2.680, 2.290, 2.031], abs=6e-4
    )


def test_obrien_fleming_type_two_sided_is_rpacts():
    # rpact's tests/testthat/test-f_design_group_sequential.R (x7e): getDesignGroupSequential(kMax = 3,
    # alpha = 0.09, sided = 2, typeOfDesign = "asOF", informationRates = c(0.4, 0.65, 1), with a
    # non-binding futility bound, which leaves the efficacy bounds those of the pure design).
    assert spending.boundaries([0.4, 0.65, 1], 0.09, family="obrien-fleming") == pytest.approx(
        [2.9623919, 2.2442359, 1.7391729], abs=2e-6
    )


def test_pocock_type_five_looks():
    # The classic table for two-sided 0.05, K = 5 (as quoted in issue #12).
    assert spending.boundaries(FIVE, 0.05, family="pocock") == pytest.approx(
        [2.438, 2.427, 2.410, 2.397, 2.386], abs=6e-4
    )


def test_pocock_type_is_rpacts_with_the_last_look_short_of_the_maximum():
    # rpact (same file, x6b): informationRates = c(0.4, 0.7), typeOfDesign = "asP", one-sided 0.025.
    # Neither look is final, so each spends alpha(t); one-sided and two-sided designs differ here
    # only by paths that cross one boundary and then the other, far below this tolerance.
    assert spending.boundaries([0.4, 0.7], 0.05, family="pocock") == pytest.approx([2.223875, 2.3050796], abs=2e-6)


def test_hwang_shih_decani_gamma_zero_is_rpacts():
    # rpact (same file, x1): asHSD, gammaA = 0, one-sided 0.03, informationRates = c(0.2, 0.4, 1). At
    # the final look the one-sided design also counts paths that crossed the lower boundary first
    # (about 1e-6 of probability here), which moves that bound by about 2e-5.
    assert spending.boundaries([0.2, 0.4, 1], 0.06, gamma=0) == pytest.approx(
        [2.5121443, 2.4228747, 2.0280392], abs=5e-5
    )


def test_hwang_shih_decani_default_is_gsdesigns():
    # gsDesign's tests/testthat/_snaps/independent-test-print.gsDesign.md, "test.type=2": gsDesign(k = 5,
    # test.type = 2) (symmetric, 2.5% per side, sfHSD gamma = -4, 90% power) prints the bounds, the
    # sample size ratio 1.023 and the upper crossing probabilities under the alternative.
    assert spending.DEFAULT_GAMMA == -4
    critical = spending.boundaries(FIVE, 0.05)
    assert critical == pytest.approx([3.25, 2.99, 2.69, 2.37, 2.03], abs=5e-3)
    ratio = spending.inflation(0.05, 0.9, looks=5)
    assert ratio == pytest.approx(1.023, abs=5e-4)
    drift = (Z_975 + stats.norm.ppf(0.9)) * math.sqrt(ratio)
    upper = spending.crossing_probabilities(critical, FIVE, drift).upper
    assert upper == pytest.approx([0.0370, 0.1512, 0.2647, 0.2699, 0.1771], abs=6e-5)


def test_hwang_shih_decani_three_looks_is_gsdesigns_default():
    # gsDesign's tests/testthat/_snaps/independent-test-gsBoundSummary.md: the default design's
    # efficacy bounds (sfHSD gamma = -4, one-sided 0.025, looks at 1/3, 2/3, 1).
    assert spending.boundaries([1 / 3, 2 / 3, 1], 0.05) == pytest.approx([3.0107, 2.5465, 1.9992], abs=2e-4)


@pytest.mark.parametrize(
    ("critical", "fractions", "cumulative"),
    [
        # rpact (same file, x8b, x8d, x8e): two-sided designs at alpha = 0.025 and their alphaSpent.
        ([3.2029374, 2.4819703, 2.3420706], [0.3, 0.8, 1], [0.0013603353, 0.013978861, 0.025]),
        (
            [2.6434487, 2.6052491, 2.5895574, 2.577451],
            [0.3, 0.6, 0.8, 1],
            [0.0082066211, 0.015417447, 0.020576899, 0.025],
        ),
        (
            [3.4527796, 2.7678356, 2.5251363, 2.3516384],
            [0.3, 0.6, 0.8, 1],
            [0.00055484217, 0.0059655413, 0.01417086, 0.025],
        ),
    ],
)
def test_crossing_probabilities_of_rpacts_designs(critical, fractions, cumulative):
    total = spending.crossing_probabilities(critical, fractions).total
    assert np.cumsum(total) == pytest.approx(cumulative, abs=1e-7)


# Genz's integration of the multivariate normal (scipy) at irregular looks.


@pytest.mark.parametrize(
    "fractions",
    # Genz's integration loses accuracy (about 1e-5) when two looks correlate above ~0.97; the
    # simulation below covers looks that close.
    [[0.35, 1.0], [0.05, 0.5, 0.6, 1.0], [0.12, 0.2, 0.61, 0.9, 1.0], [0.3, 0.38, 0.7]],
)
@pytest.mark.parametrize("family", ["hsd", "obrien-fleming", "pocock"])
def test_boundaries_spend_exactly_the_spending_function(fractions, family):
    critical = spending.boundaries(fractions, 0.05, family=family)
    cumulative = spending.spent(fractions, 0.05, family=family)
    for k in range(1, len(fractions) + 1):
        crossed = 1 - genz(critical[:k], fractions[:k], np.zeros(k))
        assert crossed == pytest.approx(cumulative[k - 1], abs=2e-6)


@pytest.mark.parametrize("drift", [0.0, 1.3, -2.2, 3.5])
def test_crossing_probabilities_under_a_drift_are_genzs(drift):
    fractions = np.array([0.08, 0.3, 0.33, 0.75, 1.0])
    critical = spending.boundaries(fractions, 0.05)
    mean = drift * np.sqrt(fractions)
    found = spending.crossing_probabilities(critical, fractions, drift)
    for k in range(len(fractions)):
        # First crossing at look k, upward: inside before, Z_k >= c_k.
        low = np.append(-critical[:k], critical[k])
        high = np.append(critical[:k], np.inf)
        assert found.upper[k] == pytest.approx(genz(None, fractions[: k + 1], mean[: k + 1], low, high), abs=2e-6)
        low = np.append(-critical[:k], -np.inf)
        high = np.append(critical[:k], -critical[k])
        assert found.lower[k] == pytest.approx(genz(None, fractions[: k + 1], mean[: k + 1], low, high), abs=2e-6)


@pytest.mark.parametrize("family", ["obrien-fleming", "pocock", "hsd"])
def test_inflation_gives_the_power_by_genz(family):
    ratio = spending.inflation(0.05, 0.9, looks=5, family=family)
    critical = spending.boundaries(FIVE, 0.05, family=family)
    mean = (Z_975 + stats.norm.ppf(0.9)) * math.sqrt(ratio) * np.sqrt(FIVE)
    power = sum(
        genz(None, FIVE[: k + 1], mean[: k + 1], np.append(-critical[:k], critical[k]), np.append(critical[:k], np.inf))
        for k in range(5)
    )
    assert power == pytest.approx(0.9, abs=1e-5)
    # Near O'Brien-Fleming's 1.03, and Pocock's 1.2 (Jennison and Turnbull, tables 2.3 and 2.8).
    assert {"obrien-fleming": 1.01 < ratio < 1.04, "pocock": 1.15 < ratio < 1.25, "hsd": 1.01 < ratio < 1.04}[family]


def test_one_look_needs_no_inflation():
    assert spending.inflation(0.05, 0.8, looks=1) == pytest.approx(1.0, abs=1e-9)


# A seeded simulation of the score process at 40 irregular looks. With a fixed seed the test is
# deterministic; with any seed it would fail with probability under 4 * 7e-6 (each checkpoint's
# tolerance is 4.5 binomial standard errors).


def test_simulated_first_crossings_follow_the_spending_function():
    rng = np.random.default_rng(20240612)
    nights = np.delete(rng.uniform(0.3, 1.7, 46), [5, 6, 17, 30, 31, 32])  # uneven nights, some missed
    fractions = np.cumsum(nights) / nights.sum()
    critical = spending.boundaries(fractions, 0.05)
    steps = np.sqrt(np.diff(fractions, prepend=0.0))
    simulations, crossed = 400_000, np.zeros(len(fractions))
    for _ in range(8):
        score = np.cumsum(rng.standard_normal((simulations // 8, len(fractions))) * steps, axis=1)
        outside = np.abs(score / np.sqrt(fractions)) >= critical
        first = np.where(outside.any(axis=1), outside.argmax(axis=1), len(fractions))
        crossed += np.bincount(first, minlength=len(fractions) + 1)[:-1]
    expected = spending.spent(fractions, 0.05)
    for k in (9, 19, 29, 39):
        rate = crossed[: k + 1].sum() / simulations
        error = math.sqrt(expected[k] * (1 - expected[k]) / simulations)
        assert abs(rate - expected[k]) < 4.5 * error, (k, rate, expected[k])


# Looks as they come: edge cases.


def test_one_final_look_is_the_fixed_horizon_test():
    assert spending.boundaries([1.0], 0.05) == pytest.approx([1.959964], abs=1e-6)
    assert spending.boundaries([1.0], 0.05, family="obrien-fleming") == pytest.approx([1.959964], abs=1e-6)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ([0.3, 0.3, 1.0], "increasing"),
        ([0.5, 0.4], "increasing"),
        ([0.5, 1.0, 1.2], "final look"),
        ([1.0, 1.5], "final look"),
        ([0.0, 0.5], "positive"),
        ([0.2, np.nan], "finite"),
        ([], "one sequence"),
    ],
)
def test_bad_fractions_are_refused(fractions, message):
    with pytest.raises(ValueError, match=message):
        spending.boundaries(fractions, 0.05)


def test_a_tiny_first_fraction_gets_a_finite_boundary():
    critical = spending.boundaries([1e-4, 0.5, 1.0], 0.05)
    assert np.isfinite(critical).all()
    assert critical[0] == pytest.approx(stats.norm.isf(spending.spent([1e-4], 0.05)[0] / 2), abs=1e-6)


@pytest.mark.parametrize(
    ("fractions", "family"), [([1e-4, 0.5, 1.0], "obrien-fleming"), ([0.5, 0.500001, 0.7, 1.0], "hsd")]
)
def test_a_look_that_spends_nothing_cannot_stop_and_passes_its_alpha_on(fractions, family):
    # O'Brien-Fleming-type spending at t = 1e-4 is 0 in floating point; a look adding 1e-6 of the
    # information spends too little to integrate: both get an infinite boundary, no NaN anywhere,
    # and the next look spends what they did not.
    critical = spending.boundaries(fractions, 0.05, family=family)
    assert np.isinf(critical[:2]).sum() == 1
    assert not np.isnan(critical).any()
    total = spending.crossing_probabilities(critical, fractions).total
    assert total.sum() == pytest.approx(0.05, abs=1e-6)


def test_the_final_look_spends_what_is_left_even_past_the_maximum_information():
    fractions = [0.4, 0.8, 1.25]
    total = spending.crossing_probabilities(spending.boundaries(fractions, 0.05), fractions).total
    assert np.cumsum(total) == pytest.approx([*spending.spent([0.4, 0.8], 0.05), 0.05], abs=1e-6)
    assert 1 - genz(spending.boundaries(fractions, 0.05), fractions, np.zeros(3)) == pytest.approx(0.05, abs=2e-6)


def test_a_finite_boundary_at_a_look_too_close_to_the_last_is_refused():
    with pytest.raises(ValueError, match="information"):
        spending.crossing_probabilities([2.5, 2.5], [0.5, 0.5000001])


def test_comparisons_in_one_batch_agree_with_each_alone():
    # Each row of a batch is integrated on the finest grid any row needs, so rows can differ from
    # their own computation by the grid's error (under 1e-3).
    rng = np.random.default_rng(3)
    rows = np.cumsum(rng.uniform(0.5, 1.5, (9, 30)), axis=1)
    rows /= rows[:, -1:] * rng.uniform(1.0, 1.1, (9, 1))
    batch = spending.boundaries(rows, 0.05)
    assert batch.shape == (9, 30)
    for row, critical in zip(rows, batch, strict=True):
        assert critical == pytest.approx(spending.boundaries(row, 0.05), abs=1e-3)


def test_boundaries_are_close_to_exact_with_thirty_nightly_looks():
    # The default grid against one four times finer: the cost/accuracy choice documented at GRID_R.
    fractions = np.cumsum(np.random.default_rng(5).uniform(0.5, 1.5, (20, 30)), axis=1)
    fractions /= fractions[:, -1:]
    exact = spending.boundaries(fractions, 0.05, r=48)
    assert spending.boundaries(fractions, 0.05) == pytest.approx(exact, abs=1e-3)
    assert spending.boundaries(fractions, 0.05, r=16) == pytest.approx(exact, abs=4e-4)


# The spending functions, the p-value and the intervals.


def test_spending_functions():
    t = np.array([0.0, 0.25, 0.5, 1.0, 1.7])
    assert spending.spent(t, 0.05, gamma=0) == pytest.approx([0, 0.0125, 0.025, 0.05, 0.05])
    hsd = 0.05 * (1 - np.exp(4 * np.minimum(t, 1))) / (1 - math.exp(4))
    assert spending.spent(t, 0.05) == pytest.approx(hsd)
    assert spending.spent(t, 0.05, gamma=2) == pytest.approx(
        0.05 * (1 - np.exp(-2 * np.minimum(t, 1))) / (1 - math.exp(-2))
    )
    per_side = 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - 0.025 / 2) / np.sqrt(t[1:]))
    assert spending.spent(t, 0.05, family="obrien-fleming") == pytest.approx([0, *(2 * per_side[:3]), 0.05, 0.05][:5])
    assert spending.spent(t, 0.05, family="pocock") == pytest.approx(0.05 * np.log(1 + (math.e - 1) * np.minimum(t, 1)))


def test_nominal_p_value_is_below_alpha_exactly_when_the_design_rejects():
    c = 2.71
    assert spending.nominal_p_value(c + 1e-9, c, 0.05) < 0.05
    assert spending.nominal_p_value(-c - 1e-9, c, 0.05) < 0.05
    assert spending.nominal_p_value(c - 1e-9, c, 0.05) > 0.05
    assert spending.nominal_p_value(0.3, c, 0.05) == 1.0
    assert spending.nominal_p_value([5.0, 1.0], [np.inf, np.inf], 0.05) == pytest.approx([1.0, 1.0])
    assert spending.nominal_p_value(3.5, c, 0.05) == pytest.approx(0.05 * stats.norm.sf(3.5) / stats.norm.sf(c))


@pytest.mark.parametrize("u", [0.001, 0.01, 0.05, 0.3, 0.9])
def test_nominal_p_value_is_a_valid_p_value_at_its_look(u):
    # Under H0, Z ~ N(0, 1) at any single look: P(p <= u) <= u.
    c = 2.4
    edge = optimize.brentq(lambda z: spending.nominal_p_value(z, c, 0.05) - u, 0, 40)
    assert 2 * stats.norm.sf(edge) <= u + 1e-12


def test_repeated_interval_excludes_zero_exactly_when_the_design_rejects():
    low, high = spending.repeated_interval(0.03, 0.0001, 2.5)
    assert (low, high) == pytest.approx((0.03 - 0.025, 0.03 + 0.025))
    assert spending.repeated_interval(0.0251, 0.0001, 2.5)[0] > 0
    assert spending.repeated_interval(0.0249, 0.0001, 2.5)[0] < 0
    assert spending.repeated_interval(0.01, 0.0001, math.inf) == (-math.inf, math.inf)
