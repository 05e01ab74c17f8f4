"""One metric of one experiment analysed: per variant, Bayesian, frequentist, sequential,
Holm-adjusted, sample ratio mismatch, verdict. The Python API that the results function uses.

Estimates are CUPED-adjusted when the variants carry a pre-exposure covariate (cuped.py). The
test is, by design: a group-sequential test spending alpha over the planned information
(looks.py, spending.py) when there is a plan; the always-valid mSPRT (sequential.py) otherwise
or when asked; a fixed-horizon test when not sequential.

The problem is checked first (checks.py); each variant's row, with its Bayesian numbers, comes
from describe.py, and this module adds the comparisons with the control, the tests and the rest.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, cast

import numpy as np

from abacus.core import numbers, planning
from abacus.core.documents import Analysis, CupedSummary, MetricKind, VariantAnalysis
from abacus.stats import (
    checks,
    describe,
    explain,
    fieller,
    looks,
    multiple,
    scaling,
    sequential,
    skewness,
    spending,
    srm,
    verdict,
)
from abacus.stats.estimates import CONVERSION, MEAN, Estimates, VariantData, estimate
from abacus.stats.frequentist import FEWEST_EXPOSURES, Comparison, Estimate, compare
from abacus.stats.spending import DESIGN_FAMILY as DESIGN

__all__ = ["CONVERSION", "MEAN", "Settings", "VariantData", "analyse", "measure"]
NOT_FINITE = "Some numbers are null: they are beyond what a double can hold."


SPENDING: Final = "spending"
MSPRT: Final = "msprt"
FIXED: Final = "fixed"
type Design = Literal["spending", "msprt"]
type DesignName = Literal["fixed", "spending", "msprt"]


@dataclass(frozen=True)
class Settings:
    control: str = "control"
    alpha: float = 0.05
    sequential: bool = True
    mde: float = 0.05
    tau: float | None = None  # the mSPRT mixture's smallest scale; the mde when None
    power: float = 0.8
    weights: dict[str, float] | None = None  # for the sample ratio check; equal when None
    days_running: float | None = None  # for the days-left estimate
    cuped: bool = True  # adjust on the pre-exposure covariate where the variants carry one
    design: Design | None = None  # sequential designs: spending when planned_exposures is given
    planned_exposures: int | None = None  # per variant, from the plan (its inflation included)
    previous_looks: Sequence[Sequence[VariantData]] = ()  # the earlier looks, oldest first
    # The users the sample ratio check counts per variant, when a variant's exposures are not
    # its users (a ratio metric's variant with no denominator yet counts none; ratio.py).
    srm_exposures: Sequence[int] | None = None
    gamma: float = spending.DESIGN_GAMMA  # the shape of the design's Hwang-Shih-DeCani part
    # A mean metric whose mean cannot be negative (a count; a ratio of counts): its relative
    # intervals stop at -100%. A conversion rate's always do; a mean's that may be negative (a sum
    # of a property that can be, say refunds) are not cut (fieller.py).
    nonnegative: bool = False

    @property
    def resolved_design(self) -> DesignName:
        if not self.sequential:
            return FIXED
        return self.design or (SPENDING if self.planned_exposures is not None else MSPRT)

    def mean_nonnegative(self, kind: MetricKind) -> bool:
        """Whether the metric's mean cannot be negative: a rate's never can."""
        return kind == CONVERSION or self.nonnegative


def analyse(kind: MetricKind, variants: list[VariantData], settings: Settings) -> Analysis:
    """The full analysis of one metric. See docs/statistics.md for every field."""
    previous = checks.check(
        kind,
        variants,
        control=settings.control,
        alpha=settings.alpha,
        spending=settings.resolved_design == SPENDING,
        planned_exposures=settings.planned_exposures,
        previous_looks=settings.previous_looks,
        nonnegative=settings.mean_nonnegative(kind),
    )
    keys = [v.key for v in variants]
    control_index = keys.index(settings.control)
    design = settings.resolved_design
    taken = [*previous, variants] if design == SPENDING else [variants]
    by = scaling.unit(taken) if kind == MEAN else 1.0
    every = estimate(kind, [[scaling.scaled(v, by) for v in look] for look in taken], keys, settings.cuped)
    look = _look(every, settings)
    rows = describe.rows(kind, variants, look.raw, look.estimates, look.cuped is not None)
    treatments = [row for index, row in enumerate(rows) if index != control_index]
    for row in treatments:
        _add_comparison(row, look, settings, design)
    concluded = False
    if design == SPENDING:
        concluded = _add_spending_tests(treatments, every, settings, look)
    scaling.restore(rows, by)
    for row, adjusted in zip(treatments, multiple.holm([row["p_value"] for row in treatments]), strict=True):
        row["p_value_adjusted"] = adjusted
        row["significant"] = adjusted is not None and adjusted < settings.alpha
        if "direction" not in row:  # the spending design sets its deciding look's
            row["direction"] = _side(row["lift"]["absolute"] if "lift" in row else None)

    weights = [float((settings.weights or {}).get(key, 1.0)) for key in keys]
    counted = settings.srm_exposures if settings.srm_exposures is not None else [v.exposures for v in variants]
    mismatch = srm.sample_ratio_mismatch(list(counted), weights)
    days = _days_left(kind, variants, look.raw, control_index, settings, design)
    return _finite(
        {
            "kind": kind,
            "control": settings.control,
            "alpha": settings.alpha,
            "sequential": settings.sequential,
            "design": design,
            "method": _method(settings, design),
            "planned_exposures": settings.planned_exposures if design == SPENDING else None,
            "cuped": look.cuped,
            "explanation": explain.sentences(
                design, settings.alpha, rows, look.cuped, settings.planned_exposures, _skewed(look, settings.control)
            ),
            "variants": rows,
            "srm": mismatch,
            "verdict": verdict.decide(rows, settings.control, mismatch, abs(settings.mde), days, concluded),
        }
    )


def _finite(analysis: Analysis) -> Analysis:
    """The analysis as JSON can hold it. Every statistic is computed so that finite input gives
    finite numbers or None; should one still come out NaN or infinite, it is null, and said so."""
    if numbers.finite_everywhere(analysis):
        return analysis
    nulled = cast(Analysis, numbers.nulled(analysis))
    nulled["explanation"].append(NOT_FINITE)
    return nulled


class Look(NamedTuple):
    """One look at the data: each variant's raw estimate, the estimate the tests use (CUPED-adjusted
    when it applies), the adjustment's summary, and each treatment's comparison with the control."""

    raw: list[Estimate]
    estimates: list[Estimate]
    cuped: CupedSummary | None
    comparisons: dict[str, Comparison]
    exposures: dict[str, int]


def measure(kind: MetricKind, variants: list[VariantData], settings: Settings) -> Look:
    """One look on its own: its estimates (CUPED-adjusted when it applies) and comparisons."""
    return _look(estimate(kind, [variants], [v.key for v in variants], settings.cuped), settings)


def _as_estimates(means: np.ndarray, variances: np.ndarray, exposures: list[int], thirds: np.ndarray) -> list[Estimate]:
    return [
        Estimate(float(m), float(v), n, float(third))
        for m, v, n, third in zip(means, variances, exposures, thirds, strict=True)
    ]


def _look(every: Estimates, settings: Settings, index: int = -1) -> Look:
    """The look `index` of those estimated together."""
    welch = every.kind == MEAN and not every.adjusted[index]
    exposures = [int(n) for n in every.exposures[index]]
    # The third moments are of what is tested: the raw values' unless CUPED adjusted them.
    raw_thirds = every.third[index] if not every.adjusted[index] else np.full(len(exposures), np.nan)
    raw = _as_estimates(every.raw_mean[index], every.raw_variance[index], exposures, raw_thirds)
    used, summary = raw, None
    if every.adjusted[index]:
        used = _as_estimates(every.mean[index], every.variance[index], exposures, every.third[index])
        reduction = float(every.variance_reduction()[index])
        summary = CupedSummary(theta=float(every.theta[index]), variance_reduction=reduction)
    control = used[every.keys.index(settings.control)]
    nonnegative = settings.mean_nonnegative(every.kind)
    comparisons = {
        key: compare(e, control, settings.alpha, welch, nonnegative)
        for key, e in zip(every.keys, used, strict=True)
        if key != settings.control
    }
    return Look(raw, used, summary, comparisons, dict(zip(every.keys, exposures, strict=True)))


def _add_comparison(row: VariantAnalysis, look: Look, settings: Settings, design: str) -> None:
    """The treatment's lift over the control and its p-value by the design (the spending design's
    are added for every treatment at once, below), with the fixed-horizon numbers beside them when
    sequential."""
    key = row["key"]
    fixed = look.comparisons[key]
    row["lift"] = {"absolute": fixed.absolute, "relative": fixed.relative, "relative_ci": fixed.relative_ci}
    if look.cuped is not None and fixed.relative is not None:
        row["variance_reduction"] = _variance_reduction(look, key, settings.control)
    if design == FIXED:
        row["p_value"] = fixed.p_value
        return
    row["p_value_fixed"] = fixed.p_value
    row["relative_ci_fixed"] = fixed.relative_ci
    if design == MSPRT:
        _add_msprt(row, look, settings)


def _add_spending_tests(treatments: list[VariantAnalysis], every: Estimates, settings: Settings, look: Look) -> bool:
    """Every treatment's group-sequential test over the looks taken (tonight's last), computed
    together. The relative interval inverts tonight's test, at the boundary of the last look
    tested, for every ratio of the means (fieller.py): it excludes 0 exactly when tonight's
    statistic is beyond that boundary. Returns whether the design is over: every treatment's final
    look taken."""
    assert settings.planned_exposures is not None
    control = every.keys.index(settings.control)
    columns = [every.keys.index(row["key"]) for row in treatments]
    difference = (every.mean[:, columns] - every.mean[:, [control]]).T
    variance = (every.variance[:, columns] + every.variance[:, [control]]).T
    exposures = (every.exposures[:, columns] + every.exposures[:, [control]]).T
    # A look where either arm had fewer than 2 exposures has no estimate: it cannot reject.
    fewest = np.minimum(every.exposures[:, columns], every.exposures[:, [control]]).T
    variance = np.where(fewest >= FEWEST_EXPOSURES, variance, np.nan)
    skew = _difference_skewness(every, columns, control)
    tests = looks.spending_tests(
        difference, variance, exposures, 2 * settings.planned_exposures, settings.alpha, settings.gamma, DESIGN, skew
    )
    for index, row in enumerate(treatments):
        defined = bool(np.isfinite(tests.p_value[index]))
        row["p_value"] = float(tests.p_value[index]) if defined else None
        # The skewness tonight's look was corrected with (spending_tests takes an unknown one as 0).
        a = float(skew[index, -1]) if np.isfinite(skew[index, -1]) else 0.0
        boundary = float(tests.boundary[index]) if defined else math.inf
        row["lift"]["relative_ci"] = fieller.interval(look.comparisons[row["key"]].ratio, boundary, a)
        row["information_fraction"] = float(tests.information_fraction[index]) if defined else None
        row["boundary"] = float(tests.boundary[index]) if defined and np.isfinite(tests.boundary[index]) else None
        row["direction"] = _side(float(tests.direction[index])) if defined else None
    return bool(tests.final_reached.all())


def _side(difference: float | None) -> Literal["higher", "lower"] | None:
    """A treatment's side of the control, from the sign of its difference (None: no side)."""
    if difference is None or not math.isfinite(difference) or difference == 0:
        return None
    return "higher" if difference > 0 else "lower"


def _difference_skewness(every: Estimates, columns: list[int], control: int) -> np.ndarray:
    """(treatments, looks): the skewness of each treatment's difference from the control."""
    n_t, n_c = every.exposures[:, columns], every.exposures[:, [control]]
    pooled = skewness.pooled_skewness(
        n_t,
        n_c,
        every.variance[:, columns] * n_t,
        every.variance[:, [control]] * n_c,
        every.third[:, columns],
        every.third[:, [control]],
    )
    return skewness.difference_skewness(n_t, n_c, pooled).T


def _add_msprt(row: VariantAnalysis, look: Look, settings: Settings) -> None:
    smallest_scale = settings.tau if settings.tau is not None else abs(settings.mde)
    keys = list(look.exposures)
    pooled = sequential.pooled_mean(
        look.estimates[keys.index(row["key"])], look.estimates[keys.index(settings.control)]
    )
    fixed = look.comparisons[row["key"]]
    row["p_value"] = sequential.p_value(fixed, pooled, smallest_scale)
    row["lift"]["relative_ci"] = sequential.relative_confidence_sequence(fixed, pooled, smallest_scale, settings.alpha)


def _skewed(look: Look, control: str) -> explain.Skewed | None:
    """The comparison whose test the skewness correction changed most, when its smaller arm is
    below Kohavi's rule (None when no comparison's is)."""
    corrected = [(abs(c.skewness), key) for key, c in look.comparisons.items() if c.skewness != 0]
    if not corrected:
        return None
    key = max(corrected)[1]
    keys = list(look.exposures)
    pair = [look.estimates[keys.index(key)], look.estimates[keys.index(control)]]
    n_t, n_c = pair[0].exposures, pair[1].exposures
    pooled = float(
        skewness.pooled_skewness(n_t, n_c, pair[0].variance * n_t, pair[1].variance * n_c, pair[0].third, pair[1].third)
    )
    arms = sorted([(n_t, key), (n_c, control)])
    if arms[0][0] >= skewness.kohavi_users(pooled):
        return None
    return explain.Skewed((arms[0][1], arms[0][0]), (arms[1][1], arms[1][0]), pooled)


def _variance_reduction(look: Look, key: str, control: str) -> float:
    """How much CUPED narrowed the variance of this treatment's difference from the control."""
    keys = list(look.exposures)
    treatment, baseline = keys.index(key), keys.index(control)
    before = look.raw[treatment].variance + look.raw[baseline].variance
    after = look.estimates[treatment].variance + look.estimates[baseline].variance
    return 1 - after / before if before > 0 else 0.0


def _days_left(
    kind: MetricKind,
    variants: list[VariantData],
    estimates: list[Estimate],
    control_index: int,
    settings: Settings,
    design: str,
) -> planning.DaysLeft:
    control = estimates[control_index]
    if settings.days_running is None or control.exposures < 2:
        return planning.DaysLeft(None)
    needed = (
        settings.planned_exposures if design == SPENDING else _fixed_horizon(kind, control, settings, len(variants))
    )
    if needed is None:
        return planning.DaysLeft(None)  # a baseline that cannot be planned from (a 0% rate, no variance)
    if design == MSPRT:
        needed = math.ceil(needed * planning.sequential_inflation(settings.alpha, settings.power, abs(settings.mde)))
    return planning.days_left(needed, min(v.exposures for v in variants), settings.days_running)


def _fixed_horizon(kind: MetricKind, control: Estimate, settings: Settings, count: int) -> int | None:
    try:
        if kind == CONVERSION:
            return planning.exposures_for_conversion(control.mean, settings.mde, settings.alpha, settings.power, count)
        sd = math.sqrt(control.variance * control.exposures)
        return planning.exposures_for_mean(control.mean, sd, settings.mde, settings.alpha, settings.power, count)
    except ValueError:
        return None


def _method(settings: Settings, design: str) -> str:
    if design == SPENDING:
        return (
            f"group-sequential test (alpha spending: {1 - spending.EARLY_SHARE:.0%} Hwang-Shih-DeCani, gamma = "
            f"{settings.gamma:g}, and {spending.EARLY_SHARE:.0%} early, over the "
            f"exposures planned, {settings.planned_exposures} per variant) on the difference of the means; "
            "Holm-adjusted"
        )
    if design == MSPRT:
        smallest = settings.tau if settings.tau is not None else abs(settings.mde)
        return (
            f"mSPRT (normal mixture over scales from {smallest:g} up, relative to the pooled mean) on the "
            "difference of the means; Holm-adjusted"
        )
    return "fixed-horizon z / Welch test; Fieller's relative interval (the test inverted); Holm-adjusted"
