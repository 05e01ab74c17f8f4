"""The always-valid mSPRT at small and rare-event samples (issue 28, item 5), and its power at
realistic sizes, before and after it tested the difference of the means.

1. A/A: conversion experiments with no effect, one look a day for 20 days (the issue's setting):
   the share ever declared different (p < alpha at some look), with its 95% Clopper-Pearson
   interval, for the issue's three sizes and rarer events. Bar: at most 5%.
2. The single look of the issue, 5/30 against 1/30 conversions: the always-valid p-value against
   the fixed-horizon one, both ways round.
3. Power at realistic sizes (baseline 10%, mde 5% relative, 2,000 and 10,000 users per arm a day):
   for true lifts of +-5% and +-10%, the share found by each day and the median first day. Bar:
   the new test keeps the old one's power (its median days within a day, its share found by the
   mSPRT's planned day within 2 points, averaged over the two directions).

"before": the test as it was, on the relative lift m_t / m_c - 1 over its delta-method variance
(v_t + (m_t / m_c)^2 v_c) / m_c^2, the mixture's scales relative lifts. "after": the engine's
test (abacus.stats.analysis, sequential.py), on the difference of the means over sqrt(v_t + v_c),
the scales relative to the arms' pooled mean, its p-value never below the fixed-horizon one. Both
are computed over arrays of experiments at once with the mixture of abacus.core.mixture; the bench
checks its "after" p-values against analyse() itself (and the CLI's problem.solve) on a sample
of looks before it reports anything, so what it measures is the engine's test.

Run: .venv/bin/python bench/msprt_small_samples.py [experiments, 1000] [seed, 28]
"""

import math
import sys
import time
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.special import ndtr

from abacus.core import mixture, planning
from abacus.stats.analysis import Settings, VariantData, analyse
from abacus.stats.problem import solve

type Floats = npt.NDArray[np.float64]

ALPHA, MDE, DAYS = 0.05, 0.05, 20
# (users per arm a day, baseline): the three, then rarer events.
SMALL = [(20, 0.10), (50, 0.05), (200, 0.10), (20, 0.02), (100, 0.01), (500, 0.01), (1000, 0.005)]
LARGE_BASELINE, LARGE_DAYS = 0.10, 90
LARGE = [2000, 10000]
LIFTS = [0.05, -0.05, 0.10, -0.10]


class Arms(NamedTuple):
    """Cumulative users and conversions at each look, (experiments, days), treatment and control."""

    n_t: Floats
    y_t: Floats
    n_c: Floats
    y_c: Floats


def draw(rng: np.random.Generator, experiments: int, days: int, per_day: int, rate_c: float, rate_t: float) -> Arms:
    n = np.broadcast_to(per_day * np.arange(1.0, days + 1), (experiments, days))
    y_t = rng.binomial(per_day, rate_t, (experiments, days)).cumsum(axis=1).astype(np.float64)
    y_c = rng.binomial(per_day, rate_c, (experiments, days)).cumsum(axis=1).astype(np.float64)
    return Arms(n, y_t, n, y_c)


def log_mixture(squared_z: Floats, variance: Floats) -> Floats:
    """mixture.log_likelihood_ratio over arrays (the bench checks it against the engine)."""
    terms = [
        math.log(weight)
        + 0.5 * (np.log(variance) - np.log(variance + tau * tau))
        + tau * tau / (variance + tau * tau) * squared_z / 2
        for tau, weight in mixture.scales(MDE)
    ]
    return np.logaddexp.reduce(np.array(terms), axis=0)


def p_values(arms: Arms, test: str) -> Floats:
    """The always-valid p-value at every look (NaN where the test is not defined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m_t, m_c = arms.y_t / arms.n_t, arms.y_c / arms.n_c
        v_t, v_c = m_t * (1 - m_t) / arms.n_t, m_c * (1 - m_c) / arms.n_c
        if test == "before":
            ratio = m_t / m_c
            variance = (v_t + ratio * ratio * v_c) / (m_c * m_c)
            squared_z = (ratio - 1) ** 2 / variance
        else:
            pooled = (arms.y_t + arms.y_c) / (arms.n_t + arms.n_c)
            variance = (v_t + v_c) / (pooled * pooled)
            squared_z = (m_t - m_c) ** 2 / (v_t + v_c)
        defined = np.isfinite(variance) & (variance > 0) & np.isfinite(squared_z)
        log_lambda = log_mixture(np.where(defined, squared_z, 0.0), np.where(defined, variance, 1.0))
        p = np.where(log_lambda > 0, np.exp(-log_lambda), 1.0)
        if test == "after":  # never below the fixed-horizon z-test's (inactive for rates: already above)
            p = np.maximum(p, 2 * ndtr(-np.sqrt(squared_z)))
    return np.where(defined, p, np.nan)


def check_against_the_engine(rng: np.random.Generator) -> int:
    """The bench's "after" p-values equal analyse()'s and the CLI's at random looks; returns how many."""
    checked = 0
    for per_day, rate in [*SMALL[:3], (2000, 0.1)]:
        arms = draw(rng, 12, DAYS, per_day, rate, rate)
        ours = p_values(arms, "after")
        for row, day in zip(range(12), rng.integers(0, DAYS, 12), strict=True):
            n, y_t, y_c = int(arms.n_t[row, day]), int(arms.y_t[row, day]), int(arms.y_c[row, day])
            variants = [VariantData("control", n, y_c), VariantData("test", n, y_t)]
            engine = analyse("conversion", variants, Settings(design="msprt"))["variants"][1]["p_value"]
            problem = {
                "metric": {"kind": "conversion"},
                "design": "msprt",
                "variants": [
                    {"key": "control", "exposures": n, "conversions": y_c},
                    {"key": "test", "exposures": n, "conversions": y_t},
                ],
            }
            cli = solve(problem)["variants"][1]["p_value"]  # type: ignore[typeddict-item]
            if engine is None:
                assert np.isnan(ours[row, day]) and cli is None, (per_day, rate, row, day)
            else:
                assert math.isclose(engine, ours[row, day], rel_tol=1e-9), (engine, ours[row, day])
                assert cli == engine
            checked += 1
    return checked


def share(count: int, total: int) -> str:
    """The share with its 95% Clopper-Pearson interval."""
    interval = stats.binomtest(count, total).proportion_ci(0.95, method="exact")
    return f"{count / total:6.2%} [{interval.low:6.2%}, {interval.high:6.2%}]"


def first_days(p: Floats) -> Floats:
    below = p < ALPHA
    return np.where(below.any(axis=1), below.argmax(axis=1) + 1.0, np.inf)


def report_aa(rng: np.random.Generator, experiments: int) -> bool:
    print(f"\n1. A/A: {experiments} experiments each, one look a day for {DAYS} days, alpha {ALPHA}, mde {MDE}")
    print(f"   bar: ever declared different <= {ALPHA:.0%} ('after'). Of the 'before' false positives, the share")
    print("   where the treatment was the lower arm.")
    print(f"   {'users/arm/day, baseline':<24} {'before':>26} {'(lower)':>8} {'after':>26}  bar met")
    met = True
    for per_day, rate in SMALL:
        arms = draw(rng, experiments, DAYS, per_day, rate, rate)
        before, after = first_days(p_values(arms, "before")), first_days(p_values(arms, "after"))
        found_before = np.isfinite(before)
        lower = (arms.y_t < arms.y_c)[np.arange(experiments), np.where(found_before, before - 1, 0).astype(int)]
        lower_share = f"{lower[found_before].mean():.0%}" if found_before.any() else "-"
        count_after = int(np.isfinite(after).sum())
        ok = count_after / experiments <= ALPHA
        met &= ok
        cells = (
            f"{share(int(found_before.sum()), experiments):>26} {lower_share:>8} {share(count_after, experiments):>26}"
        )
        print(f"   {f'{per_day}, {rate:.1%}':<24} {cells}  {'yes' if ok else 'NO'}")
    return met


def report_single_look() -> bool:
    print("\n2. One look: 5/30 conversions in one arm, 1/30 in the other")
    ok = True
    for control, treatment in ((5, 1), (1, 5)):
        variants = [VariantData("control", 30, control), VariantData("test", 30, treatment)]
        row = analyse("conversion", variants, Settings(design="msprt"))["variants"][1]
        before = p_values(
            Arms(np.array([[30.0]]), np.array([[float(treatment)]]), np.array([[30.0]]), np.array([[float(control)]])),
            "before",
        )
        p, fixed = row["p_value"], row["p_value_fixed"]
        assert p is not None and fixed is not None
        ok &= p >= fixed
        print(
            f"   control {control}/30, test {treatment}/30: fixed-horizon p = {fixed:.3f}; mSPRT before "
            f"p = {float(before[0, 0]):.3f}, after p = {p:.3f}"
        )
    print(f"   bar: after >= fixed-horizon both ways: {'yes' if ok else 'NO'}")
    return ok


def report_power(rng: np.random.Generator, experiments: int) -> bool:
    fixed = planning.exposures_for_conversion(LARGE_BASELINE, MDE)
    planned = math.ceil(fixed * planning.sequential_inflation(ALPHA, 0.8, MDE))
    print(f"\n3. Power: baseline {LARGE_BASELINE:.0%}, {experiments} experiments per row, {LARGE_DAYS} daily looks")
    print(f"   the mSPRT's planned sample for 80% power at the mde: {planned} per arm (fixed horizon {fixed})")
    heads = f"{'planned day':>11} {'found by it, before':>20} {'after':>7} {'median day, before':>19} {'after':>6}"
    print(f"   {'users/arm/day, lift':<22} {heads}")
    met = True
    for per_day in LARGE:
        day = math.ceil(planned / per_day)
        found: dict[str, list[float]] = {"before": [], "after": []}
        medians: dict[str, list[float]] = {"before": [], "after": []}
        for lift in LIFTS:
            arms = draw(rng, experiments, LARGE_DAYS, per_day, LARGE_BASELINE, LARGE_BASELINE * (1 + lift))
            cells = []
            for test in ("before", "after"):
                first = first_days(p_values(arms, test))
                found[test].append(float((first <= day).mean()))
                medians[test].append(float(np.median(first)))
                cells.append((found[test][-1], medians[test][-1]))
            print(
                f"   {f'{per_day}, {lift:+.0%}':<22} {day:>11} {cells[0][0]:>20.1%} {cells[1][0]:>7.1%} "
                f"{cells[0][1]:>19g} {cells[1][1]:>6g}"
            )
        for pair in (slice(0, 2), slice(2, 4)):  # each lift, its two directions averaged
            gap = np.mean(found["before"][pair]) - np.mean(found["after"][pair])
            later = np.mean(medians["after"][pair]) - np.mean(medians["before"][pair])
            met &= bool(gap <= 0.02 and later <= 1.0)
    print("   bar: each lift's two directions together, found by the planned day within 2 points and median")
    print(f"   within a day of before: {'yes' if met else 'NO'}")
    return met


def main() -> int:
    experiments = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 28
    check_rng, aa_rng, power_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    started = time.perf_counter()
    checked = check_against_the_engine(check_rng)
    print(f"The engine's mSPRT p-values reproduced at {checked} random looks (analyse and CLI)")
    results = [report_aa(aa_rng, experiments), report_single_look(), report_power(power_rng, experiments)]
    print(f"\n({time.perf_counter() - started:.0f} s; seed {seed})")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
