"""Multi-armed bandits (issue 34): each variant's mean under weights that change over time, and the
next weights, by Thompson sampling on those means' posteriors.

Phases. Each reweighting starts a phase; a user belongs to the phase of their first exposure, and
their outcome counts there. Per phase and variant the nightly job keeps sufficient statistics
(exposures, sum, sum of squares), as for any metric.

Each variant's mean, stratified by phase. Pooling a variant's users across phases weights each
phase by that variant's own traffic in it, so when the outcome drifts over time (a weekend, a
campaign) a variant that got its traffic late is compared on other days than one that got it early:
biased. Here every variant's phases are weighted alike, by the phase's share of all exposed users,
s_p = N_p / N:
  mean_v = sum_p s_p * mean_{v,p},   var(mean_v) = sum_p s_p^2 * spread_v / n_{v,p}
the mean variant v would have had, had every user been shown v. spread_v, the variance of one
user's outcome on v, is estimated once from all of v's users about their phases' own means: a
variant held at its floor has a few users a phase, whose own spread would swing (or, all 0s, be
none) and make its interval too wide or too narrow. Within a phase, assignment is at
random with fixed weights, so mean_{v,p} is unbiased for that phase's mean whatever the earlier
phases showed; the weights s_p depend only on how many users came, not on their outcomes. A phase
where some variant has fewer than MIN_CELL users is merged into the next (or, the last, into the
one before): its weight is kept, its cells are filled.

Each mean's interval. A conversion's is Korn and Graubard's (1998), the interval the NCHS's
standards for proportions from complex samples prescribe: Clopper-Pearson's exact binomial
interval at the variant's effective number of users, n_eff = 1 / sum_p s_p^2 / n_{v,p} (the
number of users who, drawn simply, would give the stratified mean its variance; Kish), with
n_eff * mean conversions. The normal interval (mean +- z * sd) is too narrow here: a variant
Thompson sampling starves had few conversions, so its rate, and with it the spread its sd is
computed from, is low exactly when its interval must reach higher (93.1% coverage at 10 arms
against 95.0% for this one, bench/bandit_simulation.py). A mean metric's interval is the normal
one, with one more rule: a variant's spread is never taken below the spread of all the variants'
users pooled (each about its phase's mean). For a skewed metric (revenue: most users at 0, a few
big buyers) a variant the sampler starved has its mean and its spread low together, when its few
users have not yet included a big buyer: its interval would be narrow exactly when it is low
(88.5% coverage on a revenue metric at 5 arms; 96.0% with the rule). A variant truly more spread
than the others keeps its own.

Thompson sampling. A variant's probability to be shown is its posterior probability to be best
(the allocation Thompson sampling draws at random, computed exactly: bayesian.best_and_loss). The
posterior of each mean is Normal(mean_v, var(mean_v)) above. Top-two Thompson sampling (Russo,
2016) shows the leader with probability beta and otherwise the challenger, the best once the
leader is set aside: variant i is shown with probability
  psi_i = p_i * (beta + (1 - beta) * sum_{j != i} p_j / (1 - p_j))
which spends more on the runner-up, for finding the best arm rather than exploiting it.

Safety (next_weights). No change before every variant has `burn_in` exposures; every variant keeps
at least `floor`; one reweighting moves no weight by more than `max_step`; a frozen variant (a
harmed guardrail) goes to the floor at once, whatever the step.
"""

import math
import operator
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np
from scipy.special import betaincinv, ndtri

from abacus.stats.bayesian import best_and_loss
from abacus.stats.posteriors import NormalPosteriors

MIN_CELL = 2  # users of one variant in one phase for its variance to be estimable
TOP_TWO_BETA = 0.5


@dataclass(frozen=True)
class Cell:
    """One variant's users first exposed in one phase: how many, and the sum and sum of squares
    of their outcomes (a conversion's outcome is 0 or 1, so sum_squares = total)."""

    exposures: int
    total: float
    sum_squares: float

    def __add__(self, other: "Cell") -> "Cell":
        return Cell(self.exposures + other.exposures, self.total + other.total, self.sum_squares + other.sum_squares)

    @property
    def mean(self) -> float:
        return self.total / self.exposures

    @property
    def variance(self) -> float:
        """The sample variance; for a cell of only 0s or only 1s, that of one success more and one
        failure more (Agresti-Coull's add-two), so a small cell is never certain."""
        n = self.exposures
        spread = (self.sum_squares - self.total * self.total / n) / (n - 1)
        if spread > 0:
            return spread
        if self.sum_squares == self.total:  # 0/1 outcomes, all alike
            p = (self.total + 1) / (n + 2)
            return p * (1 - p)
        return 0.0


# A phase: one Cell per variant, in the variants' order.
type Phase = Sequence[Cell]


@dataclass(frozen=True)
class Estimate:
    """Each variant's stratified mean and its standard error, in the variants' order; for a
    conversion (`effective_users` given) each variant's effective number of users."""

    means: tuple[float, ...]
    standard_errors: tuple[float, ...]
    effective_users: tuple[float, ...] | None = None

    def interval(self, variant: int, level: float = 0.95) -> tuple[float, float]:
        """The mean's interval: Korn-Graubard's for a conversion, else the normal one."""
        mean = self.means[variant]
        if self.effective_users is not None:
            return korn_graubard(mean, self.effective_users[variant], level)
        z = float(ndtri(0.5 + level / 2))
        se = self.standard_errors[variant]
        return mean - z * se, mean + z * se


def korn_graubard(rate: float, effective_users: float, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson's interval for `rate` seen over `effective_users` (not a whole number in
    general): the Beta quantiles of the exact binomial interval at x = rate * effective_users."""
    tail = (1 - level) / 2
    successes = rate * effective_users
    failures = effective_users - successes
    low = float(betaincinv(successes, failures + 1, tail)) if successes > 0 else 0.0
    high = float(betaincinv(successes + 1, failures, 1 - tail)) if failures > 0 else 1.0
    return low, high


def _merged(phases: Sequence[Phase]) -> list[list[Cell]]:
    """Phases with a cell under MIN_CELL merged into the next one (the last into the one before)."""
    merged: list[list[Cell]] = []
    pending: list[Cell] | None = None
    for phase in phases:
        cells = list(phase) if pending is None else [a + b for a, b in zip(pending, phase, strict=True)]
        if min(cell.exposures for cell in cells) >= MIN_CELL:
            merged.append(cells)
            pending = None
        else:
            pending = cells
    if pending is not None:
        if not merged:
            raise ValueError(f"every variant needs at least {MIN_CELL} exposed users for an estimate")
        merged[-1] = [a + b for a, b in zip(merged[-1], pending, strict=True)]
    return merged


def stratified(phases: Sequence[Phase]) -> Estimate:
    """Each variant's mean with every phase weighted by its share of all exposed users."""
    if not phases or len({len(phase) for phase in phases}) != 1:
        raise ValueError("phases must be given, each with one cell per variant")
    strata = _merged(phases)
    sizes = np.array([sum(cell.exposures for cell in phase) for phase in strata], dtype=float)
    shares = sizes / sizes.sum()
    means = np.array([[cell.mean for cell in phase] for phase in strata])
    # Each variant's spread is estimated once, from all its users (about its phases' own means):
    # a variant held at its floor has a few users a phase, too few to estimate a spread from.
    counts = np.array([[cell.exposures for cell in phase] for phase in strata], dtype=float)
    within = np.array([[cell.sum_squares - cell.total * cell.mean for cell in phase] for phase in strata])
    spread = within.sum(axis=0) / (counts.sum(axis=0) - len(strata))
    conversions = all(cell.sum_squares == cell.total for phase in strata for cell in phase)  # 0/1 outcomes
    if not conversions:
        # A mean's spread is never taken below all the variants' users' pooled one (module docstring).
        spread = np.maximum(spread, within.sum() / (counts.sum() - counts.size))
    for v in map(int, np.flatnonzero(spread <= 0)):  # every outcome alike: the variant's own Cell rule
        spread[v] = reduce(operator.add, (phase[v] for phase in strata)).variance
    variances = spread / counts
    estimate = shares @ means
    standard_errors = np.sqrt((shares**2) @ variances)
    effective = tuple(map(float, 1 / ((shares**2) @ (1 / counts)))) if conversions else None
    return Estimate(tuple(map(float, estimate)), tuple(map(float, standard_errors)), effective)


def probability_best(estimate: Estimate) -> tuple[list[float], list[float]]:
    """Each variant's posterior probability to be best (higher is better) and the expected loss of
    choosing it, in the metric's units, under Normal posteriors of the stratified means."""
    # A zero standard error (every outcome alike, a mean metric) would be a point mass: floor it
    # far below any difference that matters, as analysis.py does.
    floor = 1e-12 * max(1.0, max(abs(mean) for mean in estimate.means))
    sds = np.maximum(np.array(estimate.standard_errors), floor)
    best, loss = best_and_loss(NormalPosteriors(np.array(estimate.means), sds))
    return [float(p) for p in best], [float(x) for x in loss]


def top_two(best: Sequence[float], beta: float = TOP_TWO_BETA) -> list[float]:
    """Top-two Thompson sampling's probability to show each variant, from each one's probability
    to be best: the leader with probability beta, else the best of the others."""
    if not 0 < beta < 1:
        raise ValueError("beta must be strictly between 0 and 1")
    p = np.clip(np.array(best, dtype=float), 0.0, 1.0)
    leader = p >= 1 - 1e-12
    if leader.any():  # one variant certain: the challenger is drawn from the others alike
        others = np.where(leader, 0.0, 1.0 / max(1, len(p) - int(leader.sum())))
        return [float(x) for x in np.where(leader, beta, (1 - beta) * others)]
    challenger = p / (1 - p)
    shown = p * (beta + (1 - beta) * (challenger.sum() - challenger))
    return [float(x) for x in shown / shown.sum()]


@dataclass(frozen=True)
class Safety:
    """The bounds on one reweighting (issue 34): a floor per variant, a most a weight may move, and
    a burn-in of exposures every variant needs before the first change."""

    floor: float = 0.01
    max_step: float = 0.2
    burn_in: int = 100

    def check(self, variants: int) -> None:
        if not 0 <= self.floor or self.floor * variants > 1:
            raise ValueError(f"floor: {variants} variants cannot each keep {self.floor:.0%}")
        if not 0 < self.max_step <= 1:
            raise ValueError("max_step: must be above 0 and at most 1")
        if self.burn_in < 0:
            raise ValueError("burn_in: must be 0 or more")


def with_floor(target: Sequence[float], floor: float, frozen: Collection[int] = ()) -> list[float]:
    """The weights nearest `target` in proportion that give every variant at least `floor` and each
    frozen one exactly `floor`: the others share what is left in proportion to `target`, any of
    them that would fall under the floor held at it."""
    count = len(target)
    weights = [floor if i in frozen else 0.0 for i in range(count)]
    held = set(frozen)
    while True:
        free = [i for i in range(count) if i not in held]
        if not free:
            break
        left = 1.0 - floor * len(held)
        total = sum(max(0.0, target[i]) for i in free)
        shares = {i: (max(0.0, target[i]) / total if total > 0 else 1 / len(free)) * left for i in free}
        under = [i for i, share in shares.items() if share < floor]
        if not under:
            weights = [shares.get(i, floor) for i in range(count)]
            break
        held.update(under)
        weights = [floor if i in held else 0.0 for i in range(count)]
    return weights


def next_weights(
    previous: Sequence[float],
    target: Sequence[float],
    exposures: Sequence[int],
    safety: Safety,
    frozen: Collection[int] = (),
) -> list[float]:
    """The weights of the next phase: `previous` moved toward `target` (the sampler's probabilities)
    within `safety`, frozen variants at the floor at once. Before every variant has
    `safety.burn_in` exposures, only the frozen ones change."""
    count = len(previous)
    if not (len(target) == len(exposures) == count) or count < 2:
        raise ValueError("previous, target and exposures need one value per variant, two or more")
    safety.check(count)
    # Frozen variants drop to the floor now; what they free goes to the others in proportion.
    start = with_floor(previous, safety.floor, frozen) if frozen else list(previous)
    if min(exposures) < safety.burn_in:
        return start
    goal = with_floor(target, safety.floor, frozen)
    # Both ends give every variant its floor and sum to 1, so every point between them does: the
    # step toward the goal is shortened until no weight moves more than max_step.
    largest = max(abs(g - s) for g, s in zip(goal, start, strict=True))
    fraction = 1.0 if largest <= safety.max_step else safety.max_step / largest
    weights = [s + fraction * (g - s) for s, g in zip(start, goal, strict=True)]
    total = math.fsum(weights)
    return [w / total for w in weights]


def regret(weights_by_phase: Sequence[Sequence[float]], users_by_phase: Sequence[int], means: Sequence[float]) -> float:
    """Expected cumulative regret against always showing the best arm, in the metric's units
    summed over users: each phase's users times what its weights lose against the best mean."""
    best = max(means)
    return math.fsum(
        users * math.fsum(w * (best - m) for w, m in zip(weights, means, strict=True))
        for weights, users in zip(weights_by_phase, users_by_phase, strict=True)
    )
