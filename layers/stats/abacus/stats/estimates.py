"""Every variant's estimate at every look at once, as arrays (looks, variants): its mean and the
variance of that mean, raw and as the tests use them (CUPED-adjusted at the looks where it
applies). One vectorised computation serves tonight's look and the group-sequential test's
earlier ones alike.

Raw estimates: a conversion rate p with variance p (1 - p) / n; a mean with the sample
variance over n (0 with fewer than two users); 0 and 0 for a variant without users. CUPED
(cuped.py) applies at a look when it is asked for, every variant there has users and carries the
covariate, and the covariate varies within the variants.

Beside them, each variant's third central moment per user of what is tested (y, or CUPED's
y - theta x), for the skewness correction (skewness.py): a conversion's follows from its rate
(y^3 = y); a mean's needs the sum of cubes, and CUPED's also the covariate's cubes and the two
mixed sums. NaN where a sum it needs is missing (a snapshot stored before they were kept).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from abacus.core.documents import MetricKind
from abacus.stats import cuped, skewness

type Floats = npt.NDArray[np.float64]
CONVERSION: Final = "conversion"
MEAN: Final = "mean"


@dataclass(frozen=True)
class VariantData:
    """Sufficient statistics of one variant: conversions for a conversion metric; sum and sum of
    squares of the per-user values for a mean metric. With a pre-exposure covariate (CUPED): the
    sum and sum of squares of each user's pre-exposure value, and the sum of pre-exposure value
    times outcome. For the skewness correction (optional): a mean metric's sum of cubes, and with
    the covariate the sums of its cubes, of pre-value times outcome squared, and of pre-value
    squared times outcome."""

    key: str
    exposures: int
    conversions: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0
    pre_sum: float | None = None
    pre_sum_squares: float | None = None
    cross_sum: float | None = None
    sum_cubes: float | None = None
    pre_sum_cubes: float | None = None
    cross_sum_outcome_squared: float | None = None  # pre-value times outcome^2
    cross_sum_pre_squared: float | None = None  # pre-value^2 times outcome

    @property
    def has_covariate(self) -> bool:
        return self.pre_sum is not None and self.pre_sum_squares is not None and self.cross_sum is not None


@dataclass(frozen=True)
class Estimates:
    """Arrays (looks, variants), the variants in the order of `keys`; theta per look, NaN where
    the estimates are not adjusted."""

    kind: MetricKind
    keys: list[str]
    exposures: Floats
    raw_mean: Floats
    raw_variance: Floats
    mean: Floats
    variance: Floats
    theta: Floats
    unadjusted_variance: Floats  # where adjusted, the variance of the same mean without CUPED (else raw's)
    third: Floats  # per user, the third central moment of what is tested (NaN: unknown)

    @property
    def adjusted(self) -> npt.NDArray[np.bool_]:
        return np.isfinite(self.theta)

    def variance_reduction(self) -> Floats:
        """Per look, how much CUPED narrowed the variants' variances together (0 where not adjusted)."""
        before, after = self.unadjusted_variance.sum(-1), self.variance.sum(-1)
        return np.where(before > 0, 1 - after / np.where(before > 0, before, 1.0), 0.0)


def estimate(kind: MetricKind, looks: Sequence[Sequence[VariantData]], keys: list[str], adjust: bool) -> Estimates:
    """The estimates of each look (each a list of the same variants, in any order)."""
    ordered = [{v.key: v for v in look} for look in looks]
    rows = [[look[key] for key in keys] for look in ordered]
    n = np.array([[v.exposures for v in row] for row in rows], dtype=np.float64)
    if kind == CONVERSION:
        y_sum = y_squares = y_cubes = np.array([[v.conversions for v in row] for row in rows], dtype=np.float64)
    else:
        y_sum = np.array([[v.sum for v in row] for row in rows], dtype=np.float64)
        y_squares = np.array([[v.sum_squares for v in row] for row in rows], dtype=np.float64)
        y_cubes = _optional(rows, lambda v: v.sum_cubes)
    raw_mean, raw_variance = _raw(kind, n, y_sum, y_squares)
    third = skewness.third_moment(n, y_sum, y_squares, y_cubes)
    theta = np.full(len(rows), np.nan)
    mean, variance, unadjusted = raw_mean, raw_variance, raw_variance
    covariate = np.array([all(v.has_covariate for v in row) for row in rows], dtype=bool)
    applies = covariate & (n > 0).all(-1) if adjust else np.zeros(len(rows), dtype=bool)
    if applies.any():
        moments = cuped.Moments(n, y_sum, y_squares, *_covariate(rows))
        theta = np.where(applies, cuped.pooled_theta(moments), np.nan)
        adjusted = cuped.adjust(moments, np.where(np.isfinite(theta), theta, 0.0))
        used = np.isfinite(theta)[:, None]
        mean = np.where(used, adjusted.mean, raw_mean)
        variance = np.where(used, adjusted.variance, raw_variance)
        unadjusted = np.where(used, adjusted.unadjusted_variance, raw_variance)
        residual = _residual_third(kind, rows, moments, y_cubes, np.where(np.isfinite(theta), theta, 0.0))
        third = np.where(used, residual, third)
    return Estimates(kind, keys, n, raw_mean, raw_variance, mean, variance, theta, unadjusted, third)


def _raw(kind: MetricKind, n: Floats, y_sum: Floats, y_squares: Floats) -> tuple[Floats, Floats]:
    some = n > 0
    per_user = np.where(some, 1 / np.where(some, n, 1.0), 0.0)
    mean = y_sum * per_user
    if kind == CONVERSION:
        return mean, mean * (1 - mean) * per_user
    several = n >= 2
    sample_variance = np.maximum(0.0, (y_squares - y_sum * mean) / np.where(several, n - 1, 1.0))
    return mean, np.where(several, sample_variance * per_user, 0.0)


def _optional(rows: list[list[VariantData]], field: Callable[[VariantData], float | None]) -> Floats:
    """An optional sum of every variant at every look, NaN where it is missing."""
    return np.array([[math.nan if (x := field(v)) is None else x for v in row] for row in rows], dtype=np.float64)


def _residual_third(
    kind: MetricKind, rows: list[list[VariantData]], moments: cuped.Moments, y_cubes: Floats, theta: Floats
) -> Floats:
    """The third central moment per user of y - theta x, from the sums of its powers expanded:
    sum (y - theta x)^3 = sum y^3 - 3 theta sum y^2 x + 3 theta^2 sum y x^2 - theta^3 sum x^3."""
    t = theta[:, None]
    x_cubes = _optional(rows, lambda v: v.pre_sum_cubes)
    y_squared_x = moments.cross_sum if kind == CONVERSION else _optional(rows, lambda v: v.cross_sum_outcome_squared)
    y_x_squared = _optional(rows, lambda v: v.cross_sum_pre_squared)
    terms = (y_cubes, -3 * t * y_squared_x, 3 * t * t * y_x_squared, -(t**3) * x_cubes)
    total = moments.y_sum - t * moments.x_sum
    squares = moments.y_sum_squares - 2 * t * moments.cross_sum + t * t * moments.x_sum_squares
    return skewness.third_moment(moments.count, total, squares, sum(terms), sum(np.abs(term) for term in terms))


def _covariate(rows: list[list[VariantData]]) -> tuple[Floats, Floats, Floats]:
    """The covariate's sums, 0 for a variant without one (such a look is not adjusted)."""
    sums = [[(v.pre_sum or 0.0, v.pre_sum_squares or 0.0, v.cross_sum or 0.0) for v in row] for row in rows]
    array = np.array(sums, dtype=np.float64).reshape(len(rows), -1, 3)
    return array[..., 0], array[..., 1], array[..., 2]
