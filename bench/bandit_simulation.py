"""Bandit simulations (issue 34): Abacus's bandit against fixed equal allocation and a plain textbook
Thompson sampler, on the same draws.

Each run is an experiment of `days` days, reweighted every `hours` hours (a phase), with `users`
new users a phase. Every user comes with one uniform draw that picks their arm from the phase's
weights and one uniform draw per arm that says whether they would convert on it: the three
methods meet the same users with the same outcomes (common random numbers), and differ only in
where they send them.

- **abacus**: abacus.stats.bandits as the product runs it. Each variant's mean stratified by phase,
  its probability to be best under Normal posteriors, weights moved toward those probabilities
  with a 1% floor, at most 20 points a reweighting, after a burn-in of 100 users per variant.
- **abacus top-two**: the same, with top-two Thompson sampling's probabilities as the target.
- **textbook Thompson**: the probability to be best under Beta(1 + conversions, 1 + failures)
  posteriors of the pooled counts; weights set to it, no floor, cap or burn-in.
- **equal**: 1/k each, all along.

Scenarios: 3, 5 and 10 arms at a 5% conversion rate, one of them at 6.5% (or none: all equal),
and, with `--drift`, a base rate that swings by +-50% over each day (a daily cycle) while the
arms keep their ratios, which is where pooled means mislead. With `--revenue` the metric is a
mean, revenue per user: a user who converts spends an amount drawn once for them, log-normal
(mu 3, sigma 1, a mean of 33), whichever arm they are shown; the textbook sampler's posteriors
are then Normal, of the pooled means.

Reported per method, over the runs:
- regret: expected conversions lost against always showing the best arm, summed over users
  (each user counted at their arm's rate in their phase), mean over runs;
- hours to put 80% of traffic on the best arm (median over runs that do; how many never do);
- wrong arm: how often the arm it would ship is not the best. A run ships the first arm whose
  probability to be best reaches 95% on or after day 7 (checked at each reweighting), else at the
  end the arm most likely best. With all arms equal there is no wrong arm: reported instead is how
  often one reached 95% (a false winner);
- coverage: how often each arm's reported 95% interval for its mean holds the truth. The truth is
  the arm's rate over all the run's users (averaged over phases by their users, which under drift
  differs from a plain average of the hours). Abacus reports its stratified interval (for a
  conversion Korn-Graubard's, for revenue the normal one); the textbook sampler and equal
  allocation the pooled (Wald) one. The misses are split by side: the truth below the interval
  (the interval too high) and above it.

Run: .venv/bin/python bench/bandit_simulation.py [runs] [days] [hours] [users] [--drift] [--revenue] [--arms=K]
"""

import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from abacus.stats.bandits import MIN_CELL, Cell, Safety, next_weights, probability_best, stratified, top_two
from abacus.stats.bayesian import best_and_loss
from abacus.stats.posteriors import BetaPosteriors, NormalPosteriors

BASE, BETTER = 0.05, 0.065
MU, SIGMA = 3.0, 1.0  # a buyer's amount, log-normal: revenue per user is the rate times exp(3.5)
SAFETY = Safety(floor=0.01, max_step=0.2, burn_in=100)
DECIDE_AT, MINIMUM_DAYS = 0.95, 7
Z95 = 1.959963984540054


@dataclass
class Tally:
    """One method's counts in one run, by phase."""

    arms: int
    phases: list[list[Cell]] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)
    regret: float = 0.0

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        exposures = np.array([sum(p[v].exposures for p in self.phases) for v in range(self.arms)], dtype=float)
        totals = np.array([sum(p[v].total for p in self.phases) for v in range(self.arms)])
        return exposures, totals

    def revenue(self) -> bool:
        return any(cell.sum_squares != cell.total for phase in self.phases for cell in phase)

    def pooled_sds(self) -> np.ndarray:
        """Each arm's pooled mean's standard error (Wald's for a rate)."""
        exposures, totals = self.pooled()
        n = np.maximum(exposures, 2)
        squares = np.array([sum(p[v].sum_squares for p in self.phases) for v in range(self.arms)])
        spread = np.maximum(squares - totals * totals / n, 0) / (n - 1)
        return np.sqrt(spread / n)


# A method: from the counts so far and the current weights, (the next weights, each arm's
# probability to be best, each arm's 95% interval).
type Method = Callable[[Tally], tuple[list[float], list[float], list[tuple[float, float]]]]


def abacus(target: Callable[[list[float]], list[float]]) -> Method:
    def step(tally: Tally) -> tuple[list[float], list[float], list[tuple[float, float]]]:
        exposures, _ = tally.pooled()
        if min(exposures) < MIN_CELL:
            return tally.weights[-1], [1 / tally.arms] * tally.arms, [(0.0, 1.0)] * tally.arms
        estimate = stratified(tally.phases)
        best, _ = probability_best(estimate)
        weights = next_weights(tally.weights[-1], target(best), [int(n) for n in exposures], SAFETY)
        return weights, best, [estimate.interval(v) for v in range(tally.arms)]

    return step


def pooled_intervals(tally: Tally) -> list[tuple[float, float]]:
    exposures, totals = tally.pooled()
    means = totals / np.maximum(exposures, 1)
    half = Z95 * tally.pooled_sds()
    return [(float(r - h), float(r + h)) for r, h in zip(means, half, strict=True)]


def pooled_best(tally: Tally) -> list[float]:
    """Each arm's probability to be best on its pooled counts: Beta posteriors of a rate, Normal
    ones of revenue's means."""
    exposures, totals = tally.pooled()
    if tally.revenue():
        sds = np.maximum(tally.pooled_sds(), 1e-9)
        best, _ = best_and_loss(NormalPosteriors(totals / np.maximum(exposures, 1), sds))
    else:
        best, _ = best_and_loss(BetaPosteriors(1 + totals, 1 + exposures - totals))
    return [float(p) for p in best]


def textbook(tally: Tally) -> tuple[list[float], list[float], list[tuple[float, float]]]:
    best = pooled_best(tally)
    return best, best, pooled_intervals(tally)


def equal(tally: Tally) -> tuple[list[float], list[float], list[tuple[float, float]]]:
    return [1 / tally.arms] * tally.arms, pooled_best(tally), pooled_intervals(tally)


METHODS: dict[str, Method] = {
    "abacus": abacus(lambda best: best),
    "abacus top-two": abacus(top_two),
    "textbook Thompson": textbook,
    "equal": equal,
}


@dataclass
class Outcome:
    regret: float
    hours_to_80: float | None
    shipped: int | None  # None: no arm reached 95%, the run ended without a decision
    chosen: int  # what it ships: the decision, else the arm most likely best at the end
    misses: list[int]  # per arm: -1 the truth below its interval, 0 inside, 1 above


def rates_in(phase: int, rates: np.ndarray, hours: int, drift: bool) -> np.ndarray:
    if not drift:
        return rates
    hour_of_day = (phase * hours + hours / 2) % 24
    return rates * (1 + 0.5 * math.sin(2 * math.pi * hour_of_day / 24))


# A phase's users: each one's draw picking their arm, their draw per arm of converting, and what
# they spend if they do.
type Draws = tuple[np.ndarray, np.ndarray, np.ndarray]


def run(method: Method, draws: Sequence[Draws], rates: np.ndarray, hours: int, drift: bool, revenue: bool) -> Outcome:
    arms = len(rates)
    tally = Tally(arms, weights=[[1 / arms] * arms])
    best_arm = int(np.argmax(rates))
    hours_to_80, shipped, users_by_arm_rate = None, None, np.zeros(arms)
    users_total = 0
    best: list[float] = [1 / arms] * arms
    intervals: list[tuple[float, float]] = [(0.0, 1.0)] * arms
    value = math.exp(MU + SIGMA**2 / 2) if revenue else 1.0  # a conversion's expected worth
    for phase, (pick, converts, amounts) in enumerate(draws):
        weights = np.array(tally.weights[-1])
        arm = np.minimum(np.searchsorted(np.cumsum(weights), pick, side="right"), arms - 1)
        now = rates_in(phase, rates, hours, drift)
        converted = converts[np.arange(len(pick)), arm] < now[arm]  # each user's own draw on their arm
        outcome = converted * amounts if revenue else converted.astype(float)
        counts = np.bincount(arm, minlength=arms)
        totals = np.bincount(arm, weights=outcome, minlength=arms)
        squares = np.bincount(arm, weights=outcome**2, minlength=arms)
        tally.phases.append([Cell(int(n), float(t), float(q)) for n, t, q in zip(counts, totals, squares, strict=True)])
        tally.regret += float(counts @ (now.max() - now)) * value
        users_by_arm_rate += len(pick) * now * value
        users_total += len(pick)
        weights_next, best, intervals = method(tally)
        tally.weights.append(weights_next)
        elapsed = (phase + 1) * hours
        if hours_to_80 is None and weights_next[best_arm] >= 0.8:
            hours_to_80 = elapsed
        if shipped is None and elapsed >= MINIMUM_DAYS * 24 and max(best) >= DECIDE_AT:
            shipped = int(np.argmax(best))
    truth = users_by_arm_rate / users_total
    misses = [-1 if t < lo else (1 if t > hi else 0) for (lo, hi), t in zip(intervals, truth, strict=True)]
    chosen = shipped if shipped is not None else int(np.argmax(best))
    return Outcome(tally.regret, hours_to_80, shipped, chosen, misses)


def scenario(
    arms: int, better: bool, runs: int, days: int, hours: int, users: int, drift: bool, revenue: bool
) -> dict[str, list[Outcome]]:
    rates = np.full(arms, BASE)
    if better:
        rates[arms // 2] = BETTER  # not the first arm: no method may favour a position
    phases = days * 24 // hours
    outcomes: dict[str, list[Outcome]] = {name: [] for name in METHODS}
    rng = np.random.default_rng(34_000 + 100 * arms + better + 2 * drift + 4 * revenue)
    for _ in range(runs):
        draws = [(rng.random(users), rng.random((users, arms)), rng.lognormal(MU, SIGMA, users)) for _ in range(phases)]
        for name, method in METHODS.items():
            outcomes[name].append(run(method, draws, rates, hours, drift, revenue))
    return outcomes


def report(arms: int, better: bool, outcomes: dict[str, list[Outcome]]) -> None:
    title = f"{arms} arms, {'one at 6.5%, the others 5%' if better else 'all at 5%'}"
    print(f"\n{title}")
    last = "wrong arm" if better else "false winner"
    columns = f"{'regret':>9}{'hours to 80%':>14}{'never':>7}{last:>14}{'coverage':>16}{'below':>8}{'above':>7}"
    print(f"  {'method':<19}{columns}")
    for name, runs in outcomes.items():
        regret = statistics.mean(o.regret for o in runs)
        reached = [o.hours_to_80 for o in runs if o.hours_to_80 is not None]
        to_80 = f"{statistics.median(reached):.0f}" if reached and better else "-"
        never = f"{len(runs) - len(reached)}" if better else "-"
        if better:
            wrong = sum(o.chosen != arms // 2 for o in runs) / len(runs)
        else:
            wrong = sum(o.shipped is not None for o in runs) / len(runs)
        misses = [m for o in runs for m in o.misses]
        coverage = misses.count(0) / len(misses)
        below, above = misses.count(-1) / len(misses), misses.count(1) / len(misses)
        half = Z95 * math.sqrt(coverage * (1 - coverage) / len(runs))  # runs, not arms: arms share a run
        print(
            f"  {name:<19}{regret:>9.1f}{to_80:>14}{never:>7}{wrong:>13.1%} {coverage:>8.1%} ±{half:.1%}"
            f"{below:>7.1%}{above:>7.1%}"
        )


def main(argv: Sequence[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    drift = "--drift" in argv
    revenue = "--revenue" in argv
    only = [int(a.removeprefix("--arms=")) for a in argv if a.startswith("--arms=")]
    runs = int(args[0]) if args else 200
    days = int(args[1]) if len(args) > 1 else 14
    hours = int(args[2]) if len(args) > 2 else 6
    users = int(args[3]) if len(args) > 3 else 500
    print(
        f"{runs} runs a scenario, {days} days reweighted every {hours} hours, {users} new users a phase"
        f"{', base rate swinging +-50% over each day' if drift else ''}"
        f"{', revenue per user (log-normal amounts)' if revenue else ''}; the same draws for every method"
    )
    started = time.perf_counter()
    for arms in only or (3, 5, 10):
        for better in (True, False):
            report(arms, better, scenario(arms, better, runs, days, hours, users, drift, revenue))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
