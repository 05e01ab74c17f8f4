"""Fixed-horizon comparison of a treatment with the control.

Absolute lift m_t - m_c with an unpooled standard error; the p-value is a two-sided z-test for
conversion rates (statsmodels' `test_proportions_2indep(method="wald")`) and Welch's t-test for
means (`scipy.stats.ttest_ind_from_stats(equal_var=False)`). Relative lift m_t / m_c - 1 with its
interval by the delta method: Var(m_t / m_c) ~ v_t / m_c^2 + m_t^2 v_c / m_c^4.
"""

import math
from dataclasses import dataclass

from scipy.special import ndtr, ndtri, stdtr


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


def compare(treatment: Estimate, control: Estimate, alpha: float, welch: bool) -> Comparison:
    absolute = treatment.mean - control.mean
    variance = treatment.variance + control.variance
    p_value = None
    if treatment.exposures > 0 and control.exposures > 0 and variance > 0:
        statistic = absolute / math.sqrt(variance)
        if welch:
            df = variance**2 / (
                treatment.variance**2 / max(treatment.exposures - 1, 1)
                + control.variance**2 / max(control.exposures - 1, 1)
            )
            p_value = float(2 * stdtr(df, -abs(statistic)))
        else:
            p_value = float(2 * ndtr(-abs(statistic)))
    relative = relative_variance = relative_ci = None
    if control.mean != 0 and control.exposures > 0 and treatment.exposures > 0:
        relative = treatment.mean / control.mean - 1
        relative_variance = (
            treatment.variance / control.mean**2 + treatment.mean**2 * control.variance / control.mean**4
        )
        # Without variation (0% or 100% in both arms) the Wald interval collapses to a point: undefined.
        if relative_variance > 0:
            half = z_quantile(alpha) * math.sqrt(relative_variance)
            relative_ci = [relative - half, relative + half]
    return Comparison(absolute, variance, relative, relative_variance, p_value, relative_ci)
