"""Ratio metrics (revenue per order, clicks per page view) by the delta method: a variant's ratio
R = sum of numerators / sum of denominators over its users, and its variance to first order
(Deng, Knoblich and Lu, "Applying the Delta Method in Metric Analytics", KDD 2018):

    Var(R) = (var_n - 2 R cov_nd + R^2 var_d) / (N mean_d^2)

with the per-user sample variances and covariance. `linearized` turns that into the sufficient
statistics of a mean metric with the same mean (R) and the same variance of the mean, so that
every test, interval and sequential design of a mean metric applies to the ratio unchanged."""

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
    return VariantData(sums.key, n, 0, ratio * n, (n - 1) * ratio_variance(sums) + n * ratio * ratio)
