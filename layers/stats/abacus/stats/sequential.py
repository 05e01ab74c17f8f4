"""Always-valid inference: the mixture sequential probability ratio test (mSPRT), for experiments
without a plan (or when asked for). See abacus.mixture for the mixture over scales.

For an estimate theta_hat with variance V, Lambda(theta_hat) is a test martingale under theta = 0,
so by Ville's inequality P(Lambda ever reaches 1/alpha) <= alpha: p = min(1, 1 / Lambda) may be
looked at every day, for as long as the experiment runs, and keeps the false-positive rate at
alpha. Inverting the test gives the confidence sequence theta_hat +/- z sqrt(V), where z is the
distance at which Lambda reaches 1/alpha.

The relative lift's confidence sequence inverts the same test for every ratio rho of the means
(fieller.py): the mSPRT of m_t - rho m_c = 0 over its standard error sqrt(v_t + rho^2 v_c), with the
half-width of rho = 1 (the test reported). A half-width in standard errors is a mixture whose scales
are fixed relative to the estimate's own standard error; at rho != 1 that is the mixture of rho = 1
with its scales times sqrt((v_t + rho^2 v_c) / (v_t + v_c)), a ratio that settles as both arms grow,
as the pooled mean the scales are measured in does: each rho's test is as always-valid as the
difference's, and the sequence holds the true ratio at every look at once with probability at
least 1 - alpha (a simulation checks it: tests/unit/stats/test_relative_lift.py). Where Welch's
critical value is larger than the half-width (a mean metric with few users), the sequence takes it,
as the p-value reported is the larger of the two: the sequence excludes 0 exactly when that p-value
is below alpha. It was the difference's sequence over the control's mean, which took that mean as
known: with few conversions it went below -100%.

A first version tested the relative lift m_t / m_c - 1 over its delta-method standard error,
sqrt(v_t + (m_t / m_c)^2 v_c) / m_c. Its Z is (m_t - m_c) / sqrt(v_t + (m_t / m_c)^2 v_c): the
control's variance weighted by the squared ratio of the estimates rather than by 1, as under the
null, shrunk when the treatment is below the control and inflated when above. At small counts
the estimated ratio strays far from 1, so the test was lopsided: 1/30 conversions against the
control's 5/30 gave Z = -3.8 (p = 0.029) where the difference's Z is -1.8 (fixed-horizon
p = 0.077), the same data with the arms swapped Z = 0.75 (p = 1); in A/A simulations 7-12% of
small experiments were declared different, every one of them a treatment "worse" than its control
(bench/msprt_small_samples.py). On the difference, Z is the fixed-horizon test's own, and one
look's always-valid p-value is above the z-test's 2 Phi(-|Z|): each scale's likelihood ratio is at
most e^((Z^2 - 1) / 2) / |Z| (for |Z| > 1; 1 below), and Mills' ratio puts that under
1 / (2 Phi(-|Z|)). A mean metric's fixed-horizon test is Welch's t, whose tails are heavier with
few users: the analysis reports the larger of the two p-values, so the always-valid one is never
below the fixed-horizon one (it stays valid: it is never smaller than the mSPRT's).
"""

import math

from abacus.core import mixture
from abacus.stats import fieller, skewness
from abacus.stats.frequentist import Comparison, Estimate


def always_valid_p_value(z: float, variance: float, mde: float) -> float | None:
    """p = min(1, 1 / Lambda) for a statistic `z` standard errors from 0, whose estimate has the
    variance `variance` in the mixture's (relative) units. None when the variance is 0 or not
    finite: no test is defined without variation."""
    if not 0 < variance < math.inf:
        return None
    log_lambda = mixture.log_likelihood_ratio(z * z, variance, mixture.scales(mde))
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def half_width(variance: float, mde: float, alpha: float) -> float:
    """The confidence sequence's half-width, in standard errors: the |z| at which p = alpha
    (infinite when the variance is so large that no effect can be ruled out)."""
    if not 0 < variance < math.inf:
        return math.inf
    return mixture.half_width_in_standard_errors(variance, alpha, mixture.scales(mde))


def pooled_mean(treatment: Estimate, control: Estimate) -> float:
    """The two arms' mean together: their common mean under the null, the mixture's unit."""
    users = treatment.exposures + control.exposures
    return (treatment.mean * treatment.exposures + control.mean * control.exposures) / users if users else 0.0


def _statistic(fixed: Comparison, pooled_mean: float) -> tuple[float, float] | None:
    """(Z corrected for skewness, the variance relative to the pooled mean); None without a test."""
    scaled = fixed.variance / (pooled_mean * pooled_mean) if pooled_mean != 0 else math.inf
    if fixed.p_value is None or not fixed.variance > 0 or not math.isfinite(scaled):
        return None
    return skewness.corrected_value(fixed.absolute / math.sqrt(fixed.variance), fixed.skewness), scaled


def p_value(fixed: Comparison, pooled_mean: float, mde: float) -> float | None:
    """A comparison's always-valid p-value: the mSPRT on the difference of the means (corrected
    for skewness as the fixed-horizon test is), the mixture's scales relative to the arms' pooled
    mean, never below the fixed-horizon p-value."""
    statistic = _statistic(fixed, pooled_mean)
    always_valid = None if statistic is None else always_valid_p_value(*statistic, mde)
    return None if always_valid is None or fixed.p_value is None else max(always_valid, fixed.p_value)


def critical_value(fixed: Comparison, pooled_mean: float, mde: float, alpha: float) -> float:
    """The |corrected Z| beyond which the reported p-value is below alpha: the mSPRT's half-width,
    or the fixed-horizon test's critical value where larger (Welch's t with few users), as the
    reported p-value is the larger of the two. Infinite where there is no test."""
    statistic = _statistic(fixed, pooled_mean)
    if statistic is None or fixed.critical is None:
        return math.inf
    return max(half_width(statistic[1], mde, alpha), fixed.critical)


def relative_confidence_sequence(fixed: Comparison, pooled_mean: float, mde: float, alpha: float) -> list[float] | None:
    """The relative lift's confidence sequence: the test above inverted for every ratio of the
    means (fieller.py), so that it excludes 0 exactly when the p-value is below alpha. None where
    not defined or not finite (a control too near 0 for the sequence to bound the ratio)."""
    return fieller.interval(fixed.ratio, critical_value(fixed, pooled_mean, mde, alpha), fixed.skewness)
