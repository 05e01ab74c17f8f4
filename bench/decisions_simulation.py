"""Simulation of the decisions Abacus's group-sequential design makes (issue #12), against GrowthBook's
gbstats sequential test and Abacus's own mSPRT on the same draws.

A conversion metric, baseline 10%, minimum detectable effect 5% relative, 2,000 users per arm per
day, a look every night, alpha 0.05 two-sided. The plan is the nightly job's: the fixed-horizon
sample for 80% power at the mde (57,763 per arm, reached on day 29) times the spending design's
inflation (59,427 per arm with early-hsd, reached on night 30). Bars checked:

1. A/A: the share ever declared different over 58 nightly looks (twice the planned duration) is
   at most 5%, with and without CUPED.
2. Large effects are called early: for a lift of 4x the mde, the median first-detection day is at
   most twice the day a fixed-horizon test planned for that lift would look; for 8x, the first
   night. And 800 users per arm converting 10% vs 30% ships (analyse()).
3. A lift equal to the mde is found by the planned day (29) in at least 75% of experiments, with
   a median first-detection day before it.
4. CUPED, with a pre-period covariate correlated 0.5 with the outcome: the fixed-horizon interval
   of the relative lift at least 12% narrower (theory 1 - sqrt(0.75) = 13.4%), that interval's
   coverage of the true lift 94-96% at day 29, and the share found by day 29 at least 85%.

Each user's (pre-period conversion x, conversion y) comes from one 2x2 table: P(x = 1) = 10% in both
arms (exposure cannot change the past), P(y = 1) = the arm's rate r, and P(x = 1, y = 1) = 0.1 r +
0.5 sqrt(0.1 * 0.9 * r (1 - r)), which makes corr(x, y) = 0.5 in each arm (the same joint structure,
only y's rate moved). Each arm's nightly counts of the four cells are one multinomial draw of 2,000
users; the looks are the running sums. A conversion metric with a binary covariate rather than a
continuous one because it is the issue's metric and what the nightly job sends (conversions plus
the covariate's sums); the 0.5 correlation is exact in the cell probabilities.

The lifts and variances are the engine's (abacus.stats.analysis.measure, cuped.py, compare()),
computed with the same formulas over arrays of simulations at once (tests/unit/stats/test_decisions.py
checks them against measure() itself). The spending design's verdict on night d is
looks.spending_tests over nights 1..d, as the nightly job calls it with the earlier snapshots as
previous looks (the plan's maximum information re-estimated each night from tonight's variance):
the first night its p-value is below alpha is the first-detection day. A night is computed only for
the experiments that can reject on it: a look's boundary is never below the normal quantile of its
cumulative alpha(t) (spending.nominal_p_value), so an experiment whose |Z| is below that, less a
margin far beyond the grid's error, at every look the night tests cannot reject (the unit tests
check that the screened and the full computation agree). gbstats: its SequentialTwoSidedTTest
(gbstats 0.8.0, frequentist/tests.py; Waudby-Smith et al.'s asymptotic confidence sequence,
sequential_tuning_parameter 5000, the default) on ProportionStatistic sums, and with CUPED on its
RegressionAdjustedStatistic, at every look. mSPRT: sequential.always_valid_p_value on the same
difference and variance at every look, the mixture's smallest scale the mde relative to the arms'
pooled mean (analyse()'s "msprt" design).

Setup (gbstats 0.8.0 pins numpy < 2 and pandas < 2, which have no Python 3.13 wheels; its
sequential test imports only numpy, scipy and pydantic, so it goes into a venv of its own without
its pins, beside the engine's own numpy and scipy; the project's venv and locks are unchanged; its
p-values there equal, to the last digit, those of gbstats 0.8.0 under its own pins on Python 3.11):

    python3.13 -m venv .venv-gbstats
    .venv-gbstats/bin/pip install --no-deps gbstats==0.8.0
    .venv-gbstats/bin/pip install numpy==2.5.5 scipy==1.18.1 pydantic==2.13.5 packaging

Run (from the repository root; the layers on the path as in the project's venv):

    PYTHONPATH=$PWD/layers/shared:$PWD/layers/stats:$PWD .venv-gbstats/bin/python \\
        bench/decisions_simulation.py [simulations, 2000] [seed, 12]

Without gbstats installed, its rows are left out.
"""

import importlib
import math
import sys
import time
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.special import ndtr, ndtri

from abacus.core import planning
from abacus.experiments import plans
from abacus.stats import looks, sequential, spending
from abacus.stats.analysis import Settings, VariantData, analyse

type Floats = npt.NDArray[np.float64]

ALPHA, BASELINE, MDE, PER_DAY, DAYS, CORRELATION = 0.05, 0.10, 0.05, 2000, 58, 0.5
GAMMA, FAMILY = spending.DESIGN_GAMMA, spending.DESIGN_FAMILY
FIXED_HORIZON = planning.exposures_for_conversion(BASELINE, MDE)  # per arm, 80% power at the mde
PLANNED = plans.sequential_exposures(FIXED_HORIZON)
assert PLANNED is not None
PLANNED_EXPOSURES: int = PLANNED
PLANNED_DAY = math.ceil(FIXED_HORIZON / PER_DAY)  # 29: the "planned day"
# Below every boundary's floor (the grid's boundaries are within 1e-3 of the exact ones) by far.
SCREEN_MARGIN = 0.05
GBSTATS_TUNING = 5000.0  # SequentialConfig's default sequential_tuning_parameter


class Arm(NamedTuple):
    """One arm's running sums over the nights, (simulations, nights): users, conversions, users who
    converted in the pre-period (x = 1), and users with x = 1 and y = 1 (the cross sum). x and y
    are 0 or 1, so each sum of squares is its sum."""

    n: Floats
    y: Floats
    x: Floats
    xy: Floats


class Lifts(NamedTuple):
    """At each look, (simulations, nights): the relative lift's estimate and delta-method variance
    (the fixed-horizon interval's), the difference of the means with its variance (the spending
    design's and the mSPRT's statistic), and the arms' pooled mean (the mSPRT's scale)."""

    relative: Floats
    variance: Floats
    difference: Floats
    difference_variance: Floats
    pooled_mean: Floats


class Scenario(NamedTuple):
    treatment: Arm
    control: Arm
    true_lift: float


def joint_cells(x_rate: float, y_rate: float, correlation: float) -> Floats:
    """P of the cells (x, y) = (0, 0), (0, 1), (1, 0), (1, 1) with these margins and correlation."""
    both = x_rate * y_rate + correlation * math.sqrt(x_rate * (1 - x_rate) * y_rate * (1 - y_rate))
    cells = np.array([1 - x_rate - y_rate + both, y_rate - both, x_rate - both, both])
    assert (cells >= 0).all(), "no 2x2 table has these margins and this correlation"
    return cells


def draw_arm(rng: np.random.Generator, simulations: int, days: int, rate: float) -> Arm:
    counts = rng.multinomial(PER_DAY, joint_cells(BASELINE, rate, CORRELATION), size=(simulations, days))
    running = counts.cumsum(axis=1).astype(np.float64)
    n = np.broadcast_to(PER_DAY * np.arange(1.0, days + 1), (simulations, days))
    return Arm(n, running[..., 1] + running[..., 3], running[..., 2] + running[..., 3], running[..., 3])


def draw(rng: np.random.Generator, simulations: int, days: int, lift: float) -> Scenario:
    control = draw_arm(rng, simulations, days, BASELINE)
    return Scenario(draw_arm(rng, simulations, days, BASELINE * (1 + lift)), control, lift)


def raw_estimates(scenario: Scenario) -> list[tuple[Floats, Floats]]:
    """analysis._estimate for conversions, treatment then control: the rate and rate (1 - rate) / n."""
    rates = [(arm.y / arm.n, arm.n) for arm in (scenario.treatment, scenario.control)]
    return [(rate, rate * (1 - rate) / n) for rate, n in rates]


def _centred(arm: Arm) -> tuple[Floats, Floats, Floats]:
    """cuped.Moments.centred, with x and y binary (sums of squares = sums)."""
    xx = np.maximum(arm.x - arm.x * arm.x / arm.n, 0.0)
    xy = arm.xy - arm.x * arm.y / arm.n
    yy = np.maximum(arm.y - arm.y * arm.y / arm.n, 0.0)
    return xx, xy, yy


def cuped_estimates(scenario: Scenario) -> list[tuple[Floats, Floats]]:
    """analysis._cuped, treatment then control: one theta pooled over the arms (control first, as
    the variants are listed), each arm's adjusted mean and the variance of its residual mean."""
    control, treatment = scenario.control, scenario.treatment
    centred_c, centred_t = _centred(control), _centred(treatment)
    xx = 0.0 + centred_c[0] + centred_t[0]
    # cuped.pooled_theta returns None (no adjustment) when x does not vary: never at these sizes.
    assert (xx > 1e-12 * (control.x + treatment.x)).all()
    theta = (0.0 + centred_c[1] + centred_t[1]) / xx
    grand_x = (control.x + treatment.x) / (control.n + treatment.n)
    adjusted = []
    for arm, (arm_xx, arm_xy, arm_yy) in ((treatment, centred_t), (control, centred_c)):
        mean = arm.y / arm.n - theta * (arm.x / arm.n - grand_x)
        residual = np.maximum(arm_yy - 2 * theta * arm_xy + theta * theta * arm_xx, 0.0)
        adjusted.append((mean, residual / (arm.n - 1) / arm.n))
    return adjusted


def estimates(scenario: Scenario, cuped: bool) -> list[tuple[Floats, Floats]]:
    return cuped_estimates(scenario) if cuped else raw_estimates(scenario)


def lifts_of(scenario: Scenario, cuped: bool) -> Lifts:
    """compare()'s relative lift and its delta-method variance at every look."""
    (mean_t, variance_t), (mean_c, variance_c) = estimates(scenario, cuped)
    relative = mean_t / mean_c - 1
    variance = variance_t / mean_c**2 + mean_t**2 * variance_c / mean_c**4
    # The arms are the same size: their pooled mean is the mean of the two.
    return Lifts(relative, variance, mean_t - mean_c, variance_t + variance_c, (mean_t + mean_c) / 2)


def fixed_p_values(scenario: Scenario, cuped: bool) -> Floats:
    """compare()'s fixed-horizon z-test p-value at every look (no Welch for conversions)."""
    (mean_t, variance_t), (mean_c, variance_c) = estimates(scenario, cuped)
    result: Floats = 2 * ndtr(-np.abs(mean_t - mean_c) / np.sqrt(variance_t + variance_c))
    return result


def may_reject(lifts: Lifts, pair_exposures: Floats, nights: int) -> npt.NDArray[np.bool_]:
    """Per simulation, whether the spending test over looks 1..nights could reject tonight: some
    look it tests (up to the first at or past the plan, by tonight's fractions) has |Z| at least
    its boundary's floor, the normal quantile of alpha(t) spent by then, less SCREEN_MARGIN."""
    fractions = pair_exposures[:nights] / (2 * PLANNED_EXPOSURES)
    past = fractions >= 1
    final = int(past.argmax()) if past.any() else nights - 1
    tested = np.arange(nights) <= final
    floor = ndtri(1 - spending.spent(fractions, ALPHA, GAMMA, FAMILY) / 2) - SCREEN_MARGIN
    z = np.abs(lifts.difference[:, :nights]) / np.sqrt(lifts.difference_variance[:, :nights])
    result: npt.NDArray[np.bool_] = (tested & (z >= floor)).any(axis=1)
    return result


def spending_p_values(lifts: Lifts, pair_exposures: Floats, nights: int, rows: npt.NDArray[np.intp]) -> Floats:
    """The nightly job's p-value on night `nights` for these simulations (looks 1..nights)."""
    exposures = np.broadcast_to(pair_exposures[:nights], (rows.size, nights)).copy()
    tests = looks.spending_tests(
        lifts.difference[rows, :nights],
        lifts.difference_variance[rows, :nights],
        exposures,
        2 * PLANNED_EXPOSURES,
        ALPHA,
        GAMMA,
        FAMILY,
    )
    return tests.p_value


def spending_first_days(lifts: Lifts, screen: bool = True) -> Floats:
    """The first night the spending design rejects (1-based; inf when it never does)."""
    simulations, days = lifts.relative.shape
    pair_exposures = 2 * PER_DAY * np.arange(1.0, days + 1)
    first = np.full(simulations, np.inf)
    for night in range(1, days + 1):
        open_rows = np.isinf(first)
        if screen:
            open_rows &= may_reject(lifts, pair_exposures, night)
        rows = np.flatnonzero(open_rows)
        if rows.size:
            first[rows[spending_p_values(lifts, pair_exposures, night, rows) < ALPHA]] = night
    return first


def first_below(p_values: Floats) -> Floats:
    """The first night (1-based) a p-value is below alpha; inf when none is."""
    below = p_values < ALPHA
    return np.where(below.any(axis=1), below.argmax(axis=1) + 1.0, np.inf)


def msprt_p_value(lifts: Lifts, row: int, night: int) -> float | None:
    z = lifts.difference[row, night] / math.sqrt(lifts.difference_variance[row, night])
    scaled = lifts.difference_variance[row, night] / lifts.pooled_mean[row, night] ** 2
    return sequential.always_valid_p_value(float(z), float(scaled), MDE)


def msprt_first_days(lifts: Lifts) -> Floats:
    """The first night the mSPRT's always-valid p-value is below alpha (analysis._add_msprt: the
    difference over its standard error, the mixture's scales relative to the pooled mean; equal
    arms, so no skewness correction; for rates its p-value is always above the z-test's)."""
    simulations, days = lifts.relative.shape
    first = np.full(simulations, np.inf)
    for row in range(simulations):
        for night in range(days):
            p = msprt_p_value(lifts, row, night)
            if p is not None and p < ALPHA:
                first[row] = night + 1
                break
    return first


def gbstats_first_days(scenario: Scenario, cuped: bool) -> Floats | None:
    """The first night gbstats' sequential test rejects; None without gbstats."""
    try:
        tests = importlib.import_module("gbstats.frequentist.tests")
        statistics = importlib.import_module("gbstats.models.statistics")
    except ImportError:
        return None
    config = tests.SequentialConfig(alpha=ALPHA, sequential_tuning_parameter=GBSTATS_TUNING)

    def statistic(arm: Arm, row: int, night: int):
        n, y = int(arm.n[row, night]), float(arm.y[row, night])
        post = statistics.ProportionStatistic(n=n, sum=y)
        if not cuped:
            return post
        pre = statistics.ProportionStatistic(n=n, sum=float(arm.x[row, night]))
        return statistics.RegressionAdjustedStatistic(
            n=n, post_statistic=post, pre_statistic=pre, post_pre_sum_of_products=float(arm.xy[row, night]), theta=0
        )

    simulations, days = scenario.control.n.shape
    first = np.full(simulations, np.inf)
    for row in range(simulations):
        for night in range(days):
            control, treatment = statistic(scenario.control, row, night), statistic(scenario.treatment, row, night)
            if tests.SequentialTwoSidedTTest(control, treatment, config).compute_result().p_value < ALPHA:
                first[row] = night + 1
                break
    return first


def theory_detected(lift: float, cuped: bool) -> Floats:
    """Normal theory for the spending design: the probability of having rejected by each night
    (1..DAYS) when Z follows the canonical joint distribution with the lift's drift (the fractions
    the plan's, n / N, as if each night's variance were exact; no discreteness)."""
    rate_c, rate_t = BASELINE, BASELINE * (1 + lift)
    per_user = rate_t * (1 - rate_t) + rate_c * (1 - rate_c)  # the difference's, times n
    per_user *= 1 - CORRELATION**2 if cuped else 1.0  # the residual variance of y - theta x
    fractions = PER_DAY * np.arange(1.0, DAYS + 1) / PLANNED_EXPOSURES
    final = int(np.argmax(fractions >= 1)) + 1
    critical = spending.boundaries(fractions[:final], ALPHA, GAMMA, FAMILY)
    drift = (rate_t - rate_c) / math.sqrt(per_user / PLANNED_EXPOSURES)
    crossed = np.cumsum(spending.crossing_probabilities(critical, fractions[:final], drift).total)
    return np.concatenate([crossed, np.full(DAYS - final, crossed[-1])])


def share(count: int, total: int) -> str:
    """The share with its 95% Clopper-Pearson interval."""
    interval = stats.binomtest(count, total).proportion_ci(0.95, method="exact")
    return f"{count / total:7.2%} [{interval.low:6.2%}, {interval.high:6.2%}]"


def median_day(first: Floats) -> float:
    """The median first-detection night over all experiments, an undetected one counting as never
    (inf when under half are detected)."""
    return float(np.median(first))


def theory_median(detected: Floats) -> float:
    reached = detected >= 0.5
    return float(np.argmax(reached) + 1) if reached.any() else math.inf


def methods(scenario: Scenario, cuped: bool, fixed: bool = True) -> dict[str, Floats]:
    """First-detection nights by each test on these draws (gbstats left out when not installed)."""
    lifts = lifts_of(scenario, cuped)
    tag = " + CUPED" if cuped else ""
    found = {f"Abacus spending (early-hsd {GAMMA:g}){tag}": spending_first_days(lifts)}
    found[f"Abacus mSPRT (tau {MDE:g}){tag}"] = msprt_first_days(lifts)
    gbstats = gbstats_first_days(scenario, cuped)
    if gbstats is not None:
        found[f"gbstats sequential (tuning 5000){tag}"] = gbstats
    if fixed:
        found[f"fixed-horizon z, every night{tag}"] = first_below(fixed_p_values(scenario, cuped))
    return found


def verdict(met: bool) -> str:
    return "yes" if met else "NO"


def report_aa(scenario: Scenario) -> None:
    simulations = scenario.control.n.shape[0]
    final = math.ceil(PLANNED_EXPOSURES / PER_DAY)
    print(f"\n1. A/A: {simulations} experiments, {DAYS} nightly looks (twice the planned {PLANNED_DAY} days)")
    print(f"   bar: ever declared different by day {DAYS} <= {ALPHA:.0%} (every row on the same draws; the last")
    print("   row is the fixed-horizon test looked at every night, naive peeking, for reference). 'bar met' reads")
    print(f"   the point estimate; the last column: first declared after night {final}, the spending design's final")
    print("   look (the plan reached), when its answer should stand.")
    columns = (f"by day {PLANNED_DAY}", f"by day {DAYS}", f"first after night {final}")
    print(f"   {'test':<42} {columns[0]:>25} {columns[1]:>25} {columns[2]:>25}  bar met")
    for cuped in (False, True):
        theory = theory_detected(0.0, cuped)
        name = "normal theory, spending" + (" + CUPED" if cuped else "")
        print(f"   {name:<42} {theory[PLANNED_DAY - 1]:>25.2%} {theory[-1]:>25.2%} {0:>25.2%}")
        for name, first in methods(scenario, cuped).items():
            counts = [
                int((first <= PLANNED_DAY).sum()),
                int(np.isfinite(first).sum()),
                int(np.isfinite(first[first > final]).sum()),
            ]
            cells = " ".join(f"{share(count, simulations):>25}" for count in counts)
            print(f"   {name:<42} {cells}  {verdict(counts[1] / simulations <= ALPHA)}")


def report_large(rng: np.random.Generator, simulations: int) -> None:
    print(f"\n2. Large effects called early: {simulations} experiments per lift, nightly looks, the plan for the mde")
    for multiple in (4, 8):
        lift = multiple * MDE
        exposures = planning.exposures_for_conversion(BASELINE, lift)
        fixed_day = exposures / PER_DAY
        bar = 2 * fixed_day if multiple == 4 else 1.0
        print(
            f"   lift {lift:.0%} ({multiple}x the mde): a fixed-horizon test planned for it needs {exposures} per arm, "
            f"{fixed_day:.2f} days (it would look on night {math.ceil(fixed_day)}); bar: median night <= {bar:.2f}"
        )
        if multiple == 4:
            print(
                f"   (read as the night that test would look, {math.ceil(fixed_day)}: "
                f"median night <= {2 * math.ceil(fixed_day)})"
            )
        print(f"   {'test':<42} {'median night':>12} {'found night 1':>14} {'by night 4':>11}  bar met")
        theory = theory_detected(lift, False)
        name = "normal theory, spending"
        print(f"   {name:<42} {theory_median(theory):>12g} {theory[0]:>14.1%} {theory[3]:>11.1%}")
        for name, first in methods(draw(rng, simulations, DAYS, lift), cuped=False, fixed=False).items():
            median = median_day(first)
            print(
                f"   {name:<42} {median:>12g} {(first <= 1).mean():>14.1%} {(first <= 4).mean():>11.1%}  "
                f"{verdict(median <= bar)}"
            )
    example = analyse(
        "conversion",
        [VariantData("control", 800, 80), VariantData("treatment", 800, 240)],
        Settings(planned_exposures=PLANNED_EXPOSURES),
    )
    row = example["variants"][1]
    print(
        f"   example, 800 users per arm converting 10% vs 30%, the first look: p = {row['p_value']:.2g}, "
        f"|Z| boundary {row.get('boundary', math.nan):.2f}, verdict: {example['verdict']['decision']} "
        f"{example['verdict']['variant']}"
    )


def report_mde(scenario: Scenario) -> None:
    simulations = scenario.control.n.shape[0]
    print(f"\n3. and 4. A true lift equal to the mde ({MDE:.0%}): {simulations} experiments, {DAYS} nightly looks")
    print(f"   bars (the spending design): found by day {PLANNED_DAY} >= 75% (>= 85% with CUPED), median first night")
    print(f"   < {PLANNED_DAY} (an experiment never found counts as never)")
    print(f"   {'test':<42} {'by day ' + str(PLANNED_DAY):>25} {'by day 56':>10} {'median night':>12}  bar met")
    for cuped in (False, True):
        theory = theory_detected(MDE, cuped)
        name = "normal theory, spending" + (" + CUPED" if cuped else "")
        print(f"   {name:<42} {theory[PLANNED_DAY - 1]:>25.2%} {theory[55]:>10.1%} {theory_median(theory):>12g}")
        bar = 0.85 if cuped else 0.75
        for name, first in methods(scenario, cuped).items():
            found, median = int((first <= PLANNED_DAY).sum()), median_day(first)
            met = verdict(found / simulations >= bar and median < PLANNED_DAY) if "spending" in name else ""
            print(f"   {name:<42} {share(found, simulations):>25} {(first <= 56).mean():>10.1%} {median:>12g}  {met}")
    report_cuped(scenario)


def report_cuped(scenario: Scenario) -> None:
    """Fixed-horizon intervals at the planned day, with and without CUPED, on the same draws."""
    simulations, look = scenario.control.n.shape[0], PLANNED_DAY - 1
    z = float(ndtri(1 - ALPHA / 2))
    raw, adjusted = lifts_of(scenario, False), lifts_of(scenario, True)
    ratio = np.sqrt(adjusted.variance[:, look] / raw.variance[:, look])
    narrower = 1 - float(ratio.mean())
    print(f"   CUPED (corr(x, y) = {CORRELATION}), the fixed-horizon 95% interval of the lift on day {PLANNED_DAY}:")
    print(
        f"   narrower by {narrower:.2%} on average (5th-95th percentile {1 - np.quantile(ratio, 0.95):.2%} to "
        f"{1 - np.quantile(ratio, 0.05):.2%}; theory {1 - math.sqrt(1 - CORRELATION**2):.2%}); "
        f"bar >= 12%: {verdict(narrower >= 0.12)}"
    )
    for name, lifts in (("unadjusted", raw), ("CUPED", adjusted)):
        covered = np.abs(lifts.relative[:, look] - scenario.true_lift) <= z * np.sqrt(lifts.variance[:, look])
        count = int(covered.sum())
        met = verdict(0.94 <= count / simulations <= 0.96) if name == "CUPED" else "(reference)"
        print(f"   coverage of the true lift, {name:<11} {share(count, simulations)}  bar 94-96%: {met}")


def main() -> int:
    simulations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    aa_rng, large_rng, mde_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    started = time.perf_counter()
    print(
        f"Baseline {BASELINE:.0%}, mde {MDE:.0%} relative, {PER_DAY} users per arm per day, alpha {ALPHA} two-sided; "
        f"fixed horizon {FIXED_HORIZON} per arm (day {PLANNED_DAY}); plan {PLANNED_EXPOSURES} per arm "
        f"(x {planning.SPENDING_INFLATION}, day {math.ceil(PLANNED_EXPOSURES / PER_DAY)}); seed {seed}"
    )
    report_aa(draw(aa_rng, simulations, DAYS, 0.0))
    report_large(large_rng, simulations)
    report_mde(draw(mde_rng, simulations, DAYS, MDE))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
