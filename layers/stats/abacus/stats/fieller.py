"""The relative lift's interval: Fieller's (1954), the set of ratios rho = mu_t / mu_c that the
design's own test does not reject, the test of m_t - m_c = 0 asked of m_t - rho m_c = 0 instead.

For a ratio rho the statistic is

    T(rho) = (m_t - rho m_c) / sqrt(v_t + rho^2 v_c),

at rho = 1 the difference's statistic, which every design tests (fixed-horizon z or Welch's t,
the spending design's boundary, the mSPRT's half-width). The interval is every rho with
low <= T(rho) <= high, [low, high] the design's critical values in T's units: -/+ c, or with the
skewness correction g^-1(-/+c) (skewness.py; the skewness of m_t - rho m_c under the null that the
treatment's values are the control's times rho > 0 is the same a for every rho: the variances
scale by rho^2 and the third moments by rho^3). At rho = 1 the interval therefore holds a lift of
0 exactly when the design's test does not reject: an interval and its p-value never disagree.

The delta method's interval (lift +/- c standard errors) had no bound at -100% (-32.1%
[-170.1%, +105.8%] for a rate), and tests a different statistic: (m_t - m_c) / sqrt(v_t +
(m_t / m_c)^2 v_c), not the difference's. An interval on log(m_t / m_c) is bounded but tests
log-ratio over its delta standard error, which disagrees with the difference's test near the
boundary, and has no estimate when the treatment has no conversions.

The shape: T is smooth with one extremum and tends to -/+ m_c / sqrt(v_c) as rho goes to +/-inf.
The set is a bounded interval when the control's mean is further than the critical value from 0
(|m_c| / sqrt(v_c) > c: for a rate, some c^2 conversions); otherwise it reaches to infinity, no
ratio is ruled out above, and there is no finite interval to give (None). A metric whose mean
cannot be negative (a rate, a count) has rho >= 0, and the set is cut at rho = 0 (-100%): the true
ratio is never below, so the coverage is the test's. Where the mean may be negative (a sum of a
property that can be, say refunds), rho < 0 is possible and the set is not cut: it reaches below
-100% only when the treatment's mean is within the critical value of 0 (T(0) = m_t / sqrt(v_t)).

Reference: Fieller (1954), "Some problems in interval estimation", JRSS B 16:175-185.
"""

import itertools
import math
from dataclasses import dataclass

from abacus.stats import skewness

# At the breakpoints the acceptance region changes; a ray is probed this far beyond its end.
_PROBE = 1.0


@dataclass(frozen=True)
class Ratio:
    """m_t / m_c and each arm's standard error in units of |m_c|; the sign of m_c; whether the
    metric's mean cannot be negative (rho >= 0)."""

    estimate: float
    treatment_spread: float  # sqrt(v_t) / |m_c|
    control_spread: float  # sqrt(v_c) / |m_c|
    control_sign: float
    nonnegative: bool

    @classmethod
    def of(cls, m_t: float, v_t: float, m_c: float, v_c: float, nonnegative: bool) -> "Ratio | None":
        """None where there is no ratio to bound: a control mean of 0, no variance in either arm
        (or one that is not a variance), or numbers beyond a double (square roots and ratios only:
        no power of a mean is taken)."""
        if m_c == 0 or not (v_t >= 0 and v_c >= 0) or not (v_t > 0 or v_c > 0):
            return None
        ratio = cls(
            m_t / m_c, math.sqrt(v_t) / abs(m_c), math.sqrt(v_c) / abs(m_c), math.copysign(1.0, m_c), nonnegative
        )
        parts = (ratio.estimate, ratio.treatment_spread, ratio.control_spread)
        return ratio if all(math.isfinite(part) for part in parts) else None

    def statistic(self, rho: float) -> float:
        """T(rho), in these units: sign(m_c) (r - rho) / sqrt(t^2 + rho^2 c^2); NaN where 0 / 0."""
        spread = math.hypot(self.treatment_spread, rho * self.control_spread)
        distance = self.estimate - rho
        if spread == 0:
            return math.nan if distance == 0 else math.copysign(math.inf, distance * self.control_sign)
        return self.control_sign * distance / spread

    def accepted(self, low: float, high: float) -> tuple[float, float] | None:
        """The ratios whose T lies in [low, high], as (first, last), infinite where the set is
        unbounded; None where they are not one interval (none, or two apart)."""
        domain_start = 0.0 if self.nonnegative else -math.inf
        cuts = sorted({rho for q in (low, high) for rho in self._crossings(q) if rho > domain_start})
        edges = [domain_start, *cuts, math.inf]
        inside = [self._accepts(_probe(start, end), low, high) for start, end in itertools.pairwise(edges)]
        pieces = [index for index, accepted in enumerate(inside) if accepted]
        if not pieces or pieces[-1] - pieces[0] + 1 != len(pieces):
            return None
        return edges[pieces[0]], edges[pieces[-1] + 1]

    def _accepts(self, rho: float, low: float, high: float) -> bool:
        return low <= self.statistic(rho) <= high

    def _crossings(self, q: float) -> list[float]:
        """The rho where T(rho)^2 = q^2 (T = q among them, and maybe T = -q: a spurious cut only
        splits a piece in two alike): (1 - q^2 c^2) rho^2 - 2 r rho + r^2 - q^2 t^2 = 0, whose
        discriminant over 4 is q^2 ((1 - q^2 c^2) t^2 + r^2 c^2), without r^2 - r^2."""
        r, t, c = self.estimate, self.treatment_spread, self.control_spread
        leading = 1 - (q * c) * (q * c)
        constant = r * r - (q * t) * (q * t)
        inner = leading * t * t + (r * c) * (r * c)
        if not (inner >= 0 and math.isfinite(inner) and math.isfinite(constant)):
            return []
        if leading == 0:  # linear: -2 r rho + constant = 0
            return [constant / (2 * r)] if r != 0 else []
        # Each root once without cancellation: k = r + sign(r) sqrt(D), roots k / a and constant / k.
        k = r + math.copysign(abs(q) * math.sqrt(inner), r)
        if k == 0:
            return [0.0]
        return [root for root in (k / leading, constant / k) if math.isfinite(root)]


def accepted_lifts(ratio: Ratio | None, critical: float, a: float = 0.0) -> tuple[float, float] | None:
    """The relative lifts a test does not reject, as (first, last), infinite where unbounded: the
    test rejects where its statistic, corrected for a skewness a (skewness.py), is beyond
    -/+critical (an infinite critical value: a test that cannot reject). None where they are not
    one interval, or there is no ratio."""
    if ratio is None or not critical > 0:
        return None
    if math.isinf(critical):
        return (-1.0 if ratio.nonnegative else -math.inf), math.inf
    accepted = ratio.accepted(skewness.uncorrected_value(-critical, a), skewness.uncorrected_value(critical, a))
    return None if accepted is None else (accepted[0] - 1, accepted[1] - 1)


def interval(ratio: Ratio | None, critical: float, a: float = 0.0) -> list[float] | None:
    """accepted_lifts() as the analysis gives it: [first, last] where both are finite, else None
    (no finite interval: the control's mean too near 0 for the test to bound the ratio above)."""
    lifts = accepted_lifts(ratio, critical, a)
    return [lifts[0], lifts[1]] if lifts is not None and all(math.isfinite(lift) for lift in lifts) else None


def _probe(start: float, end: float) -> float:
    """A ratio inside (start, end), where the acceptance is the same throughout."""
    if math.isinf(start) and math.isinf(end):
        return 0.0
    if math.isinf(start):
        return end - max(_PROBE, abs(end))
    if math.isinf(end):
        return start + max(_PROBE, abs(start))
    return start / 2 + end / 2
