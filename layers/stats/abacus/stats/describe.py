"""Each variant's row of one metric's analysis (analysis.py): its counts and sums as given (a
snapshot's rows are the next looks' input), its raw mean and standard error, the CUPED-adjusted
ones when the adjustment applies, and its Bayesian numbers: the credible interval, the probability
to be best and the expected loss, from Beta posteriors of conversion rates or normal ones of means
(and of any CUPED-adjusted mean). The comparisons with the control are added by analysis.py.
"""

import math
from typing import NamedTuple

import numpy as np

from abacus.core.documents import MetricKind, VariantAnalysis
from abacus.stats import bayesian
from abacus.stats.estimates import CONVERSION, MEAN, VariantData
from abacus.stats.frequentist import Estimate
from abacus.stats.posteriors import BetaPosteriors, NormalPosteriors, credible_interval

# A zero-variance mean metric is a point mass; numerically, a normal this narrow (relative to its scale).
_POINT_MASS_SD = 1e-12


def rows(
    kind: MetricKind, variants: list[VariantData], raw: list[Estimate], used: list[Estimate], adjusted: bool
) -> list[VariantAnalysis]:
    """The variants' rows, in their order: `raw` their estimates, `used` those the tests use
    (CUPED-adjusted when `adjusted`)."""
    posteriors = _posteriors(kind, variants, used, adjusted)
    return [
        _describe(kind, v, raw_estimate, used_estimate, posterior, adjusted)
        for v, raw_estimate, used_estimate, posterior in zip(variants, raw, used, posteriors, strict=True)
    ]


class _Posterior(NamedTuple):
    """A variant's Bayesian numbers; None for a mean metric without a posterior to compare."""

    credible_interval: list[float] | None = None
    probability_to_be_best: float | None = None
    expected_loss: float | None = None


def _describe(
    kind: MetricKind, v: VariantData, raw: Estimate, used: Estimate, posterior: _Posterior, adjusted: bool
) -> VariantAnalysis:
    interval, best, loss = posterior
    row: VariantAnalysis = {
        "key": v.key,
        "exposures": v.exposures,
        "mean": raw.mean,
        "standard_error": math.sqrt(raw.variance),
        "credible_interval": interval,
        "probability_to_be_best": best,
        "expected_loss": loss,
    }
    if kind == CONVERSION:
        row["conversions"] = v.conversions
    else:
        row["sum"], row["sum_squares"] = v.sum, v.sum_squares
    if v.has_covariate:
        assert v.pre_sum is not None and v.pre_sum_squares is not None and v.cross_sum is not None
        row["pre_sum"], row["pre_sum_squares"], row["cross_sum"] = v.pre_sum, v.pre_sum_squares, v.cross_sum
    _describe_cubes(kind, v, row)
    if adjusted:
        row["adjusted_mean"], row["adjusted_standard_error"] = used.mean, math.sqrt(used.variance)
    return row


def _describe_cubes(kind: MetricKind, v: VariantData, row: VariantAnalysis) -> None:
    """The skewness correction's sums the variant came with, as the kind uses them (a
    conversion's cubes are its conversions), so that a snapshot's rows are the next looks' input."""
    if kind == MEAN and v.sum_cubes is not None:
        row["sum_cubes"] = v.sum_cubes
    if not v.has_covariate:
        return
    if v.pre_sum_cubes is not None:
        row["pre_sum_cubes"] = v.pre_sum_cubes
    if kind == MEAN and v.cross_sum_outcome_squared is not None:
        row["cross_sum_outcome_squared"] = v.cross_sum_outcome_squared
    if v.cross_sum_pre_squared is not None:
        row["cross_sum_pre_squared"] = v.cross_sum_pre_squared


def _posteriors(
    kind: MetricKind, variants: list[VariantData], estimates: list[Estimate], adjusted: bool
) -> list[_Posterior]:
    """Beta posteriors of conversion rates; normal ones of means, and of any CUPED-adjusted mean."""
    posteriors: BetaPosteriors | NormalPosteriors
    if kind == CONVERSION and not adjusted:
        a = np.array([1.0 + v.conversions for v in variants])
        b = np.array([1.0 + v.exposures - v.conversions for v in variants])
        posteriors = BetaPosteriors(a, b)
    elif all(v.exposures >= 2 for v in variants):
        means = np.array([e.mean for e in estimates])
        sds = np.array([math.sqrt(e.variance) for e in estimates])
        posteriors = NormalPosteriors(means, np.maximum(sds, _POINT_MASS_SD * np.maximum(1.0, np.abs(means))))
    else:
        # A mean metric with fewer than two exposures in a variant has no posterior to compare.
        return [_Posterior() for _ in variants]
    intervals = credible_interval(posteriors)
    best, loss = bayesian.best_and_loss(posteriors)
    return [
        _Posterior([float(intervals[index, 0]), float(intervals[index, 1])], float(best[index]), float(loss[index]))
        for index in range(len(variants))
    ]
