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
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Moments:
    """One variant's sufficient statistics of (x, y): user count, sums, sums of squares, sum of x*y."""

    count: int
    y_sum: float
    y_sum_squares: float
    x_sum: float
    x_sum_squares: float
    cross_sum: float

    def centred(self) -> tuple[float, float, float]:
        """(sum of (x - mean x)^2, sum of (x - mean x)(y - mean y), sum of (y - mean y)^2)."""
        n = self.count
        xx = self.x_sum_squares - self.x_sum * self.x_sum / n
        xy = self.cross_sum - self.x_sum * self.y_sum / n
        yy = self.y_sum_squares - self.y_sum * self.y_sum / n
        return max(xx, 0.0), xy, max(yy, 0.0)


@dataclass(frozen=True)
class Adjusted:
    mean: float
    variance: float  # of the mean
    unadjusted_variance: float  # of the unadjusted mean, for the variance reduction


def pooled_theta(variants: list[Moments]) -> float | None:
    """The pooled within-variant slope of y on x; None when x does not vary within any variant."""
    xx = xy = 0.0
    for moments in variants:
        if moments.count >= 2:
            centred = moments.centred()
            xx += centred[0]
            xy += centred[1]
    scale = sum(m.x_sum_squares for m in variants)
    if xx <= 1e-12 * max(scale, 1e-300):
        return None
    return xy / xx


def adjust(variants: list[Moments], theta: float) -> list[Adjusted]:
    """Each variant's adjusted mean and its variance (variants with fewer than 2 users: 0)."""
    total = sum(m.count for m in variants)
    grand_x = sum(m.x_sum for m in variants) / total
    adjusted = []
    for moments in variants:
        n = moments.count
        if n == 0:
            adjusted.append(Adjusted(0.0, 0.0, 0.0))
            continue
        mean = moments.y_sum / n - theta * (moments.x_sum / n - grand_x)
        if n < 2:
            adjusted.append(Adjusted(mean, 0.0, 0.0))
            continue
        xx, xy, yy = moments.centred()
        residual = max(yy - 2 * theta * xy + theta * theta * xx, 0.0)
        adjusted.append(Adjusted(mean, residual / (n - 1) / n, yy / (n - 1) / n))
    return adjusted
