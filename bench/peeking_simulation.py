"""Simulation of the stats engine under daily peeking (issue #3).

1. A/A: experiments with no true effect, looked at every day for 28 days: how often does any
   look declare a difference (p < alpha)? Sequential (mSPRT) against fixed-horizon p-values.
2. Coverage: at a fixed horizon, how often does the 95% relative-lift interval (fixed-horizon
   Fieller's, and the sequential confidence sequence) contain the true lift?
3. Power: with a true 5% relative lift, after how many days does each test first find it? The
   fixed-horizon test, used properly, looks once, on the day the planned sample (80% power) is
   reached: its power there is the reference.

Each experiment's daily counts are drawn with numpy (seeded); the p-values and intervals come
from the engine's own functions, exactly as analyse() computes them (sequential.test: the mSPRT
on the difference of the means, its relative interval that test inverted for every ratio, fieller.py).

Run: .venv/bin/python bench/peeking_simulation.py [experiments] [days] [users per arm per day]
"""

import math
import statistics
import sys
import time

import numpy as np

from abacus.core import planning
from abacus.stats import sequential
from abacus.stats.frequentist import Estimate, compare

ALPHA, TAU, BASELINE = 0.05, 0.05, 0.10


def daily_looks(rng: np.random.Generator, days: int, per_day: int, rate_t: float) -> list[tuple[Estimate, Estimate]]:
    """Cumulative (treatment, control) estimates at the end of each day of one experiment."""
    control = np.cumsum(rng.binomial(per_day, BASELINE, size=days))
    treatment = np.cumsum(rng.binomial(per_day, rate_t, size=days))
    looks = []
    for day in range(days):
        n = per_day * (day + 1)
        estimates = []
        for conversions in (treatment[day], control[day]):
            rate = conversions / n
            estimates.append(Estimate(rate, rate * (1 - rate) / n, n))
        looks.append((estimates[0], estimates[1]))
    return looks


def first_detection(looks, sequential_test: bool) -> int | None:
    """The first day (1-based) on which the test rejects, or None."""
    for day, (treatment, control) in enumerate(looks, start=1):
        fixed = compare(treatment, control, ALPHA, welch=False)
        if sequential_test:
            p_value = sequential.p_value(fixed, sequential.pooled_mean(treatment, control), TAU)
        else:
            p_value = fixed.p_value
        if p_value is not None and p_value < ALPHA:
            return day
    return None


def simulate(experiments: int, days: int, per_day: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    aa_sequential = aa_fixed = covered_fixed = covered_sequential = 0
    detect_sequential, detect_fixed = [], []
    true_lift = 0.05
    planned_n = planning.exposures_for_conversion(BASELINE, true_lift)
    planned_day = math.ceil(planned_n / per_day)
    sequential_day = math.ceil(planned_n * planning.sequential_inflation() / per_day)
    found_at_planned_day = 0
    for _ in range(experiments):
        looks = daily_looks(rng, days, per_day, BASELINE)
        aa_sequential += first_detection(looks, True) is not None
        aa_fixed += first_detection(looks, False) is not None

        looks = daily_looks(rng, days, per_day, BASELINE * (1 + true_lift))
        treatment, control = looks[-1]
        fixed = compare(treatment, control, ALPHA, welch=False, nonnegative=True)
        # Thousands of users a day: the lift and its variance are always defined.
        assert fixed.relative is not None and fixed.relative_variance is not None and fixed.relative_ci is not None
        low, high = fixed.relative_ci
        covered_fixed += low <= true_lift <= high
        sequence = sequential.relative_confidence_sequence(
            fixed, sequential.pooled_mean(treatment, control), TAU, ALPHA
        )
        assert sequence is not None
        low, high = sequence
        covered_sequential += low <= true_lift <= high
        detect_sequential.append(first_detection(looks, True))
        detect_fixed.append(first_detection(looks, False))
        if planned_day <= days:
            found_at_planned_day += first_detection(looks[planned_day - 1 : planned_day], False) is not None
    return {
        "aa_false_positive_sequential": aa_sequential / experiments,
        "aa_false_positive_fixed_peeking": aa_fixed / experiments,
        "coverage_fixed": covered_fixed / experiments,
        "coverage_sequential": covered_sequential / experiments,
        "power_sequential": sum(d is not None for d in detect_sequential) / experiments,
        "power_fixed_peeking": sum(d is not None for d in detect_fixed) / experiments,
        "median_days_sequential": _median_days(detect_sequential),
        "median_days_fixed_peeking": _median_days(detect_fixed),
        "fixed_horizon_planned_day": planned_day,
        "power_fixed_horizon_at_planned_day": found_at_planned_day / experiments if planned_day <= days else None,
        "power_sequential_by_planned_day": sum(d is not None and d <= planned_day for d in detect_sequential)
        / experiments,
        "sequential_planned_day": sequential_day,
        "power_sequential_by_sequential_planned_day": sum(
            d is not None and d <= sequential_day for d in detect_sequential
        )
        / experiments,
    }


def _median_days(days: list[int | None]) -> float | None:
    found = [d for d in days if d is not None]
    return statistics.median(found) if found else None


def main() -> int:
    experiments = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 28
    per_day = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    started = time.perf_counter()
    result = simulate(experiments, days, per_day)
    print(
        f"{experiments} experiments, {days} daily looks, {per_day} users per arm per day, "
        f"baseline {BASELINE:.0%}, alpha {ALPHA}, mSPRT tau {TAU}"
    )
    for name, value in result.items():
        print(f"  {name:<34} {value}")
    print(f"  ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
