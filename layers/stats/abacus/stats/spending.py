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
continuation region is carried from look to look on a grid of about 6r - 1 points (see GRID_R),
spaced 1.5/r apart around the mean and logarithmically in the tails, cut at the boundaries
(which are grid points), with Simpson's rule between them; the boundary solves its equation by
Newton's method on the log of the tail. The grid is made finer where two looks are so close that
the increment's normal kernel is narrower than a panel. Every array operation runs over a batch
of comparisons at once (one row each). A look that adds almost no information (under 0.04% of
the information so far) or whose share of alpha is below 1e-15 gets an infinite boundary: it
cannot reject, and what it would have spent is spent at the next look.

References: Lan and DeMets (1983), Biometrika 70:659-663; Hwang, Shih and DeCani (1990), Stat Med
9:1439-1445; Armitage, McPherson and Rowe (1969), JRSS A 132:235-244; Jennison and Turnbull (2000),
Group Sequential Methods with Applications to Clinical Trials, chapters 7 (spending), 9 (repeated
confidence intervals and p-values) and 19 (numerical computation).
"""

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
# Jennison and Turnbull's grid parameter: 6r - 1 points per look over +-(3 + 4 log r) sd, then cut
# at the boundaries. They recommend r = 16 (gsDesign uses 18); with 30 nightly looks r = 12 puts
# every boundary within 1e-3 of the exact one (r = 16: 3e-4) and the type I error within 3e-6 of
# alpha, for about 20% less time (bench/spending_speed.py).
GRID_R = 12
# A look whose increment's kernel (in Z units) is narrower than this cannot be integrated on any
# sensible grid; it adds under 0.04% of the information so far and is left without a boundary.
_NARROWEST = 0.02
# A share of alpha below this is not spent (the look gets an infinite boundary).
_SMALLEST_SPEND = 1e-15
_NEWTON_STEPS = 12
_TOLERANCE = 1e-3
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
    state, critical = _State.start(t.shape[0]), np.full(t.shape, np.inf)
    gap = np.zeros(t.shape[0])  # the last look's marginal quantile minus its boundary: a good first guess
    for k in looks.indices():
        step = state.step(looks, k, 0.0)
        marginal = ndtri(1 - looks.targets[:, k] / 2)
        critical[:, k] = np.where(looks.active[:, k], step.solve(looks.targets[:, k], looks.active[:, k], gap), np.inf)
        gap = np.where(looks.active[:, k], marginal - critical[:, k], gap)
        state = state.advance(step, critical[:, k], looks.active[:, k], looks.finest[k], r)
    return critical.reshape(np.shape(fractions))


def crossing_probabilities(
    critical: npt.ArrayLike, fractions: npt.ArrayLike, drift: npt.ArrayLike = 0.0, r: int = GRID_R
) -> Crossings:
    """Probabilities of first crossing at each look when E[Z_k] = drift * sqrt(t_k) (drift is
    theta * sqrt(I_max): the z-statistic's mean at fraction 1). Shapes as for `boundaries`, drift
    a number or one per comparison. An infinite boundary is a look that cannot stop."""
    t = _fractions(fractions)
    c = np.broadcast_to(np.atleast_2d(np.asarray(critical, dtype=np.float64)), t.shape)
    theta = np.broadcast_to(np.asarray(drift, dtype=np.float64), t.shape[:1])
    looks = _Looks.given(t, np.isfinite(c))
    state, upper, lower = _State.start(t.shape[0]), np.zeros(t.shape), np.zeros(t.shape)
    for k in looks.indices():
        step = state.step(looks, k, theta)
        upper[:, k], lower[:, k] = step.tails(c[:, k], looks.active[:, k])
        state = state.advance(step, c[:, k], looks.active[:, k], looks.finest[k], r)
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


def _to_u(z: Floats, r: int) -> Floats:
    """Jennison and Turnbull's grid index (divided by r) of a point z sd from the mean: 1.5 / r
    apart within 3 sd, logarithmically spaced beyond, clipped to the grid's ends."""
    distance = np.minimum(np.abs(z), 3 + 4 * math.log(r))
    near = np.where(distance > 3, np.exp((3 - distance) / 4), 1 + (3 - distance) / 1.5)  # from the nearer end
    return np.where(z < 0, near, 6 - near)


def _from_u(u: Floats) -> Floats:
    near = np.minimum(u, 6 - u)  # the distance to the nearer end of the grid's index range
    return np.where(near < 1, np.copysign(3 - 4 * np.log(near), u - 3), 1.5 * (u - 3))


@dataclass(frozen=True)
class _Step:
    """From the last look's grid to look k: Z_k given grid point j is normal(mean[:, j], scale)."""

    mean: Floats  # (C, n)
    scale: Floats  # (C,)
    weight: Floats  # (C, n): Simpson weight times the sub-density at the last look's grid points
    centre: Floats  # (C,): E[Z_k], where look k's grid is centred
    fraction: Floats  # (C,): t_k

    def tails(self, critical: Floats, active: npt.NDArray[np.bool_]) -> tuple[Floats, Floats]:
        c = np.where(active, critical, np.inf)[:, None]
        s = self.scale[:, None]
        upper = np.einsum("ij,ij->i", self.weight, ndtr((self.mean - c) / s))
        return upper, np.einsum("ij,ij->i", self.weight, ndtr((-c - self.mean) / s))

    def solve(self, target: Floats, active: npt.NDArray[np.bool_], gap: Floats) -> Floats:
        """c with P(|Z_k| >= c, no earlier crossing) = target under H0, where the sub-density and its
        grid are symmetric about 0, so each tail holds half: Newton on the log of the lower tail,
        which is concave and nearly linear in c. It starts from the marginal quantile less the last
        look's gap between the two (the marginal quantile is too high: continuing paths are fewer
        than all paths); from either side of the root, it converges without overshooting twice.
        Bisection if it does not converge."""
        half = 0.5 * np.where(active, target, 0.5 * self.weight.sum(1))
        inverse, gain, idle = 1 / self.scale, self.scale * _SQRT_2PI, ~active
        base = self.mean * -inverse[:, None]
        c: Floats = ndtri(1 - half) - gap
        with np.errstate(divide="ignore", invalid="ignore"):
            for _ in range(_NEWTON_STEPS):
                q = base - (c * inverse)[:, None]
                tail = np.einsum("ij,ij->i", self.weight, ndtr(q))
                density = np.einsum("ij,ij->i", self.weight, np.exp(q * q * -0.5))
                step = np.log(tail / half) * tail * gain / density
                c = c + step
                # Quadratic convergence: after a step this small, c is within ~1e-6.
                if ((np.abs(step) < _TOLERANCE) | idle).all():
                    return c
        return self._bisect(half)

    def _bisect(self, half: Floats) -> Floats:
        low, high = np.zeros_like(half), ndtri(1 - half) + 1
        for _ in range(60):
            middle = 0.5 * (low + high)
            q = (-middle[:, None] - self.mean) / self.scale[:, None]
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

    def step(self, looks: _Looks, k: int, drift: Floats | float) -> _Step:
        """Z_k = (Z_prev sqrt(t_prev) + increment) / sqrt(t_k), the increment normal(drift (t_k - t_prev),
        t_k - t_prev). Rows without a boundary here are computed harmlessly, then dropped."""
        active = looks.active[:, k]
        t = np.where(active, looks.fraction[:, k], self.fraction + 1)
        increment, root_t = t - self.fraction, np.sqrt(t)
        mean = self.grid * np.sqrt(self.fraction / t)[:, None] + (drift * increment / root_t)[:, None]
        return _Step(mean, np.sqrt(increment / t), self.weight, drift * root_t, t)

    def advance(self, step: _Step, critical: Floats, active: npt.NDArray[np.bool_], finest: float, r: int) -> "_State":
        """The sub-density at look k on a grid over (-c_k, c_k), within the grid's reach around E[Z_k];
        `finest`: the narrowest kernel the grid must resolve (one Simpson panel per its sd)."""
        symmetric = not step.centre.any()
        reach = 3 + 4 * math.log(r)
        c = np.where(active, critical, np.inf)
        low = np.maximum(-c, step.centre - reach)
        high = np.maximum(np.minimum(c, step.centre + reach), low)
        u_low, u_high = _to_u(np.stack([low, high]) - step.centre, r)
        finer = max(1.0, math.ceil(1.5 / (r * finest)))
        knots = max(2, math.ceil(float(((u_high - u_low)[active]).max()) * r * finer) + 1)
        u = u_low[:, None] + (u_high - u_low)[:, None] * (np.arange(knots) / (knots - 1))
        grid, weight = _simpson(step.centre[:, None] + _from_u(u))
        weight *= _convolve(grid, step, symmetric)
        return self._keep(active, step.fraction, grid, weight)

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


def _convolve(grid: Floats, step: _Step, symmetric: bool) -> Floats:
    """The sub-density of Z_k at the grid's points: sum over the last grid of weight times the
    normal kernel. Under symmetry (H0) only the upper half is computed, the lower half mirrored."""
    middle = grid.shape[1] // 2 if symmetric else 0
    factor = 1 / (math.sqrt(2) * step.scale[:, None])
    # exp(-(x - m)^2 / (2 s^2)) over (rows, points, last grid's points): the exponential in single
    # precision (four times faster here; relative error 6e-8), the sum in double.
    kernel = (grid[:, middle:] * factor)[:, :, None] - (step.mean * factor)[:, None, :]
    np.square(kernel, out=kernel)
    single = kernel.astype(np.float32)
    np.negative(single, out=single)
    np.exp(single, out=single)
    kernel[...] = single
    upper: Floats = np.matmul(kernel, step.weight[:, :, None])[:, :, 0] * (factor / math.sqrt(math.pi))
    if not symmetric:
        return upper
    return np.concatenate([upper[:, :0:-1], upper], axis=1)


def _simpson(knots: Floats) -> tuple[Floats, Floats]:
    """Knots and their midpoints, with Simpson's weights for each panel between two knots."""
    rows, count = knots.shape
    points = np.empty((rows, 2 * count - 1))
    points[:, ::2] = knots
    points[:, 1::2] = 0.5 * (knots[:, 1:] + knots[:, :-1])
    sixth = np.diff(knots, axis=1) / 6
    weights = np.zeros_like(points)
    weights[:, :-1:2] += sixth
    weights[:, 2::2] += sixth
    weights[:, 1::2] = 4 * sixth
    return points, weights
