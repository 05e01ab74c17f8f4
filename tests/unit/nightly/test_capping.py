"""Percentile caps (abacus.nightly.capping) against numpy's percentile of the values above 0 and a
brute-force winsorization of the raw values: the cap is a user's value within GAMMA of the exact
percentile, and the capped sums are exact, however the users were split into pages and however far
the pages' histograms were cut down to their bin limit."""

import json
import math
import random

import numpy as np
import pytest

from abacus.nightly import capping
from abacus.nightly.capping import Histogram


def users(rng: random.Random, count: int) -> list[tuple[str, float, float]]:
    """(variant, value, pre-exposure value): most users 0, some heavy-tailed revenue, some
    refunds (negative), a few bulk orders."""
    drawn = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            value = 0.0
        elif kind < 0.95:
            value = round(rng.lognormvariate(3, 1.2), 2)
        elif kind < 0.98:
            value = -round(rng.lognormvariate(2, 1), 2)
        else:
            value = round(rng.uniform(1e4, 1e6), 2)
        drawn.append((rng.choice(["control", "b"]), value, round(rng.lognormvariate(2, 1), 2)))
    return drawn


def pages_of(drawn, page_size: int, bins_each: int) -> dict[str, Histogram]:
    """Each page's histograms cut to `bins_each` (as a page stores them), then added up."""
    total = {"control": Histogram(), "b": Histogram()}
    for start in range(0, len(drawn), page_size):
        page = {"control": Histogram(), "b": Histogram()}
        for variant, value, pre in drawn[start : start + page_size]:
            page[variant].add(value, pre)
        for variant, histogram in page.items():
            histogram.limit(bins_each)
            total[variant].merge(Histogram.from_json(histogram.to_json()))
    return total


@pytest.mark.parametrize("percentile", [0.5, 0.9, 0.95, 0.99, 0.999])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_cap_is_a_value_within_gamma_of_the_percentile_and_the_sums_are_exact(seed, percentile):
    rng = random.Random(seed)
    drawn = users(rng, 20_000)
    histograms = pages_of(drawn, page_size=5000, bins_each=1024)
    cap = capping.percentile_cap(list(histograms.values()), percentile)
    values = above_zero(drawn)
    exact = float(np.quantile(values, percentile, method="inverted_cdf"))
    assert cap is not None and cap in set(values.tolist())
    assert 0 < exact <= cap <= exact * capping.GAMMA
    check_sums(drawn, histograms, cap)


def above_zero(drawn) -> np.ndarray:
    """The values a percentile cap is taken over: those above 0."""
    return np.array([value for _, value, _ in drawn if value > 0])


def check_sums(drawn, histograms: dict[str, Histogram], cap: float) -> None:
    for variant, histogram in histograms.items():
        mine = [(value, pre) for v, value, pre in drawn if v == variant]
        capped = [min(value, cap) for value, _ in mine]
        expected = (
            math.fsum(capped),
            math.fsum(y * y for y in capped),
            math.fsum(y * pre for y, (_, pre) in zip(capped, mine, strict=True)),
            sum(1 for value, _ in mine if value > cap),
        )
        got = capping.capped_sums(histogram, cap)
        assert got[:3] == pytest.approx(expected[:3], rel=1e-9), variant
        assert got[3] == expected[3], variant


def test_bins_cut_down_to_their_limit_still_sum_exactly_and_cap_no_lower():
    """Pages cut to 40 bins each merge their lowest bins: the sums stay exact; the cap may only
    rise (to a merged bin's largest value), never fall below the percentile."""
    drawn = users(random.Random(9), 20_000)
    for percentile in (0.5, 0.8, 0.99):
        histograms = pages_of(drawn, page_size=2000, bins_each=40)
        uncut = pages_of(drawn, page_size=2000, bins_each=10**6)
        assert all(len(histograms[v].bins) < len(uncut[v].bins) for v in uncut), "the limit merged bins"
        cap = capping.percentile_cap(list(histograms.values()), percentile)
        exact = float(np.quantile(above_zero(drawn), percentile, method="inverted_cdf"))
        assert cap is not None and cap >= exact
        check_sums(drawn, histograms, cap)


def test_limit_keeps_the_highest_bins_and_every_user():
    histogram = Histogram()
    for value in range(1, 1001):
        histogram.add(float(value), 1.0)
    before = len(histogram.bins)
    histogram.limit(50)
    assert len(histogram.bins) == 50 < before
    assert sum(b[capping.USERS] for b in histogram.bins.values()) == 1000
    assert math.fsum(b[capping.SUM] for b in histogram.bins.values()) == 500500
    assert max(b[capping.MAX] for b in histogram.bins.values()) == 1000


def test_keys_order_bins_as_their_values_and_neighbours_are_within_gamma():
    values = [-1e15, -1e3, -1.0, -1e-300, 0.0, 5e-324, 1e-9, 1.0, 1.02, 1.03, 7.5, 1e15]
    keys = [capping.key_of(value) for value in values]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for value in (3.7, 1234.5, 9.99e14):
        same = [v for v in (value / 1.019, value, value * 1.019) if capping.key_of(v) == capping.key_of(value)]
        assert max(same) / min(same) <= capping.GAMMA


def test_no_users_no_cap_and_one_user_is_their_own_cap():
    assert capping.percentile_cap([Histogram(), Histogram()], 0.99) is None
    one = Histogram()
    one.add(42.0, 0.0)
    assert capping.percentile_cap([one, Histogram()], 0.99) == 42.0


@pytest.mark.parametrize("percentile", [0.5, 0.9, 0.95, 0.99])
def test_a_sparse_metric_is_capped_at_a_percentile_of_its_values_above_zero_never_at_zero(percentile):
    """90% of users at 0 (a revenue metric: one user in ten buys): the percentile of every user's
    value would be 0 from the 90th on, and would cap every buyer at 0. Over the buyers' values the
    cap is numpy's percentile of them, within GAMMA; it lowers buyers only, and no user at 0 or
    below is counted as lowered. Pages cut to few bins keep the zeros and the refunds apart from
    the buyers, so the buyers are still counted exactly."""
    rng = random.Random(28)
    drawn = []
    for n in range(20_000):
        value = round(rng.lognormvariate(3, 1.2), 2) if n % 10 == 0 else (-5.0 if n % 97 == 0 else 0.0)
        drawn.append((rng.choice(["control", "b"]), value, 0.0))
    everyone = np.array([value for _, value, _ in drawn])
    assert float(np.quantile(everyone, 0.9, method="inverted_cdf")) == 0.0  # what capped buyers at 0
    for bins_each in (10**6, 40):
        histograms = pages_of(drawn, page_size=5000, bins_each=bins_each)
        assert all(min(histogram.bins) <= 0 for histogram in histograms.values())
        cap = capping.percentile_cap(list(histograms.values()), percentile)
        exact = float(np.quantile(above_zero(drawn), percentile, method="inverted_cdf"))
        assert cap is not None and exact <= cap and cap > 0
        if bins_each > 10**5:
            assert cap <= exact * capping.GAMMA
        check_sums(drawn, histograms, cap)


def test_no_value_above_zero_no_cap():
    """Only zeros and refunds: nothing a cap above 0 could lower, and no percentile to take."""
    histogram = Histogram()
    for value in (0.0, 0.0, -3.0):
        histogram.add(value, 0.0)
    assert capping.percentile_cap([histogram], 0.9) is None


def test_limit_never_merges_a_bin_above_zero_with_zeros():
    histogram = Histogram()
    for value in [0.0] * 50 + [-float(v) for v in range(1, 40)] + [float(v) for v in range(1, 100)]:
        histogram.add(value, 0.0)
    histogram.limit(32)
    assert len(histogram.bins) <= 32
    above = [b for key, b in histogram.bins.items() if key > 0]
    assert all(b[capping.MIN] > 0 for b in above)
    assert sum(b[capping.USERS] for b in above) == 99


def test_a_plus_50_percent_lift_on_a_sparse_metric_is_found_under_a_percentile_cap():
    """10,000 users an arm, 90% of them at 0, b's buyers spending 50% more: the sums the nightly
    job's pages store (histograms cut to a page's bins, serialized, added up), capped at the 90th
    percentile of the values above 0, give the stats layer a lift that it finds, at the
    fixed-horizon p-value of scipy's Welch test on the same capped values. Capped at the 90th
    percentile of every value, 0 here, every buyer was 0: no lift, no p-value, keep_running."""
    from scipy import stats as scipy_stats

    from abacus.experiments.metrics_spec import MetricSpec
    from abacus.nightly.sums import PageSums
    from abacus.nightly.values import UserValues
    from abacus.stats.analysis import MEAN, Settings, analyse

    metric = MetricSpec.model_validate(
        {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"percentile": 0.9}}
    )
    rng = np.random.default_rng(28)
    values = {"control": np.zeros(10_000), "b": np.zeros(10_000)}
    for variant, lift in (("control", 1.0), ("b", 1.5)):
        buyers = rng.choice(10_000, size=1_000, replace=False)
        values[variant][buyers] = np.round(rng.lognormal(3, 1.0, size=1_000) * lift, 2)
    total = PageSums(["control", "b"], [metric])
    for start in range(0, 10_000, 2_500):  # pages of 5,000 users, both variants
        page = PageSums(["control", "b"], [metric])
        for variant, drawn in values.items():
            for value in drawn[start : start + 2_500]:
                page.add_user(variant, UserValues([float(value)], [0.0]), False)
        total.merge(PageSums.from_json(json.loads(json.dumps(page.to_json()))))
    everyone = np.concatenate(list(values.values()))
    assert float(np.quantile(everyone, 0.9, method="inverted_cdf")) == 0.0
    cap = total.metrics[0].percentile_cap(metric)
    exact = float(np.quantile(everyone[everyone > 0], 0.9, method="inverted_cdf"))
    assert cap is not None and exact <= cap <= exact * capping.GAMMA

    variants = total.statistics([metric], ["control", "b"], 0)[0]
    analysis = analyse(MEAN, variants, Settings(control="control", weights={"control": 50, "b": 50}, cuped=False))
    capped = {variant: np.minimum(drawn, cap) for variant, drawn in values.items()}
    b = next(row for row in analysis["variants"] if row["key"] == "b")
    welch = scipy_stats.ttest_ind(capped["b"], capped["control"], equal_var=False)
    assert b["lift"]["relative"] == pytest.approx(capped["b"].mean() / capped["control"].mean() - 1, rel=1e-9)
    assert b["p_value_fixed"] == pytest.approx(welch.pvalue, rel=1e-3) and welch.pvalue < 1e-6
    assert b["significant"] and analysis["verdict"]["decision"] == "ship", analysis["verdict"]
