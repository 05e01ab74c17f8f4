"""The decisions of the group-sequential design, simulated (issue #12's bars; bench/decisions_simulation.py
is the full-size version, with gbstats and the mSPRT beside it).

Every simulation is seeded, so each test's outcome is fixed; the thresholds are the issue's bars
less a margin for the simulation's own sampling error, chosen so that a design exactly at the bar
would pass at almost any seed (the margin is a one-sided 0.1% binomial quantile, or wider), while a
design clearly off the bar fails (each test says what it would catch). Where the design misses a
bar, the test of that bar is a strict xfail: it documents the miss and fails once the miss is gone.
"""

import math

import numpy as np
import pytest
from scipy import stats

from abacus.core import planning
from abacus.stats.analysis import Settings, VariantData, analyse, measure
from bench import decisions_simulation as simulation

DAYS, PLANNED_DAY = simulation.DAYS, simulation.PLANNED_DAY
PAIR_EXPOSURES = 2 * simulation.PER_DAY * np.arange(1.0, DAYS + 1)


def scenario(seed, simulations, lift, days=DAYS):
    return simulation.draw(np.random.default_rng(seed), simulations, days, lift)


def variants(draws, row, night):
    """The nightly job's input for one simulated experiment at one look (control first)."""
    return [
        VariantData(
            key,
            int(arm.n[row, night]),
            int(arm.y[row, night]),
            pre_sum=float(arm.x[row, night]),
            pre_sum_squares=float(arm.x[row, night]),  # x is 0 or 1
            cross_sum=float(arm.xy[row, night]),
        )
        for key, arm in (("control", draws.control), ("treatment", draws.treatment))
    ]


def upper_quantile(simulations, rate):
    """The share a rate of `rate` stays at or under with probability 99.9% over `simulations`."""
    return stats.binom.ppf(0.999, simulations, rate) / simulations


def lower_quantile(simulations, rate):
    return stats.binom.ppf(0.001, simulations, rate) / simulations


@pytest.mark.parametrize("cuped", [False, True])
def test_the_batched_lifts_are_the_engines(cuped):
    draws = scenario(1, 3, simulation.MDE)
    lifts = simulation.lifts_of(draws, cuped)
    p_values = simulation.fixed_p_values(draws, cuped)
    for row in range(3):
        for night in (0, 9, DAYS - 1):
            look = measure("conversion", variants(draws, row, night), Settings(cuped=cuped))
            assert (look.cuped is not None) == cuped
            comparison = look.comparisons["treatment"]
            assert lifts.relative[row, night] == pytest.approx(comparison.relative, rel=1e-12, abs=1e-15)
            assert lifts.variance[row, night] == pytest.approx(comparison.relative_variance, rel=1e-12)
            assert p_values[row, night] == pytest.approx(comparison.p_value, rel=1e-9)
            msprt = analyse("conversion", variants(draws, row, night), Settings(cuped=cuped, design="msprt"))
            assert simulation.msprt_p_value(lifts, row, night) == pytest.approx(
                msprt["variants"][1]["p_value"], rel=1e-9
            )


@pytest.mark.parametrize("cuped", [False, True])
def test_the_nightly_p_value_is_analyses(cuped):
    # One experiment per batch, as analyse() computes it: the same grid, so the same numbers.
    draws = scenario(2, 2, simulation.MDE)
    lifts = simulation.lifts_of(draws, cuped)
    settings = Settings(cuped=cuped, planned_exposures=simulation.PLANNED_EXPOSURES)
    for row in range(2):
        for nights in (1, 12, 40):
            earlier = [variants(draws, row, night) for night in range(nights - 1)]
            analysis = analyse(
                "conversion",
                variants(draws, row, nights - 1),
                Settings(cuped=settings.cuped, planned_exposures=settings.planned_exposures, previous_looks=earlier),
            )
            ours = simulation.spending_p_values(lifts, PAIR_EXPOSURES, nights, np.array([row]))
            assert ours[0] == pytest.approx(analysis["variants"][1]["p_value"], rel=1e-9)


@pytest.mark.parametrize("lift", [0.0, simulation.MDE])
def test_screening_out_experiments_that_cannot_reject_changes_no_first_day(lift):
    # The bench integrates a night only for experiments with some |Z| above its boundary's floor.
    lifts = simulation.lifts_of(scenario(3, 120, lift, days=40), cuped=False)
    screened = simulation.spending_first_days(lifts, screen=True)
    assert np.isfinite(screened).any()
    np.testing.assert_array_equal(screened, simulation.spending_first_days(lifts, screen=False))


@pytest.mark.parametrize("cuped", [False, True])
def test_a_and_a_is_declared_different_at_most_alpha_over_twice_the_planned_duration(cuped):
    # Bar 1. 1,000 experiments, 58 nightly looks. At a true rate of exactly 5% the share stays at or
    # under 7.3% (the binomial's 99.9% quantile) at 999 seeds in 1,000; a design at 10% would pass
    # at about 2 in 1,000. Naive peeking at the fixed-horizon test, on the same draws, shows the test
    # can tell. It cannot resolve the bench's 0.5-point excess (5.6% at 10,000 experiments): the
    # test after this one pins down its main cause.
    simulations = 1000
    draws = scenario(4, simulations, 0.0)
    first = simulation.spending_first_days(simulation.lifts_of(draws, cuped))
    threshold = upper_quantile(simulations, simulation.ALPHA)
    assert np.isfinite(first).mean() <= threshold
    peeking = simulation.first_below(simulation.fixed_p_values(draws, cuped))
    assert np.isfinite(peeking).mean() > 3 * threshold


def test_no_experiment_is_first_declared_different_after_the_final_look():
    # The design's final look is night 30 (the plan reached), after which its answer stands. When
    # each night re-estimated the earlier looks' fractions from tonight's variance, their boundaries
    # and even which look was final moved, and 9 of these 1,000 A/A experiments were first declared
    # different after the final look; the fractions are now the looks' exposures, fixed once taken.
    first = simulation.spending_first_days(simulation.lifts_of(scenario(4, 1000, 0.0), cuped=False))
    final = math.ceil(simulation.PLANNED_EXPOSURES / simulation.PER_DAY)
    assert np.isfinite(first).any()  # some experiments are (falsely) declared, before the end
    assert not np.isfinite(first[first > final]).any()


def test_a_and_a_by_normal_theory_spends_exactly_alpha():
    detected = simulation.theory_detected(0.0, cuped=False)
    assert detected[-1] == pytest.approx(simulation.ALPHA, abs=1e-5)


def _theory_median_night(lift: float) -> int:
    """The first night by which normal theory has found at least half the experiments."""
    detected = simulation.theory_detected(lift, cuped=False)
    return int(np.argmax(detected >= 0.5)) + 1


def test_four_times_the_mde_is_found_within_twice_a_fixed_horizon_tests_days():
    # Bar 2: a fixed-horizon test planned for a 20% lift needs 3,841 users per arm, 1.92 days; the
    # design's median must be within 3.84 days, night 3. Normal theory (exact up to the
    # integration's 1e-5) finds 54.4% by night 3 with the early budget (HSD gamma -4 alone: 43.6%).
    # test_the_share_found_by_the_planned_day_is_normal_theorys ties the simulation to the theory.
    lift = 4 * simulation.MDE
    days = planning.exposures_for_conversion(simulation.BASELINE, lift) / simulation.PER_DAY
    assert _theory_median_night(lift) <= 2 * days


def test_eight_times_the_mde_is_found_on_the_first_night():
    # Bar 2: the median is night 1. Normal theory finds 74.8% on night 1 (E[Z] = 3.9 on the
    # difference against a first boundary of about 3.3).
    assert _theory_median_night(8 * simulation.MDE) == 1


def test_an_overwhelming_difference_ships_at_the_first_look():
    analysis = analyse(
        "conversion",
        [VariantData("control", 800, 80), VariantData("treatment", 800, 240)],
        Settings(planned_exposures=simulation.PLANNED_EXPOSURES),
    )
    assert analysis["verdict"]["decision"] == "ship"
    assert analysis["verdict"]["variant"] == "treatment"


@pytest.mark.parametrize("cuped", [False, True])
def test_the_mde_is_found_before_the_planned_day_at_the_median(cuped):
    # Bar 3 (median): 500 experiments. The median is night 23 (20 with CUPED) by normal theory and
    # in the bench; night 29 would need the share found by night 28 to fall from about 70% to
    # 50%, 10 standard errors.
    first = simulation.spending_first_days(simulation.lifts_of(scenario(7, 500, simulation.MDE, days=30), cuped))
    assert np.median(first) < PLANNED_DAY


def test_the_mde_is_found_by_the_planned_day_in_three_quarters_by_normal_theory():
    # Bar 3 (share), computed exactly (recursive integration, no sampling): the test is on the
    # difference the plan sizes, with 80% power at the planned exposures (night 30); by day 29
    # (97.6% of them) 76.9%. (On the relative lift, whose delta-method variance is 5% larger under
    # the alternative, it was 74.1% with HSD gamma -4.)
    assert simulation.theory_detected(simulation.MDE, cuped=False)[PLANNED_DAY - 1] >= 0.75


@pytest.mark.parametrize("cuped", [False, True])
def test_the_share_found_by_the_planned_day_is_normal_theorys(cuped):
    # The simulation agrees with the theory above within its sampling error (3.3 standard errors,
    # a two-sided 0.1% band): 800 experiments, sd 1.5%; an error of 6 points fails.
    simulations = 800
    first = simulation.spending_first_days(
        simulation.lifts_of(scenario(8, simulations, simulation.MDE, days=PLANNED_DAY), cuped)
    )
    expected = simulation.theory_detected(simulation.MDE, cuped)[PLANNED_DAY - 1]
    tolerance = 3.3 * math.sqrt(expected * (1 - expected) / simulations)
    assert (first <= PLANNED_DAY).mean() == pytest.approx(expected, abs=tolerance)


def test_cuped_finds_the_mde_by_the_planned_day_in_at_least_85_percent():
    # Bar 4 (share), by normal theory (87.8%, exact up to the integration's 1e-5), and simulated:
    # 800 experiments at least the bar's 0.1% binomial quantile (81.0%); a design at 75%, as
    # without CUPED, would pass at under 1 seed in 10,000.
    assert simulation.theory_detected(simulation.MDE, cuped=True)[PLANNED_DAY - 1] >= 0.85
    simulations = 800
    first = simulation.spending_first_days(
        simulation.lifts_of(scenario(9, simulations, simulation.MDE, days=PLANNED_DAY), cuped=True)
    )
    assert (first <= PLANNED_DAY).mean() >= lower_quantile(simulations, 0.85)


def day_29_only(seed, simulations):
    """Each arm's sums at the planned day alone: a multinomial of all its users (the sum of the
    nightly multinomials has this distribution)."""
    rng = np.random.default_rng(seed)
    users = simulation.PER_DAY * PLANNED_DAY
    arms = []
    for rate in (simulation.BASELINE * (1 + simulation.MDE), simulation.BASELINE):
        cells = rng.multinomial(users, simulation.joint_cells(simulation.BASELINE, rate, 0.5), size=(simulations, 1))
        y, x, both = cells[..., 1] + cells[..., 3], cells[..., 2] + cells[..., 3], cells[..., 3]
        arms.append(simulation.Arm(np.full((simulations, 1), float(users)), *(a.astype(float) for a in (y, x, both))))
    return simulation.Scenario(arms[0], arms[1], simulation.MDE)


def test_cuped_narrows_the_interval_by_at_least_12_percent():
    # Bar 4 (width): theory 13.4%; over 2,000 experiments the mean's standard error is 0.02 points,
    # so 12% is over 70 standard errors away; without an adjustment (or with rho 0.3, 4.6%) it fails.
    draws = day_29_only(10, 2000)
    ratio = np.sqrt(simulation.lifts_of(draws, True).variance / simulation.lifts_of(draws, False).variance)
    assert 1 - ratio.mean() >= 0.12


def test_cuped_interval_covers_the_true_lift_94_to_96_percent():
    # Bar 4 (coverage): 20,000 experiments, so at a true 95% the share is within 0.5 points
    # (3.3 standard errors) at 999 seeds in 1,000, well inside the bar; 93% or 97% would fail.
    draws = day_29_only(11, 20_000)
    lifts = simulation.lifts_of(draws, cuped=True)
    z = stats.norm.ppf(1 - simulation.ALPHA / 2)
    covered = np.abs(lifts.relative - simulation.MDE) <= z * np.sqrt(lifts.variance)
    assert 0.94 <= covered.mean() <= 0.96
