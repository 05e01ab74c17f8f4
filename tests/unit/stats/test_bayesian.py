"""Probability to be best and expected loss against independent integration (scipy.integrate.quad)."""

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import integrate, special, stats

from abacus.core.documents import Analysis
from abacus.stats import bayesian
from abacus.stats.analysis import Settings, VariantData, analyse
from abacus.stats.posteriors import NormalPosteriors

# docs/statistics.md's promise for both Bayesian numbers (the worst error in these cases is under 1e-12).
TOLERANCE = 1e-10
CASES = [
    [(10_000, 1_000), (10_000, 1_080)],
    [(0, 0), (0, 0)],
    [(100, 0), (100, 5)],
    [(100_000, 10), (900_000, 90)],
    [(50, 50), (40, 39)],
    [(1_000, 100 + i) for i in range(0, 50, 5)],
    [(200, 20), (5_000, 600), (1_000_000, 110_000)],
]


def reference_beta(counts: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """P(best) and expected loss of Beta(1 + x, 1 + n - x) posteriors by adaptive quadrature."""
    dists = [stats.beta(1.0 + x, 1.0 + n - x) for n, x in counts]  # floats: a * b overflows int64
    return _reference(dists, 0.0, 1.0)


def _reference(dists, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    breaks = sorted({float(d.ppf(q)) for d in dists for q in (1e-9, 1e-4, 0.01, 0.5, 0.99, 1 - 1e-4, 1 - 1e-9)})
    best = []
    for i, di in enumerate(dists):
        lo, hi = di.ppf(1e-15), di.isf(1e-15)
        points = [p for p in breaks if lo < p < hi]

        def integrand(x, i=i, di=di):
            return di.pdf(x) * np.prod([d.cdf(x) for j, d in enumerate(dists) if j != i])

        best.append(integrate.quad(integrand, lo, hi, points=points, epsabs=1e-12, epsrel=1e-12, limit=1000)[0])
    lo = min(d.ppf(1e-15) for d in dists)
    hi = max(d.isf(1e-15) for d in dists)
    points = [p for p in breaks if lo < p < hi]
    expected_max = (
        lo
        + integrate.quad(
            lambda x: 1 - np.prod([d.cdf(x) for d in dists]),
            lo,
            hi,
            points=points,
            epsabs=1e-12,
            epsrel=1e-12,
            limit=1000,
        )[0]
    )
    return np.array(best), expected_max - np.array([d.mean() for d in dists])


def reference_point_mass(mass: float, index: int, normals: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """P(best) and expected loss when variant `index` is exactly `mass` and the others are normal
    (mean, sd), in closed form and by adaptive quadrature above the mass:
      P(the mass is best) = prod_k F_k(mass), P(j is best) = integral above the mass of
      f_j prod_{k != j} F_k, E[max] = mass + integral above the mass of (1 - prod_k F_k).
    A normal of sd s in place of the mass changes these by O((s / the others' sds)^2), as the
    difference between its distribution function and a step is odd: at most 1e-15 in the cases here."""

    def others(x: float, skip: int | None = None) -> float:
        return math.prod(special.ndtr((x - m) / s) for k, (m, s) in enumerate(normals) if k != skip)

    def best_above_the_mass(j: int, m: float, s: float) -> float:
        def integrand(x: float) -> float:
            return math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi)) * others(x, j)

        return above(integrand)

    def above(integrand: Callable[[float], float]) -> float:
        return integrate.quad(integrand, mass, high, points=points, epsabs=1e-13, epsrel=1e-13, limit=1000)[0]

    high = max(m + 9 * s for m, s in normals)
    points = sorted(p for m, s in normals for z in range(-8, 9) if mass < (p := m + z * s) < high)
    best = [best_above_the_mass(j, m, s) for j, (m, s) in enumerate(normals)]
    expected_max = mass + above(lambda x: 1 - others(x))
    best.insert(index, others(mass))
    means = [m for m, _ in normals]
    means.insert(index, mass)
    return np.array(best), expected_max - np.array(means)


def conversion(counts: list[tuple[int, int]]) -> Analysis:
    variants = [VariantData("control" if i == 0 else f"v{i}", n, x) for i, (n, x) in enumerate(counts)]
    return analyse("conversion", variants, Settings())


@pytest.mark.slow
@pytest.mark.parametrize("counts", CASES)
def test_conversion_best_and_loss_match_quadrature_to_1e10(counts):
    rows = conversion(counts)["variants"]
    best, loss = reference_beta(counts)
    assert np.max(np.abs([r["probability_to_be_best"] for r in rows] - best)) < TOLERANCE
    assert np.max(np.abs([r["expected_loss"] for r in rows] - loss)) < TOLERANCE


@pytest.mark.parametrize("counts", CASES)
def test_credible_intervals_are_beta_quantiles(counts):
    for row, (n, x) in zip(conversion(counts)["variants"], counts, strict=True):
        expected = stats.beta(1 + x, 1 + n - x).ppf([0.025, 0.975])
        assert row["credible_interval"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_same_input_same_output_bit_for_bit():
    first = conversion(CASES[5])
    for _ in range(3):
        assert conversion(CASES[5]) == first


def mean_metric(specs: list[tuple[int, float, float]]) -> Analysis:
    """The analysis of variants given as (exposures, mean, sd of the per-user values)."""
    variants = [
        VariantData("control" if i == 0 else f"v{i}", n, sum=mean * n, sum_squares=(sd**2) * (n - 1) + mean**2 * n)
        for i, (n, mean, sd) in enumerate(specs)
    ]
    return analyse("mean", variants, Settings())


def test_mean_metric_uses_the_normal_approximation():
    specs = [(4_000, 12.0, 30.0), (4_100, 12.9, 31.0), (3_900, 12.5, 29.0)]
    rows = mean_metric(specs)["variants"]
    dists = [stats.norm(mean, sd / np.sqrt(n)) for n, mean, sd in specs]
    best, loss = _reference(dists, -np.inf, np.inf)
    assert np.max(np.abs([r["probability_to_be_best"] for r in rows] - best)) < TOLERANCE
    assert np.max(np.abs([r["expected_loss"] for r in rows] - loss)) < TOLERANCE
    for row, dist in zip(rows, dists, strict=True):
        assert row["mean"] == pytest.approx(dist.mean())
        assert row["standard_error"] == pytest.approx(dist.std())
        assert row["credible_interval"] == pytest.approx(dist.ppf([0.025, 0.975]))


def test_probabilities_sum_to_one():
    for counts in CASES:
        rows = conversion(counts)["variants"]
        best = [p for row in rows if (p := row["probability_to_be_best"]) is not None]
        assert len(best) == len(rows) and sum(best) == pytest.approx(1, abs=1e-12)


# Eight variants, one posterior a (near) point mass or of huge counts and the others wide (issue 13).
type Numbers = list[float | None] | np.ndarray


def assert_close(best: Numbers, loss: Numbers, reference: tuple[np.ndarray, np.ndarray]) -> None:
    assert np.max(np.abs(np.array(best, dtype=float) - reference[0])) < TOLERANCE
    assert np.max(np.abs(np.array(loss, dtype=float) - reference[1])) < TOLERANCE


# (the point mass, the others' middle mean, the step between their means, their per-user sd)
POINT_MASSES = [
    (10.375, 10.0, 0.07, 30.0),
    (10.7, 10.0, 0.07, 30.0),
    (1234.5, 1230.0, 2.0, 800.0),
    (0.0, -0.05, 0.01, 5.0),
]


@pytest.mark.parametrize(("mass", "middle", "step", "sd"), POINT_MASSES)
def test_a_variant_without_variance_among_wide_ones(mass, middle, step, sd):
    # Every user of variant 3 has the same value: its posterior is analysis.py's floor, a normal of
    # sd 1e-12 * |mean|, a few thousand float64 steps wide.
    specs = [(4_000 + 100 * i, middle + step * (i - 3), sd * (1 + 0.05 * i)) for i in range(7)]
    specs.insert(3, (5_000, mass, 0.0))
    rows = mean_metric(specs)["variants"]
    normals = [(mean, sd / math.sqrt(n)) for n, mean, sd in specs[:3] + specs[4:]]
    best = [r["probability_to_be_best"] for r in rows]
    assert_close(best, [r["expected_loss"] for r in rows], reference_point_mass(mass, 3, normals))


@pytest.mark.parametrize("relative_sd", [1e-11, 1e-9])
def test_a_narrow_normal_posterior_among_wide_ones(relative_sd):
    # As a CUPED-adjusted mean whose covariate all but predicts it: narrow, yet above the floor.
    means = 10.0 + 0.07 * np.arange(-3.0, 5.0)
    sds = 0.45 + 0.02 * np.arange(8.0)
    means[3], sds[3] = 10.5, 10.5 * relative_sd
    best, loss = bayesian.best_and_loss(NormalPosteriors(means, sds))
    normals = [(float(m), float(s)) for k, (m, s) in enumerate(zip(means, sds, strict=True)) if k != 3]
    assert_close(best, loss, reference_point_mass(10.5, 3, normals))


@pytest.mark.slow
@pytest.mark.parametrize("exposures", [10**9, 10**10])
def test_huge_counts_among_wide_posteriors(exposures):
    counts = [(1_000 + 50 * i, 100 + 8 * i) for i in range(7)]
    counts.insert(2, (exposures, 12 * exposures // 100))
    rows = conversion(counts)["variants"]
    best = [r["probability_to_be_best"] for r in rows]
    assert_close(best, [r["expected_loss"] for r in rows], reference_beta(counts))
