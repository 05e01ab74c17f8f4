"""CUPED (Deng, Xu, Kohavi and Walker 2013): regression adjustment on a pre-exposure covariate.

Each user's outcome y comes with the same metric measured over a window before their first
exposure, x (0 for a user with no earlier events). Exposure cannot change x, so any variant's
mean of x differs from the others' by chance only, and

  adjusted mean of variant v = mean(y_v) - theta (mean(x_v) - mean(x over every variant))

estimates the same lift with less variance: per user, Var(y - theta x) = Var(y) (1 - rho^2) at
the best theta, rho being the correlation of x with y.

One theta, pooled across variants: theta = (sum over variants of the within-variant
cross-products of x and y around their variant's means) / (the same for x with itself). This is
the covariate's coefficient in the ordinary least squares fit of y on the variants' indicators
and x (ANCOVA), so the adjusted difference of two variants is exactly that fit's treatment
effect. Pooled because a theta per variant would adjust each variant by a different amount,
letting the treatment's own effect on how y follows x leak into the lift; within variants
because a treatment effect on y would otherwise bias theta. The variance of each adjusted mean
is its own variant's (y - theta x) variance over its users, as Welch's test keeps each variant's
variance; theta's own noise is of a smaller order and ignored, as in the reference.

Every function works on arrays whose last axis is the variants, so one call adjusts every look
of an experiment at once (estimates.py).
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

type Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Moments:
    """Each variant's sufficient statistics of (x, y), arrays of one shape (..., variants): user
    count, sums, sums of squares, sum of x*y."""

    count: Floats
    y_sum: Floats
    y_sum_squares: Floats
    x_sum: Floats
    x_sum_squares: Floats
    cross_sum: Floats

    def centred(self) -> tuple[Floats, Floats, Floats]:
        """(sum of (x - mean x)^2, sum of (x - mean x)(y - mean y), sum of (y - mean y)^2); 0 without users."""
        n = np.maximum(self.count, 1.0)
        xx = self.x_sum_squares - self.x_sum * self.x_sum / n
        xy = self.cross_sum - self.x_sum * self.y_sum / n
        yy = self.y_sum_squares - self.y_sum * self.y_sum / n
        return np.maximum(xx, 0.0), xy, np.maximum(yy, 0.0)


@dataclass(frozen=True)
class Adjusted:
    """Arrays (..., variants)."""

    mean: Floats
    variance: Floats  # of the mean
    unadjusted_variance: Floats  # of the unadjusted mean, for the variance reduction


def pooled_theta(moments: Moments) -> Floats:
    """The pooled within-variant slope of y on x, over the last axis; NaN where x does not vary
    within any variant (variants with fewer than 2 users do not count)."""
    xx, xy, _ = moments.centred()
    counted = moments.count >= 2
    xx_total, xy_total = np.where(counted, xx, 0.0).sum(-1), np.where(counted, xy, 0.0).sum(-1)
    varies = xx_total > 1e-12 * np.maximum(moments.x_sum_squares.sum(-1), 1e-300)
    theta: Floats = np.where(varies, xy_total / np.where(varies, xx_total, 1.0), np.nan)
    return theta


def adjust(moments: Moments, theta: Floats) -> Adjusted:
    """Each variant's adjusted mean and its variance, with theta one per row (...,); a variant
    without users has 0s, one with a single user a variance of 0."""
    n, t = moments.count, np.asarray(theta)[..., None]
    grand_x = moments.x_sum.sum(-1, keepdims=True) / np.maximum(n.sum(-1, keepdims=True), 1.0)
    some, several = n > 0, n >= 2
    per_user = np.where(some, 1 / np.maximum(n, 1.0), 0.0)
    mean = np.where(some, moments.y_sum * per_user - t * (moments.x_sum * per_user - grand_x), 0.0)
    xx, xy, yy = moments.centred()
    residual = np.maximum(yy - 2 * t * xy + t * t * xx, 0.0)
    pairs = np.where(several, 1 / (np.maximum(n - 1, 1.0) * np.maximum(n, 1.0)), 0.0)
    return Adjusted(mean, residual * pairs, yy * pairs)
