"""One metric of one experiment analysed: per variant, Bayesian, frequentist, sequential,
Holm-adjusted, sample ratio mismatch, verdict. The Python API that the results function uses."""

import math
from dataclasses import dataclass

import numpy as np

from abacus import planning
from abacus.stats import bayesian, multiple, sequential, srm, verdict
from abacus.stats.frequentist import Estimate, compare
from abacus.stats.posteriors import BetaPosteriors, NormalPosteriors, credible_interval

CONVERSION, MEAN = "conversion", "mean"
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


def analyse(kind: str, variants: list[VariantData], settings: Settings) -> dict:
    """The full analysis of one metric. See README.md, "Statistics", for every field."""
    _check(kind, variants, settings)
    keys = [v.key for v in variants]
    control_index = keys.index(settings.control)
    estimates = [_estimate(kind, v) for v in variants]
    rows = [_describe(kind, v, e) for v, e in zip(variants, estimates, strict=True)]
    _add_bayesian(kind, variants, estimates, rows)

    tau = settings.tau if settings.tau is not None else abs(settings.mde)
    for index, row in enumerate(rows):
        if index != control_index:
            row.update(_compare(kind, estimates[index], estimates[control_index], settings, tau))
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


def _check(kind: str, variants: list[VariantData], settings: Settings) -> None:
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
        if v.exposures < 0:
            raise ValueError(f"variants.{v.key}.exposures: must not be negative")
        if kind == CONVERSION and not 0 <= v.conversions <= v.exposures:
            raise ValueError(f"variants.{v.key}.conversions: must be between 0 and exposures")
        if kind == MEAN and v.exposures > 0 and v.sum_squares < v.sum**2 / v.exposures * (1 - 1e-9) - 1e-9:
            raise ValueError(f"variants.{v.key}.sum_squares: smaller than sum^2 / exposures, impossible")


def _estimate(kind: str, v: VariantData) -> Estimate:
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


def _describe(kind: str, v: VariantData, estimate: Estimate) -> dict:
    row = {"key": v.key, "exposures": v.exposures}
    if kind == CONVERSION:
        row["conversions"] = v.conversions
    else:
        row["sum"], row["sum_squares"] = v.sum, v.sum_squares
    row["mean"] = estimate.mean
    row["standard_error"] = math.sqrt(estimate.variance)
    return row


def _add_bayesian(kind: str, variants: list[VariantData], estimates: list[Estimate], rows: list[dict]) -> None:
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
        for row in rows:
            row.update(credible_interval=None, probability_to_be_best=None, expected_loss=None)
        return
    intervals = credible_interval(posteriors)
    best, loss = bayesian.best_and_loss(posteriors)
    for index, row in enumerate(rows):
        row["credible_interval"] = [float(intervals[index, 0]), float(intervals[index, 1])]
        row["probability_to_be_best"] = float(best[index])
        row["expected_loss"] = float(loss[index])


def _compare(kind: str, treatment: Estimate, control: Estimate, settings: Settings, tau: float) -> dict:
    fixed = compare(treatment, control, settings.alpha, welch=kind == MEAN)
    row = {"lift": {"absolute": fixed.absolute, "relative": fixed.relative, "relative_ci": fixed.relative_ci}}
    if not settings.sequential:
        row["p_value"] = fixed.p_value
        return row
    p_value = relative_ci = None
    if fixed.relative is not None and fixed.p_value is not None:
        p_value = sequential.always_valid_p_value(fixed.relative, fixed.relative_variance, tau)
        relative_ci = sequential.confidence_sequence(fixed.relative, fixed.relative_variance, tau, settings.alpha)
    row["lift"]["relative_ci"] = relative_ci
    row["p_value"] = p_value
    row["p_value_fixed"] = fixed.p_value
    row["relative_ci_fixed"] = fixed.relative_ci
    return row


def _days_left(
    kind: str, variants: list[VariantData], estimates: list[Estimate], control_index: int, settings: Settings
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
