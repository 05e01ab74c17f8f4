"""An experiment's snapshot from its users' merged sums (abacus.nightly.sums): per metric, what
abacus.stats analyses (its settings: weights, planned exposures, the earlier nights' looks) and
the analysis, with its cap, ratio and funnel steps; the primary metric's verdict held back by a
harmed guardrail; exposures per day with their sample ratio checks; the breakdowns
(breakdown_analysis.py). The calendar (cut-offs, dates, final) is cutoffs.py's; the API's view of a
stored snapshot is abacus.results.snapshots'.

Pure: no storage. abacus.nightly.computation reads the earlier snapshots and stores this one."""

import math
from collections.abc import Mapping
from datetime import datetime
from typing import cast

from abacus.core import breakdowns
from abacus.core.documents import (
    Analysis,
    Breakdown,
    MetricAnalysis,
    MetricJson,
    MetricKind,
    SnapshotAnalysis,
    VariantAnalysis,
)
from abacus.experiments import plans, units
from abacus.experiments.metrics_spec import GuardrailSpec, MetricSpec
from abacus.experiments.spec import CONTROL, BanditAllocation, ExperimentFields
from abacus.nightly import bandit_analysis, breakdown_analysis, breakdown_sums
from abacus.nightly.cutoffs import Timeline
from abacus.nightly.sums import PageSums
from abacus.nightly.values import CONVERTED, pre_exposure_days
from abacus.stats import guardrails, srm
from abacus.stats.analysis import CONVERSION, MEAN, Settings, VariantData, analyse


def _days_running(experiment: Timeline, cutoff: datetime) -> float | None:
    """Days from the launch to the cut-off (None before a launch: no rate to plan days left from)."""
    if experiment.started_at is None:
        return None
    return max(0.0, (cutoff - experiment.started_at).total_seconds() / 86400)


def analysis(
    spec: ExperimentFields,
    experiment: Timeline,
    cutoff: datetime,
    sums: PageSums,
    earlier: list[SnapshotAnalysis],
    phase_points: Mapping[int, Mapping[str, int]] | None = None,
) -> SnapshotAnalysis:
    """The snapshot's analysis for `cutoff` from the experiment's users' sums; `earlier`: the
    analyses of its snapshots before that day (the group-sequential test's earlier looks). A
    bandit's (`phase_points`: each phase's shares, in basis points) is checked against the split
    its phases' shares give, and its verdict is its own (bandit_analysis.py)."""
    metrics = spec.all_metrics()
    statistics = sums.statistics(metrics, [v.key for v in spec.variants], pre_exposure_days(spec))
    allocation = spec.allocation if isinstance(spec.allocation, BanditAllocation) else None
    bandit = None
    weights = {v.key: float(v.weight) for v in spec.variants}
    if allocation is not None:
        keys_ = [v.key for v in spec.variants]
        bandit = bandit_analysis.report(
            allocation, sums.phase_cells, keys_, phase_points or {}, mean_cannot_be_negative(metrics[0])
        )
        weights = {key: 100 * share for key, share in bandit["expected_shares"].items()}
    analyses: list[MetricAnalysis] = []
    for index, (metric, variants) in enumerate(zip(metrics, statistics, strict=True)):
        keys_ = sorted(v.key for v in variants)
        looks = [
            look
            for snapshot in earlier
            if (look := _metric_of(snapshot, index)) is not None
            and sorted(row["key"] for row in look["variants"]) == keys_
        ]
        settings = Settings(
            control=CONTROL,
            weights=weights,
            mde=spec.minimum_detectable_effect,
            days_running=_days_running(experiment, cutoff),
            cuped=spec.cuped,
            planned_exposures=plans.planned_exposures(metric, spec, looks, _observed_control(metric, variants)),
            previous_looks=[_variant_data(look) for look in looks],
            # A ratio's variant without a denominator yet counts no exposure: the check counts users.
            srm_exposures=[sums.exposures[v.key] for v in spec.variants] if metric.kind == "ratio" else None,
            nonnegative=mean_cannot_be_negative(metric),
        )
        analysed = analyse(CONVERSION if metric.kind in CONVERTED else MEAN, variants, settings)
        analyses.append(_metric_analysis(spec, metrics, index, analysed, sums))
    if allocation is not None and bandit is not None:
        analyses[0]["verdict"] = bandit_analysis.verdict(allocation, bandit, _days_running(experiment, cutoff))
    snapshot = _snapshot_analysis(spec, analyses, sums)
    if bandit is not None:
        snapshot["bandit"] = bandit
    return snapshot


def _metric_analysis(
    spec: ExperimentFields, metrics: list[MetricSpec], index: int, analysed: Analysis, sums: PageSums
) -> MetricAnalysis:
    """The `index`-th metric's analysis with its definition, and its cap, ratio or funnel steps."""
    metric = metrics[index]
    # pydantic's JSON dump is untyped: MetricJson is its shape.
    metric_json = cast(MetricJson, metric.model_dump(mode="json", exclude_none=True))
    if not metric.filters:
        del metric_json["filters"]  # as snapshots stored before metrics had filters have it
    metric_analysis = cast(MetricAnalysis, {**analysed, "metric": metric_json})
    if (cap := sums.cap_report(metrics, index, [v.key for v in spec.variants])) is not None:
        metric_analysis["cap"] = cap
    if (ratio := sums.ratio_totals(metrics, index, [v.key for v in spec.variants])) is not None:
        metric_analysis["ratio"] = ratio
    if steps := sums.funnel_steps(metrics, index, [v.key for v in spec.variants]):
        metric_analysis["funnel_steps"] = steps
    return metric_analysis


def mean_cannot_be_negative(metric: MetricSpec) -> bool:
    """Whether the metric's mean cannot be negative, so that its relative intervals stop at -100%
    (abacus.stats.fieller): a count's or a rate's; not a sum's, whose property may hold negative
    numbers (refunds); a ratio's when neither part's can be."""
    if metric.kind == "ratio":
        return all(mean_cannot_be_negative(part) for part in (metric.numerator, metric.denominator) if part)
    return metric.kind != "sum"


def _observed_control(metric: MetricSpec, variants: list[VariantData]) -> plans.Baseline | None:
    """The control's mean and per-user standard deviation so far (None before two exposures)."""
    control = next(v for v in variants if v.key == CONTROL)
    n = control.exposures
    if n < 2:
        return None
    if metric.kind in CONVERTED:
        rate = control.conversions / n
        return plans.Baseline(rate, math.sqrt(rate * (1 - rate)))
    mean = control.sum / n
    return plans.Baseline(mean, math.sqrt(max(0.0, (control.sum_squares - control.sum * mean) / (n - 1))))


def _snapshot_analysis(spec: ExperimentFields, analyses: list[MetricAnalysis], sums: PageSums) -> SnapshotAnalysis:
    """The primary metric's analysis with the others beside it, the verdict held back by any
    guardrail the winner harms, and the exposures per day with their sample ratio checks."""
    secondary_end = 1 + len(spec.secondary_metrics)
    snapshot = cast(SnapshotAnalysis, {**analyses[0], "secondary_metrics": analyses[1:secondary_end]})
    if spec.guardrail_metrics:
        snapshot = _with_guardrails(snapshot, spec.guardrail_metrics, analyses[secondary_end:])
    if spec.breakdowns:
        snapshot["breakdowns"] = _breakdowns(spec, sums)
    if spec.group_type is not None:
        snapshot["counted_unit"] = units.plural(spec.group_type)
    if sums.in_several_variants:
        snapshot["persons_in_several_variants"] = {v.key: sums.in_several_variants[v.key] for v in spec.variants}
    # A bandit's shares change within days: its split is checked over all its users (analyse()).
    if sums.exposures_by_day and not isinstance(spec.allocation, BanditAllocation):
        variant_keys = [v.key for v in spec.variants]
        days = [(day, [counts[key] for key in variant_keys]) for day, counts in sorted(sums.exposures_by_day.items())]
        snapshot["exposures_by_day"] = srm.by_day(days, [float(v.weight) for v in spec.variants])
    return snapshot


def _breakdowns(spec: ExperimentFields, sums: PageSums) -> list[Breakdown]:
    """The primary metric per value of each breakdown property: the most common values, then the
    rest as "other" (abacus.nightly.breakdown_analysis), each with mSPRT's always-valid p-values."""
    variant_keys = [v.key for v in spec.variants]
    weights = {v.key: float(v.weight) for v in spec.variants}
    metric = breakdown_sums.segment_metric(spec.primary_metric)
    settings = Settings(
        control=CONTROL,
        weights=weights,
        mde=spec.minimum_detectable_effect,
        cuped=spec.cuped,
        nonnegative=mean_cannot_be_negative(metric),
    )
    pre_days = pre_exposure_days(spec)
    kind: MetricKind = "conversion" if metric.kind in CONVERTED else "mean"
    results = []
    for name, segments in zip(spec.breakdowns, sums.breakdowns, strict=True):
        shown, other = segments.top(breakdowns.TOP_VALUES, PageSums(variant_keys, [metric]))
        groups = [_group(shown_value, False, metric, variant_keys, pre_days) for shown_value in shown]
        if other is not None:
            groups.append(_group(breakdown_sums.Shown(None, other, True), True, metric, variant_keys, pre_days))
        results.append(breakdown_analysis.breakdown(name, kind, groups, settings))
    return results


def _group(
    shown: "breakdown_sums.Shown[PageSums]", other: bool, metric: MetricSpec, variant_keys: list[str], pre_days: int
) -> breakdown_analysis.Group:
    variants = shown.sums.statistics([metric], variant_keys, pre_days)[0]
    srm_exposures = [shown.sums.exposures[key] for key in variant_keys] if metric.kind == "ratio" else None
    return breakdown_analysis.Group(shown.value, other, shown.complete, variants, srm_exposures)


def _with_guardrails(
    snapshot: SnapshotAnalysis, specs: list[GuardrailSpec], analyses: list[MetricAnalysis]
) -> SnapshotAnalysis:
    """The snapshot with each guardrail's analysis and status per treatment, and the primary
    metric's verdict held back where its winner harms a guardrail (abacus.stats.guardrails)."""
    harmed_by: dict[str, list[str]] = {}
    for spec, analysis in zip(specs, analyses, strict=True):
        treatments = [row for row in analysis["variants"] if row["key"] != CONTROL]
        statuses = {row["key"]: guardrails.status(row, spec.margin, spec.bad_direction) for row in treatments}
        analysis["guardrail"] = {"margin": spec.margin, "bad_direction": spec.bad_direction, "status": statuses}
        for row in treatments:
            if statuses[row["key"]] == "harmed":
                harmed_by.setdefault(row["key"], []).append(_harm_words(spec, row))
    verdict = guardrails.hold_back(snapshot["verdict"], snapshot["variants"], harmed_by)
    return {**snapshot, "verdict": verdict, "guardrail_metrics": analyses}


def _harm_words(spec: GuardrailSpec, row: VariantAnalysis) -> str:
    """How a treatment harms a guardrail, in words: "guardrail errors (count) +12.0% [+5.0%,
    +19.0%], beyond its 2% margin"."""
    lift = row.get("lift")
    low, high = (lift["relative_ci"] if lift else None) or (0.0, 0.0)
    name = f"{spec.event} ({spec.kind})" if spec.kind not in ("ratio", "funnel") else f"a {spec.kind} guardrail"
    change = (lift["relative"] if lift else None) or 0.0
    return f"guardrail {name} {change:+.1%} [{low:+.1%}, {high:+.1%}], beyond its {spec.margin:.0%} margin"


def _metric_of(snapshot: SnapshotAnalysis, index: int) -> MetricAnalysis | None:
    """The analysis of the experiment's `index`-th metric (0: the primary, then the secondary
    ones, then the guardrails) in a stored snapshot."""
    flat = [snapshot, *snapshot.get("secondary_metrics", []), *snapshot.get("guardrail_metrics", [])]
    return flat[index] if index < len(flat) else None


def _variant_data(analysis: MetricAnalysis) -> list[VariantData]:
    """The sufficient statistics a stored analysis was computed from."""
    return [
        VariantData(
            row["key"],
            row["exposures"],
            row.get("conversions", 0),
            row.get("sum", 0.0),
            row.get("sum_squares", 0.0),
            row.get("pre_sum"),
            row.get("pre_sum_squares"),
            row.get("cross_sum"),
            row.get("sum_cubes"),
            row.get("pre_sum_cubes"),
            row.get("cross_sum_outcome_squared"),
            row.get("cross_sum_pre_squared"),
        )
        for row in analysis["variants"]
    ]
