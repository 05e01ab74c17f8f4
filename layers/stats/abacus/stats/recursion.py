"""The exact recursive numerical integration of Armitage, McPherson and Rowe (1969), as laid out
in Jennison and Turnbull (2000), chapter 19: the machinery under spending.py's boundaries and
crossing probabilities. Z_k is a z-statistic looked at repeatedly, with information fraction t_k
and Corr(Z_j, Z_k) = sqrt(t_j / t_k) (spending.py's docstring).

The sub-density of Z_k on the continuation region is carried from look to look on a grid over
(-c_k, c_k) (the boundaries are its ends), cut at _REACH sd either side of E[Z_k]. Where Jennison
and Turnbull use Simpson's rule on knots 1.5/r sd apart, this grid has Gauss-Legendre's rule of
_NODES points on panels _NODES times that wide: as many points per sd as their knots, half as many
as their Simpson points, and more accurate (degree 11 rather than 3 on each panel); the cost of a
look grows with the square of its points. The grid is made finer where two looks are so close that the
increment's normal kernel is narrower than 1.5/r. A boundary solves its equation by Halley's
method on the log of the tail. Every array operation runs over a batch of comparisons at once (one
row each). A look that adds almost no information (under 0.04% of the information so far) or whose
share of alpha is below 1e-15 gets no boundary (Looks): it cannot reject, and what it would have
spent is spent at the next look.

The pieces: Looks (which looks have a boundary and what each spends), Kernels (how Z_k follows
from the last look with a boundary), State (the sub-density on the last look's grid) and Step
(from that grid to the next look: its tail probabilities, or the boundary that gives a tail);
spacing, the grid's knot spacing for a look.

References: Armitage, McPherson and Rowe (1969), JRSS A 132:235-244; Jennison and Turnbull (2000),
Group Sequential Methods with Applications to Clinical Trials, chapter 19 (numerical computation).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

type Floats = npt.NDArray[np.float64]

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
class Looks:
    """The looks, one row per comparison: which have a boundary, the alpha each spends, and for the
    recursion each look's fraction, the fraction of the last look with a boundary before it, and
    the narrowest kernel its grid must resolve (the smallest over the rows)."""

    fraction: Floats
    previous: Floats
    active: npt.NDArray[np.bool_]
    targets: Floats
    finest: Floats  # (K,)

    @classmethod
    def spending(cls, t: Floats, cumulative: Floats) -> "Looks":
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
    def given(cls, t: Floats, active: npt.NDArray[np.bool_]) -> "Looks":
        looks = np.arange(t.shape[1])
        last = np.maximum.accumulate(np.where(active, looks, -1), axis=1)  # the last look with a boundary
        before = np.pad(last[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
        previous = np.where(before >= 0, np.take_along_axis(t, np.maximum(before, 0), axis=1), 0.0)
        if (active & ~_integrable(t, previous)).any():
            raise ValueError("a look adding under 0.04% of the information so far cannot have a finite boundary")
        return cls._resolved(t, previous, active, np.zeros(t.shape))

    @classmethod
    def _resolved(cls, t: Floats, previous: Floats, active: npt.NDArray[np.bool_], targets: Floats) -> "Looks":
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
class Kernels:
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
    def of(cls, looks: Looks, drift: Floats | float) -> "Kernels":
        t = np.where(looks.active, looks.fraction, looks.previous + 1)
        increment, root_t = t - looks.previous, np.sqrt(t)
        theta = np.asarray(drift, dtype=np.float64).reshape(-1, 1)
        inverse = np.sqrt(t / increment)
        centre = np.broadcast_to(theta * root_t, t.shape)
        shift = np.broadcast_to(theta * increment / root_t, t.shape)
        symmetric = ~(centre != 0).any(axis=0)
        return cls(t, np.sqrt(looks.previous / t), shift, centre, inverse, inverse / math.sqrt(2), symmetric)


@dataclass(frozen=True)
class Step:
    """From the last look's grid to look k: Z_k given grid point j is normal(mean[:, j], 1 / inverse)."""

    mean: Floats  # (C, n)
    weight: Floats  # (C, n): quadrature weight times the sub-density at the last look's grid points
    kernels: Kernels
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
class State:
    """Where the recursion stands, per comparison: the last look with a boundary (its fraction,
    grid and weighted sub-density); before the first look, a point mass at 0."""

    fraction: Floats  # (C,)
    grid: Floats  # (C, n)
    weight: Floats  # (C, n)

    @classmethod
    def start(cls, rows: int) -> "State":
        return cls(np.zeros(rows), np.zeros((rows, 1)), np.ones((rows, 1)))

    def step(self, kernels: Kernels, k: int) -> Step:
        mean = self.grid * kernels.ratio[:, k, None]
        if not kernels.symmetric[k]:
            mean += kernels.shift[:, k, None]
        return Step(mean, self.weight, kernels, k)

    def advance(self, step: Step, critical: Floats, active: npt.NDArray[np.bool_], spacing: float) -> "State":
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

    def _keep(self, active: npt.NDArray[np.bool_], fraction: Floats, grid: Floats, weight: Floats) -> "State":
        """The new look's state where it has a boundary; the old state (padded to one width) elsewhere."""
        if active.all():
            return State(fraction, grid, weight)
        rows, width = grid.shape[0], max(grid.shape[1], self.grid.shape[1])
        kept_grid, kept_weight = np.zeros((rows, width)), np.zeros((rows, width))
        kept_grid[active, : grid.shape[1]], kept_weight[active, : grid.shape[1]] = grid[active], weight[active]
        idle = ~active
        kept_grid[idle, : self.grid.shape[1]] = self.grid[idle]
        kept_weight[idle, : self.grid.shape[1]] = self.weight[idle]
        return State(np.where(active, fraction, self.fraction), kept_grid, kept_weight)


def spacing(finest: float, r: int) -> float:
    """Jennison and Turnbull's knot spacing, 1.5 / r sd, divided until one knot spacing is at most
    the narrowest kernel the look's grid must resolve."""
    return 1.5 / (r * max(1.0, math.ceil(1.5 / (r * finest))))


def _convolve(grid: Floats, step: Step) -> Floats:
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
