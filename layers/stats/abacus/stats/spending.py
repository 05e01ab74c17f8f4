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

Boundaries come from the exact recursive numerical integration of Armitage, McPherson and Rowe
(1969), as laid out in Jennison and Turnbull (2000), chapter 19: the sub-density of Z_k on the
continuation region is carried from look to look on a grid over (-c_k, c_k) (the boundaries are
its ends), cut at _REACH sd either side of E[Z_k]. Where they use Simpson's rule on knots 1.5/r sd
apart, this grid has Gauss-Legendre's rule of _NODES points on panels _NODES times that wide:
as many points per sd as their knots, half as many as their Simpson points, and more accurate
(degree 11 rather than 3 on each panel); the cost of a look grows with the square of its points.
The grid is made finer where two looks are so close that the increment's normal kernel is
narrower than 1.5/r. The boundary solves its equation by Halley's method on the log of the tail.
Every array operation runs over a batch of comparisons at once (one row each). A look that adds
almost no information (under 0.04% of the information so far) or whose share of alpha is below
1e-15 gets an infinite boundary: it cannot reject, and what it would have spent is spent at the
next look.

References: Lan and DeMets (1983), Biometrika 70:659-663; Hwang, Shih and DeCani (1990), Stat Med
9:1439-1445; Armitage, McPherson and Rowe (1969), JRSS A 132:235-244; Jennison and Turnbull (2000),
Group Sequential Methods with Applications to Clinical Trials, chapters 7 (spending), 9 (repeated
confidence intervals and p-values) and 19 (numerical computation).
"""

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import log_ndtr, ndtr, ndtri

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
# Jennison and Turnbull's grid parameter: points 1.5/r sd apart. They recommend r = 16 with Simpson's
# rule (gsDesign uses 18); with this grid's rule and 30 nightly looks, r = 12 puts every boundary
# within 1e-5 of the exact one (r = 16: 2e-6) and the type I error within 3e-7 of alpha, for about
# 15% less time (bench/spending_speed.py).
GRID_R = 12
# A look whose increment's kernel (in Z units) is narrower than this cannot be integrated on any
# sensible grid; it adds under 0.04% of the information so far and is left without a boundary.
_NARROWEST = 0.02
# A share of alpha below this is not spent (the look gets an infinite boundary).
_SMALLEST_SPEND = 1e-15
_NEWTON_STEPS = 12
_TOLERANCE = 1e-2
# The grid reaches this many standard deviations either side of E[Z_k]: the normal's mass beyond is 2e-17.
_REACH = 8.5
# Gauss-Legendre points per panel (bench/spending_speed.py's accuracy with 4 points on panels 3
# times 1.5/r wide was 9e-6, with 6 on 6 times as wide 1e-5, for 15% less time).
_NODES = 6
_SQRT_2PI = math.sqrt(2 * math.pi)


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
    looks = _Looks.spending(t, spent(t, alpha, gamma, family))
    kernels, state, critical = _Kernels.of(looks, 0.0), _State.start(t.shape[0]), np.full(t.shape, np.inf)
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
        state = state.advance(step, critical[:, k], active, _spacing(looks.finest[k], r))
    return critical.reshape(np.shape(fractions))


def crossing_probabilities(
    critical: npt.ArrayLike, fractions: npt.ArrayLike, drift: npt.ArrayLike = 0.0, r: int = GRID_R
) -> Crossings:
    """Probabilities of first crossing at each look when E[Z_k] = drift * sqrt(t_k) (drift is
    theta * sqrt(I_max): the z-statistic's mean at fraction 1). Shapes as for `boundaries`, drift
    a number or one per comparison. An infinite boundary is a look that cannot stop."""
    t = _fractions(fractions)
    c = np.broadcast_to(np.atleast_2d(np.asarray(critical, dtype=np.float64)), t.shape)
    looks = _Looks.given(t, np.isfinite(c))
    kernels = _Kernels.of(looks, np.broadcast_to(np.asarray(drift, dtype=np.float64), t.shape[:1]))
    state, upper, lower = _State.start(t.shape[0]), np.zeros(t.shape), np.zeros(t.shape)
    for k in looks.indices():
        step = state.step(kernels, k)
        upper[:, k], lower[:, k] = step.tails(c[:, k], looks.active[:, k])
        state = state.advance(step, c[:, k], looks.active[:, k], _spacing(looks.finest[k], r))
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


@dataclass(frozen=True)
class _Looks:
    """The looks, one row per comparison: which have a boundary, the alpha each spends, and for the
    recursion each look's fraction, the fraction of the last look with a boundary before it, and
    the narrowest kernel its grid must resolve (the smallest over the rows)."""

    fraction: Floats
    previous: Floats
    active: npt.NDArray[np.bool_]
    targets: Floats
    finest: Floats  # (K,)

    @classmethod
    def spending(cls, t: Floats, cumulative: Floats) -> "_Looks":
        """Each look spends all of alpha(t_k) not yet spent, unless that is below _SMALLEST_SPEND or
        the look adds too little information to integrate: then it gets no boundary."""
        previous = np.pad(t[:, :-1], ((0, 0), (1, 0)))
        targets = np.diff(cumulative, axis=1, prepend=0.0)
        active = _integrable(t, previous) & (targets >= _SMALLEST_SPEND)
        if not active.all():  # what a look without a boundary leaves passes on: one look at a time
            active, targets, previous = np.zeros(t.shape, dtype=bool), np.zeros(t.shape), np.zeros(t.shape)
            last_t, last_spent = np.zeros(t.shape[0]), np.zeros(t.shape[0])
            for k in range(t.shape[1]):
                previous[:, k], targets[:, k] = last_t, cumulative[:, k] - last_spent
                active[:, k] = _integrable(t[:, k], last_t) & (targets[:, k] >= _SMALLEST_SPEND)
                last_t = np.where(active[:, k], t[:, k], last_t)
                last_spent = np.where(active[:, k], cumulative[:, k], last_spent)
        return cls._resolved(t, previous, active, targets)

    @classmethod
    def given(cls, t: Floats, active: npt.NDArray[np.bool_]) -> "_Looks":
        looks = np.arange(t.shape[1])
        last = np.maximum.accumulate(np.where(active, looks, -1), axis=1)  # the last look with a boundary
        before = np.pad(last[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
        previous = np.where(before >= 0, np.take_along_axis(t, np.maximum(before, 0), axis=1), 0.0)
        if (active & ~_integrable(t, previous)).any():
            raise ValueError("a look adding under 0.04% of the information so far cannot have a finite boundary")
        return cls._resolved(t, previous, active, np.zeros(t.shape))

    @classmethod
    def _resolved(cls, t: Floats, previous: Floats, active: npt.NDArray[np.bool_], targets: Floats) -> "_Looks":
        """The narrowest feature the grid at each look must resolve: its own kernel's width, or the
        next look's kernel as a function of this look's Z, sqrt((t_next - t_k) / t_k)."""
        count = t.shape[1]
        upcoming = np.where(active, np.arange(count), count)
        upcoming = np.minimum.accumulate(upcoming[:, ::-1], axis=1)[:, ::-1]  # the next look with a boundary
        after = np.pad(upcoming[:, 1:], ((0, 0), (0, 1)), constant_values=count)
        following = np.where(after < count, np.take_along_axis(t, np.minimum(after, count - 1), axis=1), np.inf)
        width = np.minimum(np.sqrt((t - previous) / t), np.sqrt((following - t) / t))
        finest = np.where(active, width, np.inf).min(axis=0)
        return cls(t, previous, active, targets, finest)

    def indices(self) -> list[int]:
        return [k for k in range(self.fraction.shape[1]) if self.active[:, k].any()]


def _integrable(t: Floats, previous: Floats) -> npt.NDArray[np.bool_]:
    """Whether the look adds enough information since the previous one for its kernel to be integrated."""
    result: npt.NDArray[np.bool_] = t - previous >= _NARROWEST**2 * t
    return result


@dataclass(frozen=True)
class _Kernels:
    """Per comparison and look, how Z_k follows from the last look with a boundary: Z_k = ratio *
    Z_prev + shift + scale * N(0, 1), ratio = sqrt(t_prev / t_k), scale = sqrt((t_k - t_prev) / t_k),
    shift = drift (t_k - t_prev) / sqrt(t_k); E[Z_k] = centre = drift sqrt(t_k). Computed for all
    looks at once, before the recursion, with the constants the recursion needs of them. A look
    without a boundary is computed as one a whole fraction after the last (harmless: its row keeps
    its state)."""

    fraction: Floats
    ratio: Floats
    shift: Floats
    centre: Floats
    inverse: Floats  # 1 / scale
    exponent: Floats  # 1 / (sqrt(2) scale): the kernel is exp(-((x - m) exponent)^2)
    symmetric: npt.NDArray[np.bool_]  # (K,): no drift, so every sub-density is symmetric about 0

    @classmethod
    def of(cls, looks: _Looks, drift: Floats | float) -> "_Kernels":
        t = np.where(looks.active, looks.fraction, looks.previous + 1)
        increment, root_t = t - looks.previous, np.sqrt(t)
        theta = np.asarray(drift, dtype=np.float64).reshape(-1, 1)
        inverse = np.sqrt(t / increment)
        centre = np.broadcast_to(theta * root_t, t.shape)
        shift = np.broadcast_to(theta * increment / root_t, t.shape)
        symmetric = ~(centre != 0).any(axis=0)
        return cls(t, np.sqrt(looks.previous / t), shift, centre, inverse, inverse / math.sqrt(2), symmetric)


@dataclass(frozen=True)
class _Step:
    """From the last look's grid to look k: Z_k given grid point j is normal(mean[:, j], 1 / inverse)."""

    mean: Floats  # (C, n)
    weight: Floats  # (C, n): quadrature weight times the sub-density at the last look's grid points
    kernels: _Kernels
    k: int

    def tails(self, critical: Floats, active: npt.NDArray[np.bool_]) -> tuple[Floats, Floats]:
        c = np.where(active, critical, np.inf)[:, None]
        inverse = self.kernels.inverse[:, self.k, None]
        upper = np.einsum("ij,ij->i", self.weight, ndtr((self.mean - c) * inverse))
        return upper, np.einsum("ij,ij->i", self.weight, ndtr((-c - self.mean) * inverse))

    def solve(self, half: Floats, log_half: Floats, idle: npt.NDArray[np.bool_], guess: Floats) -> Floats:
        """c with P(|Z_k| >= c, no earlier crossing) = 2 half under H0, where the sub-density and
        its grid are symmetric about 0, so each tail holds half: Halley's method on the log of the
        lower tail, f(c) = log T(c) - log half, which is concave and nearly linear in c. Its error
        falls with the cube of the last one's, so a step below _TOLERANCE leaves c within about
        1e-7; from `guess` (within about 0.1 of the root) that takes two evaluations of T and its
        first two derivatives. Rows `idle` (without a boundary here) are not waited for; their
        answers are not used. Bisection if it does not converge."""
        inverse = self.kernels.inverse[:, self.k]
        base = self.mean * -inverse[:, None]
        # D and Q, the sums of w phi(q) and w q phi(q), give -T' = a = D / (s sqrt(2 pi)) and
        # -T'' = b = Q / (s^2 sqrt(2 pi)).
        to_a = inverse / _SQRT_2PI
        to_b = to_a * inverse
        c: Floats = guess
        with np.errstate(divide="ignore", invalid="ignore"):
            for iteration in range(_NEWTON_STEPS):
                q = base - (c * inverse)[:, None]
                phi = np.exp(q * q * -0.5)
                tail = np.einsum("ij,ij->i", self.weight, ndtr(q))
                a, b = (
                    np.einsum("ij,ij->i", self.weight, phi) * to_a,
                    np.einsum("ij,ij->i", self.weight, q * phi) * to_b,
                )
                value, a_squared = np.log(tail) - log_half, a * a
                # Halley's step for f, written with T, a and b.
                step = 2 * value * a * tail / (2 * a_squared + value * (b * tail + a_squared))
                c = c + step
                if iteration and ((np.abs(step) < _TOLERANCE) | idle).all():
                    return c
        return self._bisect(half)

    def _bisect(self, half: Floats) -> Floats:
        low, high = np.zeros_like(half), ndtri(1 - half) + 1
        for _ in range(60):
            middle = 0.5 * (low + high)
            q = (-middle[:, None] - self.mean) * self.kernels.inverse[:, self.k, None]
            above = np.einsum("ij,ij->i", self.weight, ndtr(q)) > half
            low, high = np.where(above, middle, low), np.where(above, high, middle)
        return 0.5 * (low + high)


@dataclass(frozen=True)
class _State:
    """Where the recursion stands, per comparison: the last look with a boundary (its fraction,
    grid and weighted sub-density); before the first look, a point mass at 0."""

    fraction: Floats  # (C,)
    grid: Floats  # (C, n)
    weight: Floats  # (C, n)

    @classmethod
    def start(cls, rows: int) -> "_State":
        return cls(np.zeros(rows), np.zeros((rows, 1)), np.ones((rows, 1)))

    def step(self, kernels: _Kernels, k: int) -> _Step:
        mean = self.grid * kernels.ratio[:, k, None]
        if not kernels.symmetric[k]:
            mean += kernels.shift[:, k, None]
        return _Step(mean, self.weight, kernels, k)

    def advance(self, step: _Step, critical: Floats, active: npt.NDArray[np.bool_], spacing: float) -> "_State":
        """The sub-density at look k over (-c_k, c_k), cut at _REACH sd either side of E[Z_k], on
        Gauss-Legendre panels of _NODES points at most `spacing` apart on average."""
        kernels, k = step.kernels, step.k
        c = np.where(active, critical, np.inf)
        if kernels.symmetric[k]:  # centred on 0
            high = np.minimum(c, _REACH)
            low, span = -high, 2 * high
        else:
            centre = kernels.centre[:, k]
            low = np.maximum(-c, centre - _REACH)
            span = np.maximum(np.minimum(c, centre + _REACH) - low, 0.0)
        unit, unit_weight = _gauss_legendre(max(1, math.ceil(float(span[active].max()) / (_NODES * spacing))))
        grid = low[:, None] + span[:, None] * unit
        weight = span[:, None] * unit_weight * _convolve(grid, step)
        return self._keep(active, kernels.fraction[:, k], grid, weight)

    def _keep(self, active: npt.NDArray[np.bool_], fraction: Floats, grid: Floats, weight: Floats) -> "_State":
        """The new look's state where it has a boundary; the old state (padded to one width) elsewhere."""
        if active.all():
            return _State(fraction, grid, weight)
        rows, width = grid.shape[0], max(grid.shape[1], self.grid.shape[1])
        kept_grid, kept_weight = np.zeros((rows, width)), np.zeros((rows, width))
        kept_grid[active, : grid.shape[1]], kept_weight[active, : grid.shape[1]] = grid[active], weight[active]
        idle = ~active
        kept_grid[idle, : self.grid.shape[1]] = self.grid[idle]
        kept_weight[idle, : self.grid.shape[1]] = self.weight[idle]
        return _State(np.where(active, fraction, self.fraction), kept_grid, kept_weight)


def _spacing(finest: float, r: int) -> float:
    """Jennison and Turnbull's knot spacing, 1.5 / r sd, divided until one knot spacing is at most
    the narrowest kernel the look's grid must resolve."""
    return 1.5 / (r * max(1.0, math.ceil(1.5 / (r * finest))))


def _convolve(grid: Floats, step: _Step) -> Floats:
    """The sub-density of Z_k at the grid's points: sum over the last grid of weight times the
    normal kernel. Under symmetry (H0) only the upper half is computed, the lower half mirrored
    (the grid's points are symmetric about 0; with an odd count, the middle one is 0)."""
    count, symmetric = grid.shape[1], bool(step.kernels.symmetric[step.k])
    middle = count // 2 if symmetric else 0
    exponent = step.kernels.exponent[:, step.k, None]
    # exp(-(x - m)^2 / (2 s^2)) over (rows, points, last grid's points): the difference in double
    # precision, its square, exponential and the sum in single (three times faster here; relative
    # error of the kernel under 3e-6 where it is above 1e-15, of the sum about 1e-7).
    kernel = ((grid[:, middle:] * exponent)[:, :, None] - (step.mean * exponent)[:, None, :]).astype(np.float32)
    np.square(kernel, out=kernel)
    np.negative(kernel, out=kernel)
    np.exp(kernel, out=kernel)
    weight = step.weight.astype(np.float32)[:, :, None]
    upper: Floats = np.matmul(kernel, weight)[:, :, 0] * (exponent * (1 / math.sqrt(math.pi)))
    if not symmetric:
        return upper
    return np.concatenate([upper[:, :0:-1] if count % 2 else upper[:, ::-1], upper], axis=1)


@functools.cache
def _gauss_legendre(panels: int) -> tuple[Floats, Floats]:
    """The nodes and weights of Gauss-Legendre's rule of _NODES points on each of `panels` equal
    panels over [0, 1] (exact for polynomials up to degree 2 _NODES - 1 on each panel)."""
    nodes, weights = np.polynomial.legendre.leggauss(_NODES)
    left = np.arange(panels)[:, None] / panels
    points = (left + (nodes + 1) / (2 * panels)).ravel()
    scaled = np.tile(weights / (2 * panels), panels)
    points.flags.writeable = scaled.flags.writeable = False
    return points, scaled
