"""Group-sequential boundaries by alpha spending (Lan and DeMets), two-sided, for a z-statistic
looked at repeatedly as information accumulates.

At look k the comparison has an estimate with variance V_k, so Z_k = estimate_k / sqrt(V_k) and
information I_k = 1 / V_k; the information fraction is t_k = I_k / I_max. Under H0 the Z_k are
jointly normal with Corr(Z_j, Z_k) = sqrt(t_j / t_k) (the canonical joint distribution: the score
Z_k sqrt(t_k) is a Brownian motion in t). A spending function alpha(t) says how much of the type I
error may have been spent by fraction t; the boundary c_k is the value for which the probability
under H0 of |Z_k| >= c_k, with no earlier |Z_j| >= c_j, is alpha(t_k) - alpha(t_{k-1}). Looks need
not be planned: any increasing fractions, evenly spaced or not, give a valid test, and a fraction
>= 1 is the final look, which spends whatever is left.

The module's default spending function is Hwang-Shih-DeCani with gamma = -4 (gsDesign's default
too); Abacus's design uses DESIGN_FAMILY below, which builds on it. HSD with gamma = -4
keeps nearly all of the fixed-horizon power at little cost: the maximum information is 2% above
the fixed-horizon sample size with 5 looks, 4% with 30 nightly ones (90% power), yet it spends
enough early that an effect well beyond the one planned for is called at an early look (with 30
nightly looks the first night's boundary is z = 3.8, the seventh's 3.45, the last 2.11).
O'Brien-Fleming boundaries (classical, or Lan-DeMets' O'Brien-Fleming-type spending) keep about
as much power but spend almost nothing early: over the same 30 nights the first two cannot
reject at all, the third needs z = 7.0 and the first week z >= 4.5, so in practice they never
stop early. Pocock-type spending stops earliest but needs 20-25% more information.

Boundaries and crossing probabilities come from the exact recursive numerical integration of
Armitage, McPherson and Rowe, as in Jennison and Turnbull, chapter 19 (recursion.py), on a grid
whose size GRID_R sets (recursion.py says how near the exact boundaries it comes). A look that
adds almost no information (under 0.04% of the information so far) or whose share of alpha is
below 1e-15 gets an infinite boundary: it cannot reject, and what it would have spent is spent at
the next look.

References: Lan and DeMets (1983), Biometrika 70:659-663; Hwang, Shih and DeCani (1990), Stat Med
9:1439-1445; Jennison and Turnbull (2000), Group Sequential Methods with Applications to Clinical
Trials, chapters 7 (spending), 9 (repeated confidence intervals and p-values) and 19 (numerical
computation, in recursion.py).
"""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import log_ndtr, ndtr, ndtri

from abacus.stats.recursion import GRID_R, Kernels, Looks, State, spacing

type Floats = npt.NDArray[np.float64]
type Family = Literal["hsd", "obrien-fleming", "pocock", "early-hsd"]

DEFAULT_GAMMA = -4.0
# Abacus's design: "early-hsd", a small early budget beside a conservative Hwang-Shih-DeCani one.
# A convex combination of spending functions is a spending function (0 at 0, alpha at 1, never
# decreasing): 95% of alpha spent as HSD with gamma -7, close to O'Brien-Fleming, which keeps the
# power at the plan (80% by the plan, 76.9% by 96% of it); 5% spent early, 1 - e^(-t / 0.05) (most
# of it by a tenth of the plan), so a lift several times the mde is called in the first nights.
# Chosen against HSD alone, whose gamma trades one against the other: gamma -4 found 4 times the mde
# by night 3 in 43.6% of experiments, gamma -3 in 50.6% but the mde by day 29 in only 75.0%; this
# mixture 54.4% and 76.9% (normal theory, bench/decisions_simulation.py's setting).
DESIGN_FAMILY: Family = "early-hsd"
DESIGN_GAMMA = -7.0
EARLY_SHARE, EARLY_SCALE = 0.05, 0.05


@dataclass(frozen=True)
class Crossings:
    """Probabilities of first crossing the upper (Z >= c) and lower (Z <= -c) boundary at each look."""

    upper: Floats
    lower: Floats

    @property
    def total(self) -> Floats:
        return self.upper + self.lower


def spent(fractions: npt.ArrayLike, alpha: float, gamma: float = DEFAULT_GAMMA, family: Family = "hsd") -> Floats:
    """Cumulative two-sided alpha(t), t clipped to [0, 1]: Hwang-Shih-DeCani alpha (1 - e^(-gamma t)) /
    (1 - e^(-gamma)), or alpha t for gamma = 0; Pocock-type alpha log(1 + (e - 1) t); or Lan-DeMets'
    O'Brien-Fleming-type, which a symmetric two-sided design applies to each side at level alpha / 2
    (as ldbounds, gsDesign and rpact do, and as the published tables are): 2 (2 - 2 Phi(z_{1-alpha/4}
    / sqrt(t))). The first two are linear in alpha, so per side and in total are the same for them;
    and Abacus's early-hsd (DESIGN_FAMILY, above), linear in alpha too."""
    t = np.clip(np.asarray(fractions, dtype=np.float64), 0.0, 1.0)
    if family == "obrien-fleming":
        with np.errstate(divide="ignore"):
            return 4 * ndtr(-ndtri(1 - alpha / 4) / np.sqrt(t))
    if family == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    if family == "early-hsd":
        early = np.expm1(-t / EARLY_SCALE) / math.expm1(-1 / EARLY_SCALE)
        return (1 - EARLY_SHARE) * spent(t, alpha, gamma, "hsd") + EARLY_SHARE * alpha * early
    if gamma == 0:
        return alpha * t
    return alpha * np.expm1(-gamma * t) / math.expm1(-gamma)


def boundaries(
    fractions: npt.ArrayLike, alpha: float, gamma: float = DEFAULT_GAMMA, family: Family = "hsd", r: int = GRID_R
) -> Floats:
    """Two-sided critical values c_k, one per look (reject at look k when |Z_k| >= c_k, not having
    rejected before). `fractions`: one increasing sequence (shape (K,)), or one per comparison
    (shape (C, K)), computed together; the answer has the same shape. `r`: the grid's size. A
    batch is integrated on the finest grid any of its rows needs, so a row's boundaries can differ
    from its own computation by the grid's error (see GRID_R)."""
    t = _fractions(fractions)
    looks = Looks.spending(t, spent(t, alpha, gamma, family))
    kernels, state, critical = Kernels.of(looks, 0.0), State.start(t.shape[0]), np.full(t.shape, np.inf)
    half = looks.targets / 2  # each tail's share of the look's alpha
    with np.errstate(divide="ignore"):
        log_half = np.log(half)
    # A first guess for Halley's method: the look's marginal quantile (too high: fewer paths continue
    # than start) less the last look's gap between the two, which changes slowly from look to look.
    marginal, gap = ndtri(1 - half), np.zeros(t.shape[0])
    for k in looks.indices():
        step, active = state.step(kernels, k), looks.active[:, k]
        found = step.solve(half[:, k], log_half[:, k], ~active, marginal[:, k] - gap)
        critical[:, k] = np.where(active, found, np.inf)
        gap = np.where(active, marginal[:, k] - critical[:, k], gap)
        state = state.advance(step, critical[:, k], active, spacing(looks.finest[k], r))
    return critical.reshape(np.shape(fractions))


def crossing_probabilities(
    critical: npt.ArrayLike, fractions: npt.ArrayLike, drift: npt.ArrayLike = 0.0, r: int = GRID_R
) -> Crossings:
    """Probabilities of first crossing at each look when E[Z_k] = drift * sqrt(t_k) (drift is
    theta * sqrt(I_max): the z-statistic's mean at fraction 1). Shapes as for `boundaries`, drift
    a number or one per comparison. An infinite boundary is a look that cannot stop."""
    t = _fractions(fractions)
    c = np.broadcast_to(np.atleast_2d(np.asarray(critical, dtype=np.float64)), t.shape)
    looks = Looks.given(t, np.isfinite(c))
    kernels = Kernels.of(looks, np.broadcast_to(np.asarray(drift, dtype=np.float64), t.shape[:1]))
    state, upper, lower = State.start(t.shape[0]), np.zeros(t.shape), np.zeros(t.shape)
    for k in looks.indices():
        step = state.step(kernels, k)
        upper[:, k], lower[:, k] = step.tails(c[:, k], looks.active[:, k])
        state = state.advance(step, c[:, k], looks.active[:, k], spacing(looks.finest[k], r))
    shape = np.shape(fractions)
    return Crossings(upper.reshape(shape), lower.reshape(shape))


def inflation(
    alpha: float, power: float, gamma: float = DEFAULT_GAMMA, looks: int = 5, family: Family = "hsd"
) -> float:
    """I_max / I_fixed: how much more information than the fixed-horizon test (two-sided alpha,
    this power) the design with `looks` equally spaced looks needs for the same power against an
    effect in one direction (crossings of the other boundary do not count as power)."""
    fractions = np.arange(1, looks + 1) / looks
    critical = boundaries(fractions, alpha, gamma, family)
    fixed = float(ndtri(1 - alpha / 2) + ndtri(power))

    def shortfall(drift: float) -> float:
        return float(crossing_probabilities(critical, fractions, drift).upper.sum()) - power

    # Power rises with the drift; the fixed-horizon drift is too small, twice it far too large.
    low, high = fixed, 2 * fixed
    f_low, f_high = shortfall(low), shortfall(high)
    for _ in range(60):  # Illinois: regula falsi that halves a stuck end's value
        middle = high - f_high * (high - low) / (f_high - f_low)
        f_middle = shortfall(middle)
        if abs(f_middle) < 1e-12:
            break
        if f_middle * f_high < 0:
            low, f_low = high, f_high
        else:
            f_low /= 2
        high, f_high = middle, f_middle
    return (middle / fixed) ** 2


def nominal_p_value(z: npt.ArrayLike, critical: npt.ArrayLike, alpha: float) -> Floats:
    """alpha * (2 Phi(-|z|)) / (2 Phi(-c)), capped at 1: below alpha exactly when |z| >= c, the
    design's rejection at this look. It is a valid p-value at each look on its own (for u <= 1,
    P(p <= u) <= u * 2 Phi(-c) / alpha <= u, since no look's nominal level 2 Phi(-c) exceeds
    alpha(t_k) <= alpha). It is not the repeated p-value (Jennison and Turnbull, ch. 9: the smallest
    alpha' at which the design would reject at this look), which is valid across all looks at once
    but needs the whole recursion redone for each alpha' tried, about a dozen times per look."""
    with np.errstate(invalid="ignore"):
        log_p = math.log(alpha) + log_ndtr(-np.abs(np.asarray(z, dtype=np.float64))) - log_ndtr(-np.asarray(critical))
    return np.where(np.isnan(log_p) | (log_p > 0), 1.0, np.exp(np.minimum(log_p, 0.0)))


def repeated_interval(estimate: float, variance: float, critical: float) -> tuple[float, float]:
    """The repeated confidence interval estimate +- c_k sqrt(V_k) (Jennison and Turnbull, ch. 9):
    the intervals of all looks cover the true effect together with probability 1 - alpha."""
    half = critical * math.sqrt(variance)
    return estimate - half, estimate + half


def _fractions(fractions: npt.ArrayLike) -> Floats:
    """Fractions as one row per comparison, checked: positive, finite, increasing, at most the last >= 1."""
    t = np.asarray(fractions, dtype=np.float64)
    if t.ndim not in (1, 2) or t.shape[-1] == 0:
        raise ValueError("fractions: one sequence of looks, or one row of looks per comparison")
    t = t.reshape(-1, t.shape[-1])
    if not np.isfinite(t).all() or (t <= 0).any():
        raise ValueError("fractions must be finite and positive")
    if (np.diff(t, axis=1) <= 0).any():
        raise ValueError("fractions must be increasing")
    if (t[:, :-1] >= 1).any():
        raise ValueError("a fraction >= 1 is the final look: no look may follow it")
    return t
