"""The skewness correction (abacus.stats.skewness) against independent computations: moments of the
users' own values by scipy, Welch's test by scipy and the Wald test by statsmodels with Hall's
transformation applied to their statistics, and the tests' false-positive rates by simulation
(a fast version of bench/skewness_simulation.py)."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion

from abacus.stats import skewness, spending
from abacus.stats.analysis import Settings, VariantData, analyse
from abacus.stats.ratio import RatioSums, linearized
from bench import skewness_simulation


def revenue(rng: np.random.Generator, users: int) -> np.ndarray:
    """The issue's metric: 70% of users at 0, buyers log-normal with sigma 1.5."""
    return np.where(rng.random(users) < 0.3, rng.lognormal(3.0, 1.5, users), 0.0)


def mean_variant(key: str, values: np.ndarray, cubes: bool = True) -> VariantData:
    return VariantData(
        key,
        len(values),
        sum=float(values.sum()),
        sum_squares=float((values**2).sum()),
        sum_cubes=float((values**3).sum()) if cubes else None,
    )


def hall(z: float, a: float) -> float:
    """Hall's transformation, written out: z + a z^2 / 3 + a^2 z^3 / 27 + a / 6."""
    return z + a * z * z / 3 + a * a * z**3 / 27 + a / 6


def null_skewness(arms: list[np.ndarray], ddof: int = 1) -> float:
    """a for arms (treatment, control) from their values: third moments and variances pooled
    within the arms (scipy's central moments), (mu3 / n_t^2 - mu3 / n_c^2) / (var (1/n_t + 1/n_c))^1.5;
    each arm's variance as its test has it (a rate's p (1 - p) has ddof 0)."""
    (n_t, n_c), users = [len(arm) for arm in arms], sum(len(arm) for arm in arms)
    third = sum(len(arm) * stats.moment(arm, 3) for arm in arms) / users
    variance = sum(len(arm) * np.var(arm, ddof=ddof) for arm in arms) / users
    return float(third * (1 / n_t**2 - 1 / n_c**2) / (variance * (1 / n_t + 1 / n_c)) ** 1.5)


def test_the_third_moment_from_sums_is_scipys():
    values = revenue(np.random.default_rng(1), 5000)
    sums = [len(values), values.sum(), (values**2).sum(), (values**3).sum()]
    assert skewness.third_moment(*sums) == pytest.approx(stats.moment(values, 3), rel=1e-9)


@pytest.mark.parametrize(
    ("values", "cubes"),
    [
        (np.array([1.0, 2.0, 4.0, 8.0]), math.nan),  # no sum of cubes (a snapshot from before them)
        (np.array([1.0, 5.0]), None),  # two users
        (np.full(6, 3.0), None),  # no variance
        (1e9 + np.random.default_rng(2).normal(0, 1, 1000), None),  # rounding beyond the precision asked
    ],
)
def test_a_third_moment_the_sums_cannot_give_is_unknown(values, cubes):
    total_cubes = (values**3).sum() if cubes is None else cubes
    assert math.isnan(skewness.third_moment(len(values), values.sum(), (values**2).sum(), total_cubes))


def test_the_difference_skewness_is_its_definition():
    rng = np.random.default_rng(3)
    arms = [revenue(rng, 800), revenue(rng, 3200)]
    variances = [np.var(arm, ddof=1) for arm in arms]
    thirds = [stats.moment(arm, 3) for arm in arms]
    pooled = skewness.pooled_skewness(800, 3200, *variances, *thirds)
    assert skewness.difference_skewness(800, 3200, pooled) == pytest.approx(null_skewness(arms), rel=1e-9)
    assert skewness.difference_skewness(1000, 1000, pooled) == 0.0  # equal arms cancel
    assert skewness.difference_skewness(800, 3200, math.nan) == 0.0  # unknown: not corrected


@pytest.mark.parametrize("a", [0.0, 0.05, -0.4, 1.5, 6.0])
def test_the_transformation_is_halls_increasing_and_inverted(a):
    z = np.linspace(-8, 8, 161)
    corrected = skewness.corrected(z, a)
    assert corrected == pytest.approx([hall(x, a) for x in z], rel=1e-12, abs=1e-12)
    assert (np.diff(corrected) >= 0).all()
    # Inverted: g(g^-1(y)) = y (z itself is ill-conditioned where g is flat, at z = -3 / a).
    assert skewness.corrected(skewness.uncorrected(corrected, a), a) == pytest.approx(corrected, rel=1e-9, abs=1e-9)


@pytest.mark.slow
def test_the_correction_brings_welchs_false_positives_back_to_alpha():
    # 20,000 A/A comparisons of 60 skewed users against 540 (a 10/90 split), one look each: the
    # uncorrected test rejects about 11%; corrected, near 5% (Edgeworth's first term removed).
    rng = np.random.default_rng(4)
    small, large = revenue(rng, 20_000 * 60).reshape(20_000, 60), revenue(rng, 20_000 * 540).reshape(20_000, 540)
    v_s, v_l = small.var(axis=1, ddof=1), large.var(axis=1, ddof=1)
    z = (small.mean(axis=1) - large.mean(axis=1)) / np.sqrt(v_s / 60 + v_l / 540)
    pooled = skewness.pooled_skewness(60, 540, v_s, v_l, stats.moment(small, 3, axis=1), stats.moment(large, 3, axis=1))
    a = skewness.difference_skewness(60, 540, pooled)
    uncorrected = (2 * stats.norm.sf(np.abs(z)) < 0.05).mean()
    corrected = (2 * stats.norm.sf(np.abs(skewness.corrected(z, a))) < 0.05).mean()
    assert uncorrected > 0.08 and 0.035 <= corrected <= 0.055, (uncorrected, corrected)


@pytest.mark.parametrize("design", [{"sequential": False}, {"design": "msprt"}])
def test_an_unequal_skewed_look_is_welchs_test_corrected(design):
    rng = np.random.default_rng(5)
    control, treatment = revenue(rng, 4000), revenue(rng, 1000)
    analysis = analyse("mean", [mean_variant("control", control), mean_variant("test", treatment)], Settings(**design))
    row = analysis["variants"][1]
    welch = stats.ttest_ind(treatment, control, equal_var=False)
    df = welch.df
    expected = 2 * stats.t.sf(abs(hall(welch.statistic, null_skewness([treatment, control]))), df)
    fixed = row["p_value"] if design == {"sequential": False} else row["p_value_fixed"]
    assert fixed == pytest.approx(expected, rel=1e-7)
    assert fixed != pytest.approx(welch.pvalue, rel=1e-3)  # the correction is not negligible here
    assert any("Kohavi's rule of thumb asks 355 × skewness²" in line for line in analysis["explanation"])


@pytest.mark.parametrize("cubes", [True, False])
def test_equal_arms_or_no_cubes_leave_welchs_test_as_it_was(cubes):
    rng = np.random.default_rng(6)
    control, treatment = revenue(rng, 2000), revenue(rng, 2000 if cubes else 500)
    analysis = analyse(
        "mean",
        [mean_variant("control", control, cubes), mean_variant("test", treatment, cubes)],
        Settings(sequential=False),
    )
    welch = stats.ttest_ind(treatment, control, equal_var=False).pvalue
    assert analysis["variants"][1]["p_value"] == pytest.approx(welch, rel=1e-9)
    assert not any("Skewness" in line for line in analysis["explanation"])


def test_a_rare_conversion_at_ninety_ten_is_the_wald_test_corrected():
    # 1% converting, 300 users against 2,700: a Bernoulli's third moment follows from its rate.
    control, treatment = np.zeros(2700), np.zeros(300)
    control[:30], treatment[:1] = 1.0, 1.0
    row = analyse(
        "conversion", [VariantData("control", 2700, 30), VariantData("test", 300, 1)], Settings(sequential=False)
    )["variants"][1]
    wald = proportion.test_proportions_2indep(1, 300, 30, 2700, method="wald", compare="diff")
    a = null_skewness([treatment, control], ddof=0)
    assert a > 0.3
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(hall(wald.statistic, a))), rel=1e-7)


def test_cuped_corrects_with_the_adjusted_values_third_moment():
    rng = np.random.default_rng(7)
    arms = []
    for n in (3000, 600):
        pre = revenue(rng, n)
        outcome = np.where(rng.random(n) < 0.5, pre, revenue(rng, n))  # half repeat their past
        arms.append((pre, outcome))
    (x_c, y_c), (x_t, y_t) = arms

    def variant(key, x, y):
        return VariantData(
            key, len(y), 0, y.sum(), (y**2).sum(), x.sum(), (x**2).sum(), (x * y).sum(),
            (y**3).sum(), (x**3).sum(), (y * y * x).sum(), (y * x * x).sum(),
        )  # fmt: skip

    analysis = analyse("mean", [variant("control", x_c, y_c), variant("test", x_t, y_t)], Settings(sequential=False))
    # Independently: theta the pooled within-arm slope, each user's y - theta x, their moments by scipy.
    centred = [(x - x.mean(), y - y.mean()) for x, y in arms]
    theta = sum((cx * cy).sum() for cx, cy in centred) / sum((cx * cx).sum() for cx, _ in centred)
    assert analysis["cuped"] is not None and analysis["cuped"]["theta"] == pytest.approx(theta, rel=1e-9)
    r_c, r_t = y_c - theta * x_c, y_t - theta * x_t
    grand_x = np.concatenate([x_c, x_t]).mean()
    difference = (r_t.mean() + theta * grand_x) - (r_c.mean() + theta * grand_x)
    z = difference / math.sqrt(np.var(r_t, ddof=1) / len(r_t) + np.var(r_c, ddof=1) / len(r_c))
    expected = 2 * stats.norm.sf(abs(hall(z, null_skewness([r_t, r_c]))))
    assert analysis["variants"][1]["p_value"] == pytest.approx(expected, rel=1e-7)


def test_the_spending_designs_look_tests_the_corrected_statistic():
    rng = np.random.default_rng(8)
    control, treatment = revenue(rng, 4000), 1.6 * revenue(rng, 1000)
    planned = 25_000
    row = analyse(
        "mean",
        [mean_variant("control", control), mean_variant("test", treatment)],
        Settings(planned_exposures=planned),
    )["variants"][1]
    critical = float(
        spending.boundaries([5000 / (2 * planned)], 0.05, spending.DESIGN_GAMMA, spending.DESIGN_FAMILY)[0]
    )
    difference = treatment.mean() - control.mean()
    sd = math.sqrt(np.var(treatment, ddof=1) / 1000 + np.var(control, ddof=1) / 4000)
    a = null_skewness([treatment, control])
    corrected = hall(difference / sd, a)
    assert row["boundary"] == pytest.approx(critical, rel=1e-6)
    nominal = 0.05 * 2 * stats.norm.sf(abs(corrected)) / (2 * stats.norm.sf(critical))
    assert nominal < 1 and row["p_value"] == pytest.approx(nominal, rel=1e-9)
    # The repeated interval inverts the corrected test for every ratio rho of the means (Fieller):
    # at its edges g((m_t - rho m_c) / sqrt(v_t + rho^2 v_c)) = -+c.
    interval = row["lift"]["relative_ci"]
    assert interval is not None

    def statistic(rho):
        spread = math.sqrt(np.var(treatment, ddof=1) / 1000 + rho * rho * np.var(control, ddof=1) / 4000)
        return (treatment.mean() - rho * control.mean()) / spread

    assert hall(statistic(1 + interval[0]), a) == pytest.approx(critical, rel=1e-6)
    assert hall(statistic(1 + interval[1]), a) == pytest.approx(-critical, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("split", [0.2, 0.1])
def test_the_spending_design_at_an_unequal_split_keeps_false_positives_at_alpha(split):
    # The A/A (1,500 users a night, looks to twice the plan): 6.7% at 80/20 uncorrected.
    # 600 experiments here (the bench runs 1,200): at most 5% plus about one standard error.
    rng = np.random.default_rng(9 + int(10 * split))
    control = skewness_simulation.draw_arm(rng, 600, round(1500 * (1 - split)))
    treatment = skewness_simulation.draw_arm(rng, 600, round(1500 * split))
    critical = skewness_simulation.boundaries(split)
    assert skewness_simulation.check_against_the_engine(treatment, control, critical, rng) > 0
    statistics = skewness_simulation.statistics_of(treatment, control)
    rejects = skewness_simulation.rejections(statistics, critical, treatment.n)
    assert rejects["corrected (the engine's)"].any(axis=1).mean() <= 0.06
    assert rejects["uncorrected (Welch)"].any(axis=1).mean() > rejects["corrected (the engine's)"].any(axis=1).mean()


def test_a_ratios_linearized_cubes_are_its_linearized_values():
    rng = np.random.default_rng(10)
    orders = rng.poisson(0.8, 4000).astype(float)
    amounts = np.where(orders > 0, rng.gamma(np.maximum(2 * orders, 1e-9), 10.0), 0.0)
    n, d = amounts, orders
    sums = RatioSums(
        "b", 4000, n.sum(), (n * n).sum(), d.sum(), (d * d).sum(), (n * d).sum(),
        (n**3).sum(), (d**3).sum(), (n * n * d).sum(), (n * d * d).sum(),
    )  # fmt: skip
    data = linearized(sums)
    ratio = n.sum() / d.sum()
    values = ratio + (n - ratio * d) / d.mean()  # Deng et al.'s linearization, per user
    assert data.sum_cubes is not None
    third = skewness.third_moment(data.exposures, data.sum, data.sum_squares, data.sum_cubes)
    assert third == pytest.approx(stats.moment(values, 3), rel=1e-6)
    assert linearized(sums._replace(numerator_cubes=None)).sum_cubes is None
