"""The group-sequential test of one treatment against the control over the looks taken so far.

Information-based monitoring: at each look the relative lift's estimate has variance V, so
information I = 1 / V, and Z = estimate / sqrt(V). The planned (maximum) information is what the
plan's exposures would give at the information per user observed now: I_max = I_now * N / n_now,
N being the pair's planned exposures and n_now its exposures so far. A look's information
fraction is t = I / I_max, so the current look's is n_now / N; the earlier looks' follow from
their own observed variances. A wrong baseline guess makes N too small or too large, which
costs power (or time), never validity: the boundaries always spend alpha by the information
actually observed.

Boundaries come from spending.py over the looks actually taken (missed nights and uneven ones
included). A look that adds no information (t not above the previous look's) is not a look.
The first look at or past the planned information is the final one and spends what is left of
alpha; later looks are not tested again, so looking on after the plan cannot add false
positives: the design's decision stands.

The p-value of look k is alpha * P(|N(0,1)| >= |Z_k|) / P(|N(0,1)| >= c_k): below alpha exactly
when |Z_k| crosses the boundary c_k, and a valid p-value at that look (each look's nominal level
P(|N(0,1)| >= c_k) is at most alpha). Once a look has crossed, the design has rejected: the
reported p-value is the smallest over the looks so far, so the verdict does not flip back. The
interval is the repeated confidence interval, estimate +/- c_k sqrt(V), of the last look tested.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

from scipy.special import log_ndtr

from abacus.stats import spending
from abacus.stats.frequentist import Comparison


class SpendingTest(NamedTuple):
    p_value: float | None
    relative_ci: list[float] | None
    information_fraction: float | None  # of the current look; above 1 past the plan
    boundary: float | None  # |Z| the last look tested had to reach
    final_reached: bool


class _Point(NamedTuple):
    fraction: float
    z: float


def spending_test(
    earlier: Sequence[tuple[Comparison, int]],
    current: tuple[Comparison, int],
    planned_pair_exposures: int,
    alpha: float,
    gamma: float,
) -> SpendingTest:
    """The test at the current look; each look is (the comparison, the pair's exposures)."""
    comparison, exposures = current
    if not _defined(comparison) or exposures <= 0:
        return SpendingTest(None, None, None, None, False)
    assert comparison.relative is not None and comparison.relative_variance is not None
    maximum = 1 / comparison.relative_variance * planned_pair_exposures / exposures
    points = _looks([*earlier, current], maximum)
    fractions = [min(point.fraction, 1.0) for point in points]
    boundaries = spending.boundaries(fractions, alpha, gamma)
    p_value = min(_p_value(point.z, float(boundary), alpha) for point, boundary in zip(points, boundaries, strict=True))
    last_boundary = float(boundaries[-1])
    half = last_boundary * math.sqrt(comparison.relative_variance)
    interval = [comparison.relative - half, comparison.relative + half] if math.isfinite(half) else None
    return SpendingTest(
        p_value, interval, exposures / planned_pair_exposures, last_boundary, points[-1].fraction >= 1.0
    )


def _defined(comparison: Comparison) -> bool:
    return (
        comparison.relative is not None
        and comparison.relative_variance is not None
        and comparison.relative_variance > 0
    )


def _looks(taken: Sequence[tuple[Comparison, int]], maximum_information: float) -> list[_Point]:
    """The looks that count, oldest first, up to the final one."""
    points: list[_Point] = []
    for comparison, exposures in taken:
        if not _defined(comparison) or exposures <= 0:
            continue
        assert comparison.relative is not None and comparison.relative_variance is not None
        fraction = 1 / comparison.relative_variance / maximum_information
        if points and fraction <= points[-1].fraction:
            continue
        points.append(_Point(fraction, comparison.relative / math.sqrt(comparison.relative_variance)))
        if fraction >= 1.0:
            break
    return points


def _p_value(z: float, boundary: float, alpha: float) -> float:
    if not math.isfinite(boundary):
        return 1.0
    # alpha * 2 Phi(-|z|) / (2 Phi(-c)), in logs: both tails can be far below the smallest double.
    log_ratio = float(log_ndtr(-abs(z)) - log_ndtr(-boundary))
    return 1.0 if log_ratio >= math.log(1 / alpha) else alpha * math.exp(log_ratio)
