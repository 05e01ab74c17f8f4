"""Fixed-horizon comparison of a treatment with the control.

Absolute lift m_t - m_c with an unpooled standard error; the p-value is a two-sided z-test for
conversion rates (statsmodels' `test_proportions_2indep(method="wald")`) and Welch's t-test for
means (`scipy.stats.ttest_ind_from_stats(equal_var=False)`). Relative lift m_t / m_c - 1 with
Fieller's interval (fieller.py): the same test inverted for every ratio, so that it excludes 0
exactly when the p-value is below alpha, and is cut at -100% for a metric whose mean cannot be
negative. `relative_variance` is the delta method's, v_t / m_c^2 + m_t^2 v_c / m_c^4, a width
for comparisons (the benches'); no interval is made from it.

The statistic is corrected for the skewness of the difference (skewness.py) where the arms'
third moments are known, and the relative interval inverts the corrected test: nothing changes
for arms of equal size, where the skewness cancels; only an unequal split moves them.

An arm with fewer than two exposures has no variance to estimate (a mean's sample variance needs
two users; a rate's p (1 - p) / n is 0 for one user, whose rate is 0 or 1): no p-value and no
interval then, only the lifts themselves.
"""

import math
from dataclasses import dataclass

from scipy.special import ndtr, ndtri, stdtr, stdtrit

from abacus.stats import fieller, skewness

# Fewer exposures than this in an arm: no variance, so nothing to test or bound.
FEWEST_EXPOSURES = 2


@dataclass(frozen=True)
class Estimate:
    """A variant's mean, the variance of that mean, the sample it came from, and the third
    central moment per user of its values (NaN: unknown)."""

    mean: float
    variance: float
    exposures: int
    third: float = math.nan


@dataclass(frozen=True)
class Comparison:
    absolute: float
    variance: float  # of the absolute difference
    relative: float | None
    relative_variance: float | None
    p_value: float | None
    relative_ci: list[float] | None
    skewness: float = 0.0  # of the difference of the means (skewness.py); 0 when not corrected
    # The |statistic| (corrected for skewness) the test rejects beyond at alpha: z, or Welch's t.
    critical: float | None = None
    ratio: fieller.Ratio | None = None  # what the relative intervals are made from


def difference_skewness(treatment: Estimate, control: Estimate) -> float:
    """The skewness of m_t - m_c under the null (skewness.py); 0 when a third moment is unknown."""
    n_t, n_c = treatment.exposures, control.exposures
    return skewness.comparison_skewness(
        n_t, n_c, treatment.variance * n_t, control.variance * n_c, treatment.third, control.third
    )


def z_quantile(alpha: float) -> float:
    return float(ndtri(1 - alpha / 2))


def testable(*estimates: Estimate) -> bool:
    """Whether every arm has the exposures a variance needs."""
    return all(e.exposures >= FEWEST_EXPOSURES for e in estimates)


def compare(treatment: Estimate, control: Estimate, alpha: float, welch: bool, nonnegative: bool = False) -> Comparison:
    """`nonnegative`: the metric's mean cannot be negative (a rate, a count), so neither can
    the ratio of two: the relative interval stops at -100%."""
    absolute = treatment.mean - control.mean
    variance = treatment.variance + control.variance
    relative = None
    if control.mean != 0 and control.exposures > 0 and treatment.exposures > 0:
        ratio = treatment.mean / control.mean
        relative = ratio - 1 if math.isfinite(ratio) else None  # a control mean too near 0 for a double
    if not testable(treatment, control):
        return Comparison(absolute, variance, relative, None, None, None)
    a = difference_skewness(treatment, control)
    if not variance > 0:  # no variation in either arm (0% or 100% in both): nothing to test
        return Comparison(absolute, variance, relative, None, None, None, a)
    p_value, critical = _p_value(treatment, control, welch, a), _critical(treatment, control, welch, alpha)
    relative_variance: float | None = None
    relative_ci: list[float] | None = None
    means: fieller.Ratio | None = None
    if relative is not None:
        relative_variance = _relative_variance(treatment, control)
        if not (0 < relative_variance < math.inf):  # beyond a double (a control mean near 0)
            relative_variance = None
        means = fieller.Ratio.of(treatment.mean, treatment.variance, control.mean, control.variance, nonnegative)
        relative_ci = fieller.interval(means, critical, a)
    return Comparison(absolute, variance, relative, relative_variance, p_value, relative_ci, a, critical, means)


def _welch_df(treatment: Estimate, control: Estimate) -> float:
    """Welch-Satterthwaite's degrees of freedom, from each arm's share of the variance: squaring
    the variances themselves overflows for values beyond 1e77."""
    variance = treatment.variance + control.variance
    share_t, share_c = treatment.variance / variance, control.variance / variance
    return 1 / (share_t * share_t / (treatment.exposures - 1) + share_c * share_c / (control.exposures - 1))


def _p_value(treatment: Estimate, control: Estimate, welch: bool, a: float) -> float:
    variance = treatment.variance + control.variance
    statistic = skewness.corrected_value((treatment.mean - control.mean) / math.sqrt(variance), a)
    if not welch:
        return float(2 * ndtr(-abs(statistic)))
    return float(2 * stdtr(_welch_df(treatment, control), -abs(statistic)))


def _critical(treatment: Estimate, control: Estimate, welch: bool, alpha: float) -> float:
    """The |corrected statistic| beyond which _p_value is below alpha."""
    return float(stdtrit(_welch_df(treatment, control), 1 - alpha / 2)) if welch else z_quantile(alpha)


def _relative_variance(treatment: Estimate, control: Estimate) -> float:
    """v_t / m_c^2 + m_t^2 v_c / m_c^4, as a sum of squared ratios: no power of a mean overflows
    (or underflows to a division by 0) on the way."""
    ratio = treatment.mean / control.mean
    spread_t = math.sqrt(treatment.variance) / abs(control.mean)
    spread_c = ratio * math.sqrt(control.variance) / abs(control.mean)
    return spread_t * spread_t + spread_c * spread_c
