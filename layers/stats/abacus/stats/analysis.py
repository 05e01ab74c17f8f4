"""One metric of one experiment analysed: per variant, Bayesian, frequentist, sequential,
Holm-adjusted, sample ratio mismatch, verdict. The Python API that the results function uses."""

import math
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np

from abacus import planning
from abacus.documents import Analysis, MetricKind, VariantAnalysis
from abacus.stats import bayesian, multiple, sequential, srm, verdict
from abacus.stats.frequentist import Estimate, compare
from abacus.stats.posteriors import BetaPosteriors, NormalPosteriors, credible_interval

CONVERSION: Final = "conversion"
MEAN: Final = "mean"
# A zero-variance mean metric is a point mass; numerically, a normal this narrow (relative to its scale).
_POINT_MASS_SD = 1e-12


@dataclass(frozen=True)
class VariantData:
    """Sufficient statistics of one variant: conversions for a conversion metric; sum and sum of
    squares of the per-user values for a mean metric."""

    key: str
    exposures: int
    conversions: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0


@dataclass(frozen=True)
class Settings:
    control: str = "control"
    alpha: float = 0.05
    sequential: bool = True
    mde: float = 0.05
    tau: float | None = None  # the mSPRT's mixing scale; the mde when None
    power: float = 0.8
    weights: dict[str, float] | None = None  # for the sample ratio check; equal when None
    days_running: float | None = None  # for the days-left estimate


def analyse(kind: MetricKind, variants: list[VariantData], settings: Settings) -> Analysis:
    """The full analysis of one metric. See README.md, "Statistics", for every field."""
    _check(kind, variants, settings)
    keys = [v.key for v in variants]
    control_index = keys.index(settings.control)
    estimates = [_estimate(kind, v) for v in variants]
    posteriors = _posteriors(kind, variants, estimates)
    rows = [_describe(kind, *inputs) for inputs in zip(variants, estimates, posteriors, strict=True)]

    tau = settings.tau if settings.tau is not None else abs(settings.mde)
    for index, row in enumerate(rows):
        if index != control_index:
            _add_comparison(row, kind, estimates[index], estimates[control_index], settings, tau)
    treatments = [row for index, row in enumerate(rows) if index != control_index]
    for row, adjusted in zip(treatments, multiple.holm([row["p_value"] for row in treatments]), strict=True):
        row["p_value_adjusted"] = adjusted
        row["significant"] = adjusted is not None and adjusted < settings.alpha

    weights = [float((settings.weights or {}).get(key, 1.0)) for key in keys]
    mismatch = srm.sample_ratio_mismatch([v.exposures for v in variants], weights)
    days = _days_left(kind, variants, estimates, control_index, settings)
    return {
        "kind": kind,
        "control": settings.control,
        "alpha": settings.alpha,
        "sequential": settings.sequential,
        "method": _method(settings, tau),
        "variants": rows,
        "srm": mismatch,
        "verdict": verdict.decide(rows, settings.control, mismatch, abs(settings.mde), days),
    }


def _check(kind: MetricKind, variants: list[VariantData], settings: Settings) -> None:
    """ValueError naming the first field that makes the problem one that cannot be analysed."""
    if kind not in (CONVERSION, MEAN):
        raise ValueError(f"metric.kind: '{kind}' is not 'conversion' or 'mean'")
    if not 2 <= len(variants) <= 10:
        raise ValueError("variants: between 2 and 10 variants")
    keys = [v.key for v in variants]
    if len(set(keys)) != len(keys):
        raise ValueError("variants: keys must be unique")
    if settings.control not in keys:
        raise ValueError(f"control: no variant keyed '{settings.control}'")
    if not 0 < settings.alpha < 1:
        raise ValueError("alpha: must be between 0 and 1")
    for v in variants:
        _check_variant(kind, v)


def _check_variant(kind: MetricKind, v: VariantData) -> None:
    if v.exposures < 0:
        raise ValueError(f"variants.{v.key}.exposures: must not be negative")
    if kind == CONVERSION and not 0 <= v.conversions <= v.exposures:
        raise ValueError(f"variants.{v.key}.conversions: must be between 0 and exposures")
    if kind == MEAN and v.exposures > 0 and v.sum_squares < v.sum**2 / v.exposures * (1 - 1e-9) - 1e-9:
        raise ValueError(f"variants.{v.key}.sum_squares: smaller than sum^2 / exposures, impossible")


def _estimate(kind: MetricKind, v: VariantData) -> Estimate:
    """The variant's mean and the variance of that mean (0 when undefined)."""
    if v.exposures == 0:
        return Estimate(0.0, 0.0, 0)
    if kind == CONVERSION:
        rate = v.conversions / v.exposures
        return Estimate(rate, rate * (1 - rate) / v.exposures, v.exposures)
    mean = v.sum / v.exposures
    if v.exposures < 2:
        return Estimate(mean, 0.0, v.exposures)
    sample_variance = max(0.0, (v.sum_squares - v.sum * mean) / (v.exposures - 1))
    return Estimate(mean, sample_variance / v.exposures, v.exposures)


class _Posterior(NamedTuple):
    """A variant's Bayesian numbers; None for a mean metric without a posterior to compare."""

    credible_interval: list[float] | None = None
    probability_to_be_best: float | None = None
    expected_loss: float | None = None


def _describe(kind: MetricKind, v: VariantData, estimate: Estimate, posterior: _Posterior) -> VariantAnalysis:
    mean, standard_error = estimate.mean, math.sqrt(estimate.variance)
    interval, best, loss = posterior
    if kind == CONVERSION:
        return {
            "key": v.key,
            "exposures": v.exposures,
            "conversions": v.conversions,
            "mean": mean,
            "standard_error": standard_error,
            "credible_interval": interval,
            "probability_to_be_best": best,
            "expected_loss": loss,
        }
    return {
        "key": v.key,
        "exposures": v.exposures,
        "sum": v.sum,
        "sum_squares": v.sum_squares,
        "mean": mean,
        "standard_error": standard_error,
        "credible_interval": interval,
        "probability_to_be_best": best,
        "expected_loss": loss,
    }


def _posteriors(kind: MetricKind, variants: list[VariantData], estimates: list[Estimate]) -> list[_Posterior]:
    posteriors: BetaPosteriors | NormalPosteriors
    if kind == CONVERSION:
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


def _add_comparison(
    row: VariantAnalysis, kind: MetricKind, treatment: Estimate, control: Estimate, settings: Settings, tau: float
) -> None:
    """The treatment's lift over the control and its p-value: always-valid when sequential, with the
    fixed-horizon numbers beside them."""
    fixed = compare(treatment, control, settings.alpha, welch=kind == MEAN)
    row["lift"] = {"absolute": fixed.absolute, "relative": fixed.relative, "relative_ci": fixed.relative_ci}
    if not settings.sequential:
        row["p_value"] = fixed.p_value
        return
    p_value = relative_ci = None
    if fixed.relative is not None and fixed.relative_variance is not None and fixed.p_value is not None:
        p_value = sequential.always_valid_p_value(fixed.relative, fixed.relative_variance, tau)
        relative_ci = sequential.confidence_sequence(fixed.relative, fixed.relative_variance, tau, settings.alpha)
    row["lift"]["relative_ci"] = relative_ci
    row["p_value"] = p_value
    row["p_value_fixed"] = fixed.p_value
    row["relative_ci_fixed"] = fixed.relative_ci


def _days_left(
    kind: MetricKind, variants: list[VariantData], estimates: list[Estimate], control_index: int, settings: Settings
) -> int | None:
    control = estimates[control_index]
    if settings.days_running is None or control.exposures < 2:
        return None
    try:
        if kind == CONVERSION:
            needed = planning.exposures_for_conversion(
                control.mean, settings.mde, settings.alpha, settings.power, len(variants)
            )
        else:
            sd = math.sqrt(control.variance * control.exposures)
            needed = planning.exposures_for_mean(
                control.mean, sd, settings.mde, settings.alpha, settings.power, len(variants)
            )
    except ValueError:
        return None  # a baseline that cannot be planned from (a 0% rate, no variance)
    if settings.sequential:
        needed = math.ceil(needed * planning.sequential_inflation(settings.alpha, settings.power))
    return planning.days_left(needed, min(v.exposures for v in variants), settings.days_running)


def _method(settings: Settings, tau: float) -> str:
    if settings.sequential:
        return f"mSPRT (normal mixture, tau = {tau:g}) on the relative lift; Holm-adjusted"
    return "fixed-horizon z / Welch test; delta-method relative interval; Holm-adjusted"
