"""Planning: exposures needed per variant, and days left. Standard library only (NormalDist), so
that assign can call it as well as the stats engine.

Two-sided fixed-horizon tests at level alpha, split across the k - 1 comparisons with the control (Bonferroni,
what Holm's adjustment demands of the smallest p-value), with the given power:
- conversion, baseline rate p1, target p2 = p1 (1 + mde), the standard two-proportion formula
  n = (z_{1-a/2} sqrt(2 pbar (1 - pbar)) + z_{1-b} sqrt(p1 (1 - p1) + p2 (1 - p2)))^2 / (p2 - p1)^2
  with pbar = (p1 + p2) / 2 (Fleiss, without continuity correction);
- mean, baseline mean m and standard deviation s: n = 2 (z_{1-a/2} + z_{1-b})^2 s^2 / (m mde)^2.
Sequential tests need more: SPENDING_INFLATION times more for the group-sequential design,
sequential_inflation() for the always-valid mSPRT.
"""

import math
from functools import lru_cache
from statistics import NormalDist
from typing import NamedTuple

from abacus.core import mixture

_STANDARD_NORMAL = NormalDist()
# More exposures per variant than any experiment gets: the effect is too small to plan for (and
# larger numbers would overflow once inflated for the sequential test).
_MOST_EXPOSURES = 1e18


# The group-sequential design's maximum information over the fixed-horizon one: its spending
# function (abacus.stats.spending.DESIGN_FAMILY, gamma -7), 30 nightly looks, two-sided alpha 0.05
# and 80% power, as abacus.stats.spending.inflation() computes it by recursive integration (a test
# holds the two equal). A number rather than the computation: the experiments API, which recommends the sample,
# runs without the stats layer's numpy and scipy.
SPENDING_INFLATION = 1.0288


def _z_values(alpha: float, power: float, variants: int) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise ValueError("alpha: must be between 0 and 1")
    if not 0 < power < 1:
        raise ValueError("power: must be between 0 and 1")
    if variants < 2:
        raise ValueError("variants: at least 2")
    per_comparison = alpha / (variants - 1)
    return _STANDARD_NORMAL.inv_cdf(1 - per_comparison / 2), _STANDARD_NORMAL.inv_cdf(power)


def exposures_for_conversion(
    baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8, variants: int = 2
) -> int:
    """Exposures per variant to detect a relative lift `mde` over a baseline conversion rate."""
    if not 0 < baseline < 1:
        raise ValueError("baseline: a conversion rate strictly between 0 and 1")
    target = baseline * (1 + mde)
    if mde == 0 or not 0 < target < 1:
        raise ValueError("mde: must be non-zero and keep the target rate between 0 and 1")
    z_alpha, z_power = _z_values(alpha, power, variants)
    pooled = (baseline + target) / 2
    root = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_power * math.sqrt(
        baseline * (1 - baseline) + target * (1 - target)
    )
    return _whole_exposures(root**2, (target - baseline) ** 2)


def exposures_for_mean(
    baseline_mean: float, baseline_sd: float, mde: float, alpha: float = 0.05, power: float = 0.8, variants: int = 2
) -> int:
    """Exposures per variant to detect a relative lift `mde` over a baseline mean."""
    if baseline_mean == 0:
        raise ValueError("baseline_mean: a relative effect needs a non-zero baseline")
    if baseline_sd <= 0:
        raise ValueError("baseline_sd: must be positive")
    if mde == 0:
        raise ValueError("mde: must be non-zero")
    z_alpha, z_power = _z_values(alpha, power, variants)
    return _whole_exposures(2 * (z_alpha + z_power) ** 2 * baseline_sd**2, (baseline_mean * mde) ** 2)


def _whole_exposures(numerator: float, squared_effect: float) -> int:
    """numerator / squared_effect, rounded up; ValueError when the effect is so small (5e-324, say)
    that its square is 0 or the sample beyond _MOST_EXPOSURES."""
    needed = numerator / squared_effect if squared_effect > 0 else math.inf
    if needed > _MOST_EXPOSURES:
        raise ValueError("mde: too small an effect to plan a sample size for")
    return math.ceil(needed)


@lru_cache(maxsize=64)
def sequential_inflation(alpha: float = 0.05, power: float = 0.8, mde: float = 0.05) -> float:
    """How many times the fixed-horizon sample the always-valid test (abacus.core.mixture's mixture
    over scales from the mde up) needs for the same power: the smallest k with
        s sqrt(k) - z_{1-b} >= z_k,
    s = z_{1-a/2} + z_{1-b}, where z_k is the confidence sequence's half-width in standard errors
    at k times the sample: there the mde is s sqrt(k) standard errors away, and the variance of
    the estimate (mde / (s sqrt(k)))^2."""
    z_alpha, z_power = _z_values(alpha, power, 2)
    s = z_alpha + z_power
    scales = mixture.scales(abs(mde))

    def enough(k: float) -> bool:
        variance = (mde / s) ** 2 / k
        return s * math.sqrt(k) - z_power >= mixture.half_width_in_standard_errors(variance, alpha, scales)

    low, high = 1.0, 2.0
    while not enough(high):
        low, high = high, high * 2
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


class DaysLeft(NamedTuple):
    """Days until the plan's exposures are reached, or None and why it cannot be estimated yet."""

    days: int | None
    unknown_because: str | None = None


# A rate is estimated from a full day of exposures at least: minutes of traffic are no day's
# (a minute's 11 exposures promised "about 1 more day" for 8,280 more), nor is a night or a morning.
FULL_DAY = 1.0


def days_left(needed_per_variant: int, smallest_variant_exposures: int, days_running: float) -> DaysLeft:
    """Days until the smallest variant reaches `needed_per_variant` at its rate so far, estimated
    once it has run a full day; 0 once reached."""
    if smallest_variant_exposures >= needed_per_variant:
        return DaysLeft(0)
    if days_running < FULL_DAY:
        return DaysLeft(None, f"cannot be estimated before a full day of exposures ({_so_far(days_running)} so far)")
    if smallest_variant_exposures <= 0:
        return DaysLeft(None, "cannot be estimated while a variant has no exposures")
    rate = smallest_variant_exposures / days_running
    return DaysLeft(math.ceil((needed_per_variant - smallest_variant_exposures) / rate))


def _so_far(days: float) -> str:
    minutes = max(0, math.floor(days * 24 * 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    return f"{hours} hour{'s' if hours != 1 else ''}"
