"""Ratio metrics (revenue per order, clicks per page view) by the delta method: a variant's ratio
R = sum of numerators / sum of denominators over its users, and its variance to first order
(Deng, Knoblich and Lu, "Applying the Delta Method in Metric Analytics", KDD 2018):

    Var(R) = (var_n - 2 R cov_nd + R^2 var_d) / (N mean_d^2)

with the per-user sample variances and covariance. `linearized` turns that into the sufficient
statistics of a mean metric with the same mean (R) and the same variance of the mean, so that
every test, interval and sequential design of a mean metric applies to the ratio unchanged.

The skewness correction (skewness.py) needs the third moment of the same linearized values,
e = (numerator - R denominator) / mean_d per user: sum e^3 = (S_nnn - 3 R S_nnd + 3 R^2 S_ndd -
R^3 S_ddd) / mean_d^3, from the cubes of the numerators and denominators and the two mixed sums
(numerator^2 denominator, numerator denominator^2); linearized's sum of cubes carries it."""

import math
from typing import NamedTuple

from abacus.stats.estimates import VariantData


class RatioSums(NamedTuple):
    """One variant's sums over its users: of the numerators, their squares, the denominators,
    their squares, and numerator times denominator."""

    key: str
    exposures: int
    numerator: float
    numerator_squares: float
    denominator: float
    denominator_squares: float
    cross: float
    # For the skewness correction; None where they were not kept.
    numerator_cubes: float | None = None
    denominator_cubes: float | None = None
    numerator_squares_cross: float | None = None  # numerator^2 times denominator
    denominator_squares_cross: float | None = None  # numerator times denominator^2


def defined(sums: RatioSums) -> bool:
    """A ratio needs a denominator: at least one user of the variant with one."""
    return sums.denominator != 0


def ratio_variance(sums: RatioSums) -> float:
    """The per-user variance whose mean's variance (divided by N) is the delta method's Var(R)."""
    n = sums.exposures
    mean_n, mean_d = sums.numerator / n, sums.denominator / n
    ratio = sums.numerator / sums.denominator
    var_n = (sums.numerator_squares - n * mean_n * mean_n) / (n - 1)
    var_d = (sums.denominator_squares - n * mean_d * mean_d) / (n - 1)
    cov = (sums.cross - n * mean_n * mean_d) / (n - 1)
    return max(0.0, (var_n - 2 * ratio * cov + ratio * ratio * var_d) / (mean_d * mean_d))


def linearized(sums: RatioSums) -> VariantData:
    """A mean metric's sufficient statistics with mean R and per-user sample variance
    ratio_variance: its analysis is the delta method's. A variant without a denominator has no
    ratio: it counts no exposure (the analysis makes no comparison with it)."""
    if not defined(sums):
        return VariantData(sums.key, 0)
    n = sums.exposures
    ratio = sums.numerator / sums.denominator
    if n < 2:
        return VariantData(sums.key, n, 0, ratio * n, ratio * ratio * n)
    variance = ratio_variance(sums)
    squares = (n - 1) * variance + n * ratio * ratio
    # sum of L^3 for L = R + e: n R^3 + 3 R sum e^2 + sum e^3 (sum e = 0), with the sum of
    # squares above; its third central moment is then sum e^3 / n (skewness.third_moment).
    residual_cubes = _residual_cubes(sums)
    cubes = None if residual_cubes is None else n * ratio**3 + 3 * ratio * (n - 1) * variance + residual_cubes
    return VariantData(sums.key, n, 0, ratio * n, squares, sum_cubes=cubes)


def _residual_cubes(sums: RatioSums) -> float | None:
    """sum e^3 over the users (above); None without the sums it needs, or when rounding in its
    four terms passes 1% of the size the skewness is measured against (n sd^3)."""
    parts = (sums.numerator_cubes, sums.numerator_squares_cross, sums.denominator_squares_cross, sums.denominator_cubes)
    if any(part is None for part in parts) or sums.exposures < 3:
        return None
    s_nnn, s_nnd, s_ndd, s_ddd = (float(part or 0.0) for part in parts)
    r, mean_d = sums.numerator / sums.denominator, sums.denominator / sums.exposures
    terms = (s_nnn, -3 * r * s_nnd, 3 * r * r * s_ndd, -(r**3) * s_ddd)
    error = 1e-12 * sum(abs(term) for term in terms) / abs(mean_d) ** 3
    spread = sums.exposures * ratio_variance(sums) ** 1.5
    if not math.isfinite(error) or error > 0.01 * spread:
        return None
    return sum(terms) / mean_d**3
