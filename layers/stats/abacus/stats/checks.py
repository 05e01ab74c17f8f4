"""The checks of one metric's problem before it is analysed (analysis.py): a ValueError naming the
first field that makes the problem one that cannot be analysed (an unknown kind, a wrong count of
variants, duplicate keys, a missing control, an alpha outside (0, 1), a spending design without its
plan, a negative count, a value that is not finite, sums of squares no values give, a negative
sum for a metric whose mean cannot be negative); and which
earlier looks to test with, leaving out those holding a number that is not finite.
"""

import math
from collections.abc import Sequence

from abacus.core.documents import MetricKind
from abacus.stats.estimates import CONVERSION, MEAN, VariantData


def check(
    kind: MetricKind,
    variants: list[VariantData],
    *,
    control: str,
    alpha: float,
    spending: bool,
    planned_exposures: int | None,
    previous_looks: Sequence[Sequence[VariantData]],
    nonnegative: bool = False,
) -> list[Sequence[VariantData]]:
    """ValueError naming the first field that makes the problem one that cannot be analysed;
    returns the earlier looks to test with (those whose numbers are finite). `spending`: whether
    the design is the group-sequential one, which needs the plan's exposures; `nonnegative`:
    whether the metric's mean cannot be negative (its intervals rely on it)."""
    if kind not in (CONVERSION, MEAN):
        raise ValueError(f"metric.kind: '{kind}' is not 'conversion' or 'mean'")
    if not 2 <= len(variants) <= 10:
        raise ValueError("variants: between 2 and 10 variants")
    keys = [v.key for v in variants]
    if len(set(keys)) != len(keys):
        raise ValueError("variants: keys must be unique")
    if control not in keys:
        raise ValueError(f"control: no variant keyed '{control}'")
    if not 0 < alpha < 1:
        raise ValueError("alpha: must be between 0 and 1")
    if spending and not (planned_exposures or 0) > 0:
        raise ValueError("planned_exposures: the spending design needs the plan's exposures per variant")
    for v in variants:
        _check_variant(kind, v, nonnegative)
    return _check_previous_looks(kind, sorted(keys), previous_looks, nonnegative)


def _check_previous_looks(
    kind: MetricKind, keys: list[str], looks: Sequence[Sequence[VariantData]], nonnegative: bool
) -> list[Sequence[VariantData]]:
    """The earlier looks, checked, but for those holding a number that is not finite (a snapshot
    stored before values were bounded may): left out, as a night the job did not run."""
    kept = []
    for index, previous in enumerate(looks):
        if sorted(v.key for v in previous) != keys:
            raise ValueError(f"previous_looks[{index}]: must have the same variants as variants")
        if all(_not_finite(v) is None for v in previous):
            for v in previous:
                _check_variant(kind, v, nonnegative)
            kept.append(previous)
    return kept


_VALUES = (
    "sum",
    "sum_squares",
    "pre_sum",
    "pre_sum_squares",
    "cross_sum",
    "sum_cubes",
    "pre_sum_cubes",
    "cross_sum_outcome_squared",
    "cross_sum_pre_squared",
)


def _not_finite(v: VariantData) -> str | None:
    """The first of the variant's values that is NaN or infinite."""
    return next(
        (name for name in _VALUES if (value := getattr(v, name)) is not None and not math.isfinite(value)), None
    )


def _check_variant(kind: MetricKind, v: VariantData, nonnegative: bool) -> None:
    if v.exposures < 0:
        raise ValueError(f"variants.{v.key}.exposures: must not be negative")
    if (name := _not_finite(v)) is not None:
        raise ValueError(f"variants.{v.key}.{name}: not a finite number")
    if kind == CONVERSION and not 0 <= v.conversions <= v.exposures:
        raise ValueError(f"variants.{v.key}.conversions: must be between 0 and exposures")
    if kind == MEAN and v.exposures > 0 and _below_square_of_sum(v.sum, v.sum_squares, v.exposures):
        raise ValueError(f"variants.{v.key}.sum_squares: smaller than sum^2 / exposures, impossible")
    if kind == MEAN and nonnegative and v.sum < 0:
        raise ValueError(f"variants.{v.key}.sum: negative, for a metric whose mean cannot be (nonnegative)")
    if v.has_covariate and v.exposures > 0:
        assert v.pre_sum is not None and v.pre_sum_squares is not None
        if _below_square_of_sum(v.pre_sum, v.pre_sum_squares, v.exposures):
            raise ValueError(f"variants.{v.key}.pre_sum_squares: smaller than pre_sum^2 / exposures, impossible")


def _below_square_of_sum(total: float, squares: float, count: int) -> bool:
    """Whether a sum of squares is below sum^2 / count (beyond rounding), which no values give.
    The sum is divided before it is multiplied: its square overflows from 1.3e154 on."""
    return squares < total * (total / count) * (1 - 1e-9) - 1e-9
