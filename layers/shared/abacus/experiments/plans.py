"""An experiment's plan: the exposures per variant its group-sequential test is sized for.

From the metric's planning baseline when the experiment gives one; otherwise from the control's
results at the first look, kept from then on in every snapshot (a plan that moved with the data
would let the test choose its own finish line). The fixed-horizon sample (planning.py) times the
spending design's inflation (planning.SPENDING_INFLATION): the group-sequential test then has
the planned power at the planned sample, despite its earlier looks.

Standard library only: the experiments API (without the stats layer) recommends the same sample.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

from abacus.core import planning
from abacus.core.documents import MetricAnalysis
from abacus.experiments.metrics_spec import MetricSpec
from abacus.experiments.spec import ExperimentFields

ALPHA, POWER = 0.05, 0.8


class Baseline(NamedTuple):
    """The control's observed mean and per-user standard deviation."""

    mean: float
    sd: float


def fixed_horizon_exposures(metric: MetricSpec, mde: float, variants: int, observed: Baseline | None) -> int | None:
    """Exposures per variant a fixed-horizon test needs, from the metric's planning baseline or
    else the control's observed one; None when neither is known or neither can be planned from."""
    try:
        if metric.kind in ("conversion", "funnel"):  # a funnel's value is 0 or 1, like a conversion
            rate = metric.baseline or (observed.mean if observed else None)
            if rate is None:
                return None
            return planning.exposures_for_conversion(rate, mde, ALPHA, POWER, variants)
        if metric.baseline_mean is not None and metric.baseline_sd is not None:
            return planning.exposures_for_mean(metric.baseline_mean, metric.baseline_sd, mde, ALPHA, POWER, variants)
        if observed is None:
            return None
        return planning.exposures_for_mean(observed.mean, observed.sd, mde, ALPHA, POWER, variants)
    except ValueError:
        return None  # a baseline that cannot be planned from (a 0% rate, no variation)


def has_planning_baseline(metric: MetricSpec) -> bool:
    return metric.baseline is not None or (metric.baseline_mean is not None and metric.baseline_sd is not None)


def sequential_exposures(fixed_horizon: int | None) -> int | None:
    """The group-sequential design's planned exposures per variant."""
    return None if fixed_horizon is None else math.ceil(fixed_horizon * planning.SPENDING_INFLATION)


def planned_exposures(
    metric: MetricSpec,
    spec: ExperimentFields,
    earlier: Sequence[MetricAnalysis | None],
    observed: Baseline | None,
) -> int | None:
    """The plan of a metric's test at tonight's look, given the earlier looks' analyses."""
    if not has_planning_baseline(metric):
        for analysis in earlier:
            kept = analysis.get("planned_exposures") if analysis else None
            if kept:
                return kept
    fixed = fixed_horizon_exposures(metric, spec.minimum_detectable_effect, len(spec.variants), observed)
    return sequential_exposures(fixed)
