"""Mean metrics whose values are far from 1 analysed as if they were near it.

A million users' values of 1e149 have a sum of squares a double holds, but CUPED's centring
multiplies their sum by itself (1e310), and the variants' variances are added up; values of
1e-160 have variances that underflow, and the posteriors' narrowest width is absolute. Yet every
statistic is either free of the metric's unit (p-values, relative lifts and their intervals,
probabilities, theta, the boundaries) or in that unit, scaling with it. So when the values' root
mean square is beyond 2^(+/-64), they are divided by the power of two nearest it (the covariate,
the same metric over an earlier window, by the same one), which is exact in binary floating
point; the analysis runs on numbers near 1, and the statistics in the metric's unit are
multiplied back, exactly again. Between 2^-64 and 2^64 nothing is scaled.
"""

import math
from collections.abc import Sequence
from dataclasses import replace

from abacus.core.documents import VariantAnalysis
from abacus.stats.estimates import VariantData

_LARGEST, _SMALLEST = 2.0**64, 2.0**-64


def unit(looks: Sequence[Sequence[VariantData]]) -> float:
    """The power of two to divide a mean metric's values by: 1 unless the largest root mean square
    of a variant's values or covariate, over every look, is beyond 2^(+/-64)."""
    rms = max(
        (
            math.sqrt(squares / v.exposures)
            for look in looks
            for v in look
            for squares in (v.sum_squares, v.pre_sum_squares or 0.0)
            if v.exposures > 0
        ),
        default=0.0,
    )
    if rms == 0 or _SMALLEST <= rms <= _LARGEST:
        return 1.0
    return 2.0 ** round(math.log2(rms))


def scaled(v: VariantData, by: float) -> VariantData:
    """The variant's values divided by `by` (squares and cross-products divided twice, cubes
    three times: a power of `by` may itself overflow)."""
    if by == 1.0:
        return v
    return replace(
        v,
        sum=v.sum / by,
        sum_squares=v.sum_squares / by / by,
        pre_sum=None if v.pre_sum is None else v.pre_sum / by,
        pre_sum_squares=None if v.pre_sum_squares is None else v.pre_sum_squares / by / by,
        cross_sum=None if v.cross_sum is None else v.cross_sum / by / by,
        sum_cubes=_cubed(v.sum_cubes, by),
        pre_sum_cubes=_cubed(v.pre_sum_cubes, by),
        cross_sum_outcome_squared=_cubed(v.cross_sum_outcome_squared, by),
        cross_sum_pre_squared=_cubed(v.cross_sum_pre_squared, by),
    )


def _cubed(total: float | None, by: float) -> float | None:
    return None if total is None else total / by / by / by


def restore(rows: list[VariantAnalysis], by: float) -> None:
    """Multiplies back each row's statistics in the metric's unit (sums are the caller's, never scaled)."""
    if by == 1.0:
        return
    for row in rows:
        row["mean"] *= by
        row["standard_error"] *= by
        if "adjusted_mean" in row:
            row["adjusted_mean"] *= by
            row["adjusted_standard_error"] *= by
        if row["credible_interval"] is not None:
            row["credible_interval"] = [edge * by for edge in row["credible_interval"]]
        if row["expected_loss"] is not None:
            row["expected_loss"] *= by
        if "lift" in row:
            row["lift"]["absolute"] *= by
