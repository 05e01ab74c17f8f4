"""The cost of alpha-spending boundaries (abacus.stats.spending, issue #12): a 10-variant experiment
has 9 comparisons, each with its own information fractions over ~30 nightly looks.

For each grid size r: the time for one comparison's boundaries, for the 9 comparisons one by one
and in one batch (warm: the median and the best of many runs), and the accuracy against a grid
four times finer (the largest boundary error, and the type I error of the computed boundaries).
Times are CPU time (time.process_time), so that other work on a shared machine counts less.

Run: .venv/bin/python bench/spending_speed.py [runs]
"""

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from abacus.stats import spending

ALPHA = 0.05
GAMMA, FAMILY = spending.DESIGN_GAMMA, spending.DESIGN_FAMILY


def comparisons(count: int = 9, looks: int = 30, seed: int = 12) -> np.ndarray:
    """Uneven nightly information, a few nights missed, each comparison a little behind the plan."""
    rng = np.random.default_rng(seed)
    nights = rng.uniform(0.5, 1.5, (count, looks))
    nights[rng.random((count, looks)) < 0.1] *= 2  # a missed night: two nights' data at the next look
    fractions = np.cumsum(nights, axis=1)
    return fractions / (fractions[:, -1:] * rng.uniform(1.0, 1.15, (count, 1)))


def one_by_one(rows: np.ndarray, r: int) -> list[np.ndarray]:
    return [spending.boundaries(row, ALPHA, gamma=GAMMA, family=FAMILY, r=r) for row in rows]


def timed(work: Callable[[], object], runs: int) -> tuple[float, float]:
    work()
    times = []
    for _ in range(runs):
        started = time.process_time()
        work()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times), min(times)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    rows = comparisons()
    exact = spending.boundaries(rows, ALPHA, gamma=GAMMA, family=FAMILY, r=48)
    print(f"9 comparisons x {rows.shape[1]} looks; CPU ms as median / best of {runs} warm runs")
    header = ("r", "one comparison", "9 one by one", "9 in a batch", "max |c - exact|", "type I error - alpha(t_K)")
    print("{:>3} {:>16} {:>14} {:>14} {:>16} {:>26}".format(*header))
    for r in (6, 8, 12, 16, 24):
        one = timed(partial(spending.boundaries, rows[0], ALPHA, gamma=GAMMA, family=FAMILY, r=r), runs)
        each = timed(partial(one_by_one, rows, r), runs)
        batch = timed(partial(spending.boundaries, rows, ALPHA, gamma=GAMMA, family=FAMILY, r=r), runs)
        critical = spending.boundaries(rows, ALPHA, gamma=GAMMA, family=FAMILY, r=r)
        error = float(np.abs(critical - exact).max())
        type_one = spending.crossing_probabilities(critical, rows, r=48).total.sum(axis=1)
        worst = float(np.abs(type_one - spending.spent(rows[:, -1], ALPHA, gamma=GAMMA, family=FAMILY)).max())
        times = [f"{median:.1f} / {best:.1f}" for median, best in (one, each, batch)]
        print(f"{r:>3} {times[0]:>16} {times[1]:>14} {times[2]:>14} {error:>16.1e} {worst:>26.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
