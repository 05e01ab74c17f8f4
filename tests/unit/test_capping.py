"""Percentile caps (abacus.capping) against numpy's percentile and a brute-force winsorization of
the raw values: the cap is a user's value within GAMMA of the exact percentile, and the capped
sums are exact, however the users were split into pages and however far the pages' histograms
were cut down to their bin limit."""

import math
import random

import numpy as np
import pytest

from abacus import capping
from abacus.capping import Histogram


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
    values = np.array([value for _, value, _ in drawn])
    exact = float(np.quantile(values, percentile, method="inverted_cdf"))
    assert cap is not None and cap in set(values.tolist())
    assert exact <= cap <= (exact * capping.GAMMA if exact > 0 else exact / capping.GAMMA if exact < 0 else 0.0)
    check_sums(drawn, histograms, cap)


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
        exact = float(np.quantile([value for _, value, _ in drawn], percentile, method="inverted_cdf"))
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
