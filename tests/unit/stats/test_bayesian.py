"""Probability to be best and expected loss against independent integration (scipy.integrate.quad)."""

import numpy as np
import pytest
from scipy import integrate, stats

from abacus.documents import Analysis
from abacus.stats import Settings, VariantData, analyse

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
    dists = [stats.beta(1 + x, 1 + n - x) for n, x in counts]
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


def conversion(counts: list[tuple[int, int]]) -> Analysis:
    variants = [VariantData("control" if i == 0 else f"v{i}", n, x) for i, (n, x) in enumerate(counts)]
    return analyse("conversion", variants, Settings())


@pytest.mark.parametrize("counts", CASES)
def test_conversion_best_and_loss_match_quadrature_to_1e6(counts):
    rows = conversion(counts)["variants"]
    best, loss = reference_beta(counts)
    assert np.max(np.abs([r["probability_to_be_best"] for r in rows] - best)) < 1e-6
    assert np.max(np.abs([r["expected_loss"] for r in rows] - loss)) < 1e-6


@pytest.mark.parametrize("counts", CASES)
def test_credible_intervals_are_beta_quantiles(counts):
    for row, (n, x) in zip(conversion(counts)["variants"], counts, strict=True):
        expected = stats.beta(1 + x, 1 + n - x).ppf([0.025, 0.975])
        assert row["credible_interval"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_same_input_same_output_bit_for_bit():
    first = conversion(CASES[5])
    for _ in range(3):
        assert conversion(CASES[5]) == first


def test_mean_metric_uses_the_normal_approximation():
    # (exposures, mean, sd) per variant
    specs = [(4_000, 12.0, 30.0), (4_100, 12.9, 31.0), (3_900, 12.5, 29.0)]
    variants = [
        VariantData("control" if i == 0 else f"v{i}", n, sum=mean * n, sum_squares=(sd**2) * (n - 1) + mean**2 * n)
        for i, (n, mean, sd) in enumerate(specs)
    ]
    rows = analyse("mean", variants, Settings())["variants"]
    dists = [stats.norm(mean, sd / np.sqrt(n)) for n, mean, sd in specs]
    best, loss = _reference(dists, -np.inf, np.inf)
    assert np.max(np.abs([r["probability_to_be_best"] for r in rows] - best)) < 1e-6
    assert np.max(np.abs([r["expected_loss"] for r in rows] - loss)) < 1e-6
    for row, dist in zip(rows, dists, strict=True):
        assert row["mean"] == pytest.approx(dist.mean())
        assert row["standard_error"] == pytest.approx(dist.std())
        assert row["credible_interval"] == pytest.approx(dist.ppf([0.025, 0.975]))


def test_probabilities_sum_to_one():
    for counts in CASES:
        rows = conversion(counts)["variants"]
        best = [p for row in rows if (p := row["probability_to_be_best"]) is not None]
        assert len(best) == len(rows) and sum(best) == pytest.approx(1, abs=1e-12)
