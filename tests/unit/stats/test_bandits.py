"""abacus.stats.bandits against independent references: the raw outcomes' own means and variances
(numpy), a Monte Carlo run of top-two Thompson sampling's procedure itself, and simulated drift
for the stratified mean's bias."""

import math

import numpy as np
import pytest
from scipy import stats

from abacus.stats.bandits import (
    Cell,
    Estimate,
    Safety,
    korn_graubard,
    next_weights,
    probability_best,
    regret,
    stratified,
    top_two,
    with_floor,
)


def cell(outcomes) -> Cell:
    values = np.asarray(outcomes, dtype=float)
    return Cell(len(values), float(values.sum()), float((values**2).sum()))


def test_the_stratified_mean_weights_every_variant_s_phases_by_the_phase_s_share_of_all_users():
    rng = np.random.default_rng(7)
    # Two phases, two variants, revenue-like outcomes; phase 2 twice the users of phase 1.
    raw = [
        [rng.gamma(2, 5, 300), rng.gamma(2, 6, 100)],
        [rng.gamma(2, 5, 150), rng.gamma(2, 6, 650)],
    ]
    estimate = stratified([[cell(values) for values in phase] for phase in raw])
    shares = np.array([400, 800]) / 1200
    # All users' spread, each about their own phase's and variant's mean (4 cells: N - 4).
    everyone = sum(((values - values.mean()) ** 2).sum() for phase in raw for values in phase) / (1200 - 4)
    for v in range(2):
        means = np.array([raw[p][v].mean() for p in range(2)])
        # One user's variance on v, from all its users about their phase's mean (2 phases: N - 2),
        # never below everyone's.
        users = len(raw[0][v]) + len(raw[1][v])
        spread = sum(((raw[p][v] - raw[p][v].mean()) ** 2).sum() for p in range(2)) / (users - 2)
        spread = max(spread, everyone)
        variances = np.array([spread / len(raw[p][v]) for p in range(2)])
        assert estimate.means[v] == pytest.approx(shares @ means, rel=1e-12)
        assert estimate.standard_errors[v] == pytest.approx(math.sqrt(shares**2 @ variances), rel=1e-12)


def test_under_drift_the_stratified_mean_is_unbiased_and_the_pooled_one_is_not():
    """The base rate doubles in phase 2, when variant b gets most of the traffic. b is no better:
    pooling credits b with phase 2's rate, the stratified means stay equal."""
    rng = np.random.default_rng(11)
    rates, users = [0.05, 0.10], [10_000, 10_000]
    weights = [[0.5, 0.5], [0.1, 0.9]]
    stratified_gap, pooled_gap = [], []
    for _ in range(400):
        phases = []
        for rate, n, (wa, _) in zip(rates, users, weights, strict=True):
            na = rng.binomial(n, wa)
            counts = [rng.binomial(na, rate), rng.binomial(n - na, rate)]
            phases.append([Cell(na, counts[0], counts[0]), Cell(n - na, counts[1], counts[1])])
        estimate = stratified(phases)
        stratified_gap.append(estimate.means[1] - estimate.means[0])
        pooled = [sum(p[v].total for p in phases) / sum(p[v].exposures for p in phases) for v in range(2)]
        pooled_gap.append(pooled[1] - pooled[0])
    # The true gap is 0. Monte Carlo standard error of the average gap is about 0.00015.
    assert abs(np.mean(stratified_gap)) < 0.0006
    assert np.mean(pooled_gap) > 0.02  # 0.0821 - 0.0583 in expectation: pooling favours b


def test_a_phase_with_too_few_users_of_a_variant_is_merged_into_the_next():
    phases = [[Cell(1, 1, 1), Cell(5, 1, 1)], [Cell(9, 2, 2), Cell(5, 2, 2)]]
    merged = stratified(phases)
    one = stratified([[Cell(10, 3, 3), Cell(10, 3, 3)]])
    assert merged == one
    with pytest.raises(ValueError, match="at least 2"):
        stratified([[Cell(1, 0, 0), Cell(3, 1, 1)]])


def test_a_cell_of_only_failures_is_not_certain():
    assert Cell(50, 0, 0).variance == pytest.approx((1 / 52) * (51 / 52))
    assert Cell(50, 50, 50).variance == pytest.approx((51 / 52) * (1 / 52))


def test_probability_best_of_a_clear_leader_and_of_equals():
    best, loss = probability_best(Estimate((0.10, 0.10, 0.10), (0.01, 0.01, 0.01)))
    assert best == pytest.approx([1 / 3] * 3, abs=1e-9)
    best, loss = probability_best(Estimate((0.10, 0.20), (0.001, 0.001)))
    assert best[1] == pytest.approx(1.0, abs=1e-12)
    assert loss[0] == pytest.approx(0.10, rel=1e-9) and loss[1] == pytest.approx(0, abs=1e-12)


def simulated_top_two(means, sds, beta, draws, rng):
    """The procedure itself: draw; show the leader with probability beta, else redraw until some
    other variant leads and show it."""
    count = len(means)
    shown = np.zeros(count)
    for _ in range(draws):
        leader = int(np.argmax(rng.normal(means, sds)))
        if rng.random() < beta:
            shown[leader] += 1
            continue
        while True:
            challenger = int(np.argmax(rng.normal(means, sds)))
            if challenger != leader:
                shown[challenger] += 1
                break
    return shown / draws


def test_top_two_matches_the_procedure_it_stands_for():
    means, sds = np.array([0.10, 0.11, 0.115, 0.09]), np.array([0.005, 0.005, 0.005, 0.005])
    best, _ = probability_best(Estimate(tuple(means), tuple(sds)))
    formula = top_two(best, beta=0.5)
    simulated = simulated_top_two(means, sds, 0.5, 40_000, np.random.default_rng(3))
    # Each share's Monte Carlo standard error is at most 0.0025.
    assert formula == pytest.approx(list(simulated), abs=0.01)
    assert sum(formula) == pytest.approx(1)
    assert formula[2] < best[2]  # it spends on the runner-up what Thompson sampling gives the leader


def test_top_two_with_a_certain_leader_splits_the_rest_among_the_others():
    assert top_two([1.0, 0.0, 0.0], beta=0.6) == pytest.approx([0.6, 0.2, 0.2])


@pytest.mark.parametrize(
    ("target", "frozen", "expected"),
    [
        ([0.97, 0.02, 0.01], (), [0.97, 0.02, 0.01]),
        ([0.999, 0.001, 0.0], (), [0.98, 0.01, 0.01]),
        ([0.5, 0.3, 0.2], (0,), [0.01, 0.99 * 0.6, 0.99 * 0.4]),
        ([0.0, 0.0, 0.0], (), [1 / 3, 1 / 3, 1 / 3]),
    ],
)
def test_with_floor(target, frozen, expected):
    weights = with_floor(target, 0.01, frozen)
    assert weights == pytest.approx(expected)
    assert math.fsum(weights) == pytest.approx(1)


def test_no_change_before_every_variant_has_its_burn_in():
    safety = Safety(floor=0.01, max_step=0.2, burn_in=100)
    assert next_weights([0.5, 0.5], [0.99, 0.01], [150, 99], safety) == [0.5, 0.5]


def test_one_reweighting_moves_no_weight_more_than_the_step():
    safety = Safety(floor=0.01, max_step=0.2, burn_in=100)
    weights = next_weights([0.25] * 4, [0.97, 0.01, 0.01, 0.01], [500] * 4, safety)
    assert max(abs(w - 0.25) for w in weights) == pytest.approx(0.2)
    assert weights[0] == pytest.approx(0.45) and math.fsum(weights) == pytest.approx(1)
    assert min(weights) >= 0.01
    # Thirty reweightings toward the same target get there and stay within the floor.
    for _ in range(30):
        weights = next_weights(weights, [0.97, 0.01, 0.01, 0.01], [500] * 4, safety)
    assert weights == pytest.approx([0.97, 0.01, 0.01, 0.01])


def test_a_frozen_variant_drops_to_the_floor_at_once_even_in_burn_in():
    safety = Safety(floor=0.02, max_step=0.1, burn_in=100)
    weights = next_weights([0.6, 0.2, 0.2], [0.9, 0.05, 0.05], [10, 10, 10], safety, frozen={0})
    assert weights == pytest.approx([0.02, 0.49, 0.49])
    weights = next_weights([0.6, 0.2, 0.2], [0.9, 0.05, 0.05], [500, 500, 500], safety, frozen={0})
    assert weights[0] == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("safety", "field"),
    [(Safety(floor=0.4), "floor"), (Safety(max_step=0), "max_step"), (Safety(burn_in=-1), "burn_in")],
)
def test_impossible_safety_is_refused_naming_the_field(safety, field):
    with pytest.raises(ValueError, match=field):
        next_weights([0.5, 0.3, 0.2], [0.4, 0.3, 0.3], [500] * 3, safety)


def test_regret_counts_each_phase_s_users_at_what_its_weights_lose():
    # 1,000 users at equal weights lose half of 0.02; 2,000 at 90/10 lose a tenth of it.
    assert regret([[0.5, 0.5], [0.9, 0.1]], [1000, 2000], [0.12, 0.10]) == pytest.approx(10 + 4)


def test_a_variant_with_no_conversions_yet_gets_an_interval():
    estimate = stratified([[Cell(50, 0, 0), Cell(50, 5, 5)]])
    assert estimate.standard_errors[0] == pytest.approx(math.sqrt((1 / 52) * (51 / 52) / 50))
    assert estimate.interval(0)[1] > 0


def test_a_conversion_s_interval_in_one_phase_is_clopper_pearson_s():
    estimate = stratified([[Cell(50, 5, 5), Cell(400, 31, 31)]])
    for v, (conversions, users) in enumerate([(5, 50), (31, 400)]):
        exact = stats.binomtest(conversions, users).proportion_ci(0.95, method="exact")
        assert estimate.interval(v) == pytest.approx((exact.low, exact.high), rel=1e-9)


def test_over_phases_a_conversion_s_interval_is_korn_graubard_s_at_the_effective_users():
    # Phase 2 has three times the users; variant 0 was starved in it.
    phases = [[Cell(200, 10, 10), Cell(200, 12, 12)], [Cell(30, 2, 2), Cell(1170, 70, 70)]]
    estimate = stratified(phases)
    shares = np.array([400, 1200]) / 1600
    for v in range(2):
        users = np.array([phase[v].exposures for phase in phases], dtype=float)
        effective = 1 / (shares**2 @ (1 / users))
        successes = estimate.means[v] * effective
        low = stats.beta.ppf(0.025, successes, effective - successes + 1)
        high = stats.beta.ppf(0.975, successes + 1, effective - successes)
        assert estimate.interval(v) == pytest.approx((low, high), rel=1e-9)
    # The starved variant's interval is the wider, and reaches further up than down (few conversions).
    low, high = estimate.interval(0)
    assert high - estimate.means[0] > estimate.means[0] - low
    assert high - low > estimate.interval(1)[1] - estimate.interval(1)[0]


def test_korn_graubard_s_interval_stops_at_0_and_1():
    assert korn_graubard(0.0, 40)[0] == 0.0 and korn_graubard(0.0, 40)[1] == pytest.approx(1 - 0.025 ** (1 / 40))
    assert korn_graubard(1.0, 40)[1] == 1.0 and korn_graubard(1.0, 40)[0] == pytest.approx(0.025 ** (1 / 40))


def test_a_mean_metric_s_interval_is_normal():
    estimate = stratified([[Cell(3, 6.0, 20.0), Cell(4, 3.0, 5.0)], [Cell(5, 10.0, 30.0), Cell(6, 7.0, 13.0)]])
    assert estimate.effective_users is None
    z = stats.norm.ppf(0.975)
    for v in range(2):
        mean, se = estimate.means[v], estimate.standard_errors[v]
        assert estimate.interval(v) == pytest.approx((mean - z * se, mean + z * se), rel=1e-12)


def test_a_mean_s_spread_is_never_taken_below_all_the_variants_pooled_one():
    rng = np.random.default_rng(5)
    # Variant 0 starved in phase 2, its few users without a big buyer; variant 1 with big buyers.
    raw = [
        [rng.gamma(2, 5, 300), rng.gamma(2, 5, 300)],
        [np.array([1.0, 2.0, 1.5, 2.5]), rng.lognormal(2, 1.5, 600)],
    ]
    estimate = stratified([[cell(values) for values in phase] for phase in raw])
    shares = np.array([600, 604]) / 1204
    own = []
    for v in range(2):
        users = len(raw[0][v]) + len(raw[1][v])
        own.append(sum(((raw[p][v] - raw[p][v].mean()) ** 2).sum() for p in range(2)) / (users - 2))
    everyone = sum(((values - values.mean()) ** 2).sum() for phase in raw for values in phase) / (1204 - 4)
    assert own[0] < everyone < own[1]
    for v, spread in enumerate((everyone, own[1])):
        sizes = np.array([len(raw[p][v]) for p in range(2)])
        assert estimate.standard_errors[v] == pytest.approx(math.sqrt(shares**2 @ (spread / sizes)), rel=1e-12)
