"""Fixed-horizon comparison of a treatment with the control.

Absolute lift m_t - m_c with an unpooled standard error; the p-value is a two-sided z-test for
conversion rates (statsmodels' `test_proportions_2indep(method="wald")`) and Welch's t-test for
means (`scipy.stats.ttest_ind_from_stats(equal_var=False)`). Relative lift m_t / m_c - 1 with its
interval by the delta method: Var(m_t / m_c) ~ v_t / m_c^2 + m_t^2 v_c / m_c^4.

An arm with fewer than two exposures has no variance to estimate (a mean's sample variance needs
two users; a rate's p (1 - p) / n is 0 for one user, whose rate is 0 or 1): no p-value and no
interval then, only the lifts themselves.
"""

import math
from dataclasses import dataclass

from scipy.special import ndtr, ndtri, stdtr

# Fewer exposures than this in an arm: no variance, so nothing to test or bound.
FEWEST_EXPOSURES = 2


@dataclass(frozen=True)
class Estimate:
    """A variant's mean, the variance of that mean, and the sample it came from."""

    mean: float
    variance: float
    exposures: int


@dataclass(frozen=True)
class Comparison:
    absolute: float
    variance: float  # of the absolute difference
    relative: float | None
    relative_variance: float | None
    p_value: float | None
    relative_ci: list[float] | None


def z_quantile(alpha: float) -> float:
    return float(ndtri(1 - alpha / 2))


def testable(*estimates: Estimate) -> bool:
    """Whether every arm has the exposures a variance needs."""
    return all(e.exposures >= FEWEST_EXPOSURES for e in estimates)


def compare(treatment: Estimate, control: Estimate, alpha: float, welch: bool) -> Comparison:
    absolute = treatment.mean - control.mean
    variance = treatment.variance + control.variance
    relative = None
    if control.mean != 0 and control.exposures > 0 and treatment.exposures > 0:
        ratio = treatment.mean / control.mean
        relative = ratio - 1 if math.isfinite(ratio) else None  # a control mean too near 0 for a double
    if not testable(treatment, control):
        return Comparison(absolute, variance, relative, None, None, None)
    p_value = _p_value(treatment, control, welch) if variance > 0 else None
    relative_variance = relative_ci = None
    if relative is not None:
        relative_variance = _relative_variance(treatment, control)
        # Without variation (0% or 100% in both arms) the Wald interval collapses to a point:
        # undefined; beyond a double (a control mean near 0) it cannot be given either.
        if not (0 < relative_variance < math.inf):
            relative_variance = None
        else:
            half = z_quantile(alpha) * math.sqrt(relative_variance)
            relative_ci = [relative - half, relative + half]
    return Comparison(absolute, variance, relative, relative_variance, p_value, relative_ci)


def _p_value(treatment: Estimate, control: Estimate, welch: bool) -> float:
    variance = treatment.variance + control.variance
    statistic = (treatment.mean - control.mean) / math.sqrt(variance)
    if not welch:
        return float(2 * ndtr(-abs(statistic)))
    # Welch-Satterthwaite's degrees of freedom, from each arm's share of the variance: squaring
    # the variances themselves overflows for values beyond 1e77.
    share_t, share_c = treatment.variance / variance, control.variance / variance
    df = 1 / (share_t * share_t / (treatment.exposures - 1) + share_c * share_c / (control.exposures - 1))
    return float(2 * stdtr(df, -abs(statistic)))


def _relative_variance(treatment: Estimate, control: Estimate) -> float:
    """v_t / m_c^2 + m_t^2 v_c / m_c^4, as a sum of squared ratios: no power of a mean overflows
    (or underflows to a division by 0) on the way."""
    ratio = treatment.mean / control.mean
    spread_t = math.sqrt(treatment.variance) / abs(control.mean)
    spread_c = ratio * math.sqrt(control.variance) / abs(control.mean)
    return spread_t * spread_t + spread_c * spread_c
