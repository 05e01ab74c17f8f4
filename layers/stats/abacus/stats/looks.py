"""The group-sequential test of treatments against the control over the looks taken so far,
computed for many comparisons at once (an experiment's treatments, or a simulation's runs).

The statistic is the absolute difference of the (CUPED-adjusted) means over its standard error,
Z = difference / sqrt(V), with V from each look's own observed variances: the test the plan is
sized for (planning.py sizes the difference of two means), so a wrong baseline guess costs power
(or time), never validity. A look's information fraction is the pair's exposures over the plan's,
t = n / N. Its observed information 1 / V would give the same fraction where the per-user variance
is what it is tonight; the exposures are used because they never change once a look is taken, so
neither do the earlier looks' boundaries, which look again every night: re-estimating earlier
fractions from tonight's variance moved their boundaries, and even which look was the final one,
and a simulation found A/A experiments declared different after the plan's end that way.

Boundaries come from spending.py over the looks actually taken (missed nights and uneven ones
included). A look without new exposures or without an estimate cannot reject: it is given a
fraction a hair above the previous one, which spending.py answers with an infinite boundary, and
alpha passes to the next look. The first look at or past the planned exposures is the final one
and spends what is left of alpha; later looks are not tested again, so looking on after the plan
cannot add false positives: the design's answer stands.

The p-value of look k is alpha * P(|N(0,1)| >= |Z_k|) / P(|N(0,1)| >= c_k): below alpha exactly
when |Z_k| crosses the boundary c_k, and a valid p-value at that look (each look's nominal level
is at most alpha; spending.nominal_p_value). Once a look has crossed, the design has rejected:
the reported p-value is the smallest over the looks so far, so the verdict does not flip back,
and its direction (which arm is ahead) is that look's too, whatever tonight's estimate says.
The interval is the repeated confidence interval, difference +/- c sqrt(V), at the boundary of
the last look tested.

Where the arms' third moments are known, each look's Z is corrected for the skewness of the
difference (skewness.py: Hall's transformation, 0 at equal arms) before it meets its boundary,
and the interval inverts the corrected test: difference - sqrt(V) g^-1(+/-c).
"""

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from abacus.stats import skewness, spending

type Floats = npt.NDArray[np.float64]
# A look that adds no information sits this far above the previous one (relatively): spending.py
# gives it an infinite boundary (it adds under 0.04% of the information so far).
_NO_INFORMATION = 1e-9
_SMALLEST_FRACTION = 1e-12


class SpendingTests(NamedTuple):
    """Per comparison: NaN where the current look has no estimate."""

    p_value: Floats
    low: Floats  # the estimate's repeated confidence interval
    high: Floats
    information_fraction: Floats  # of the current look; above 1 past the plan
    boundary: Floats  # |Z| the last look tested had to reach
    final_reached: npt.NDArray[np.bool_]
    direction: Floats  # the sign of Z at the look whose p-value is reported (the crossing look, once one crossed)


def spending_tests(
    estimate: Floats,
    variance: Floats,
    exposures: Floats,
    planned_pair_exposures: float,
    alpha: float,
    gamma: float = spending.DESIGN_GAMMA,
    family: spending.Family = spending.DESIGN_FAMILY,
    skew: Floats | None = None,
) -> SpendingTests:
    """Each argument (C, K): C comparisons, K looks oldest first (the last is tonight's); NaN
    marks a look without an estimate. `exposures` are the pair's (treatment plus control), and
    the interval is on the estimate's scale. `skew`: the skewness of each look's estimate
    (skewness.difference_skewness), None or 0 where it is not corrected."""
    defined = np.isfinite(estimate) & np.isfinite(variance) & (variance > 0) & (exposures > 0)
    current = defined[:, -1]
    safe_variance = np.where(defined, variance, 1.0)
    fractions = _increasing(exposures / planned_pair_exposures, defined)
    a = np.zeros_like(estimate) if skew is None else np.where(defined & np.isfinite(skew), skew, 0.0)
    z = np.where(defined, np.where(defined, estimate, 0.0) / np.sqrt(safe_variance), 0.0)
    z = skewness.corrected(z, a)
    count = estimate.shape[0]
    p_value, boundary = np.full(count, np.nan), np.full(count, np.nan)
    final = np.zeros(count, dtype=bool)
    direction = np.full(count, np.nan)
    # The looks that count end at the first at or past the plan: rows ending alike go together.
    reached = fractions >= 1.0
    lengths = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, fractions.shape[1])
    for length in np.unique(lengths[current]):
        rows = np.flatnonzero(current & (lengths == length))
        critical = spending.boundaries(fractions[rows, :length], alpha, gamma, family)
        nominal = spending.nominal_p_value(z[rows, :length], critical, alpha)
        deciding = nominal.argmin(axis=1)  # the earliest look with the smallest p-value
        p_value[rows] = nominal[np.arange(len(rows)), deciding]
        direction[rows] = np.sign(z[rows, deciding])
        boundary[rows] = _last_finite(critical)
        final[rows] = fractions[rows, length - 1] >= 1.0
    sd = np.sqrt(np.where(current, safe_variance[:, -1], np.nan))
    centre = np.where(current, estimate[:, -1], np.nan)
    low = centre - sd * skewness.uncorrected(boundary, a[:, -1])
    high = centre - sd * skewness.uncorrected(-boundary, a[:, -1])
    fraction_now = np.where(current, exposures[:, -1] / planned_pair_exposures, np.nan)
    return SpendingTests(p_value, low, high, fraction_now, boundary, final, direction)


def _increasing(raw: Floats, defined: npt.NDArray[np.bool_]) -> Floats:
    """The fractions spending.py is given: each look's own where it adds information, else a hair
    above the previous look's (an infinite boundary: the look cannot reject)."""
    fractions = np.empty_like(raw)
    previous = np.full(raw.shape[0], _SMALLEST_FRACTION)
    for k in range(raw.shape[1]):
        nudged = previous * (1 + _NO_INFORMATION) if k else previous
        adds = defined[:, k] & (raw[:, k] > nudged)
        fractions[:, k] = np.where(adds, raw[:, k], nudged)
        previous = fractions[:, k]
    return fractions


def _last_finite(critical: Floats) -> Floats:
    """Per row, the boundary of the last look that could reject (infinite when none could)."""
    finite = np.isfinite(critical)
    last = critical.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(axis=1), critical[np.arange(critical.shape[0]), last], np.inf)
