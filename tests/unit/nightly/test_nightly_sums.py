"""The nightly job's per-variant sums (abacus.nightly.sums) carry what the skewness correction needs:
sums of cubes, and with a covariate its cubes and the mixed sums, and a ratio's mixed sums. They
add up over pages, survive a page's JSON, and are unknown (None), never undercounted, when a page
stored before them is among those added."""

import json
import random

import numpy as np
import pytest

from abacus.experiments.metrics_spec import MetricSpec
from abacus.nightly import snapshot
from abacus.nightly.sums import PageSums, _Sums
from abacus.nightly.values import UserValues
from abacus.stats import skewness
from abacus.stats.analysis import MEAN, Settings, analyse
from abacus.stats.ratio import ratio_variance

REVENUE = MetricSpec.model_validate({"event": "buy", "kind": "sum", "property": "amount"})
CONVERTED = MetricSpec.model_validate({"event": "buy"})
PER_ORDER = MetricSpec.model_validate(
    {
        "kind": "ratio",
        "numerator": {"event": "buy", "kind": "sum", "property": "amount"},
        "denominator": {"event": "buy", "kind": "count"},
    }
)
KEYS = ["control", "b"]


def users(seed: int, count: int) -> list[tuple[str, float, float, float]]:
    """(variant, revenue, pre-exposure revenue, orders) per user."""
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        orders = float(rng.choice([0, 0, 0, 1, 2]))
        amount = sum(rng.lognormvariate(3, 1.5) for _ in range(int(orders)))
        made.append((rng.choice(KEYS), amount, rng.lognormvariate(2, 1) if rng.random() < 0.4 else 0.0, orders))
    return made


def page_of(rows: list[tuple[str, float, float, float]], metrics: list[MetricSpec]) -> PageSums:
    sums = PageSums(KEYS, metrics)
    for variant, amount, pre, orders in rows:
        values = {"sum": amount, "conversion": float(amount > 0), "count": orders}
        parts = [part for metric in metrics for part in metric.components()]
        computed = [values[part.kind] for part in parts]
        sums.add_user(variant, UserValues(computed, [pre] * len(parts)), True)
    return sums


def stored(sums: PageSums) -> PageSums:
    """As a worker stores a page and the merge reads it back."""
    return PageSums.from_json(json.loads(json.dumps(sums.to_json())))


def test_pages_add_up_to_the_users_cubes_and_mixed_sums():
    rows = users(1, 3000)
    merged = PageSums(KEYS, [REVENUE])
    for start in range(0, len(rows), 700):
        merged.merge(stored(page_of(rows[start : start + 700], [REVENUE])))
    data = merged.statistics([REVENUE], KEYS, pre_days=14)[0]
    for variant in data:
        mine = np.array([(amount, pre) for key, amount, pre, _ in rows if key == variant.key])
        y, x = mine[:, 0], mine[:, 1]
        assert variant.sum_cubes == pytest.approx((y**3).sum(), rel=1e-12)
        assert variant.pre_sum_cubes == pytest.approx((x**3).sum(), rel=1e-12)
        assert variant.cross_sum_outcome_squared == pytest.approx((y * y * x).sum(), rel=1e-12)
        assert variant.cross_sum_pre_squared == pytest.approx((y * x * x).sum(), rel=1e-12)
    # The snapshot's rows keep them, and an analysis of those rows (the next nights' earlier looks) is the same.
    analysis = analyse(MEAN, data, Settings(sequential=False))
    again = analyse(MEAN, snapshot._variant_data(analysis), Settings(sequential=False))  # type: ignore[arg-type]
    assert again["variants"] == analysis["variants"]
    assert analysis["variants"][1]["sum_cubes"] == data[1].sum_cubes


def test_a_page_stored_before_cubes_makes_them_unknown_not_smaller():
    rows = users(2, 800)
    old = page_of(rows[:400], [REVENUE]).to_json()
    for metric in old["metrics"]:
        for name in _Sums.CUBE_FIELDS:
            del metric[name]
    for order in ([old, page_of(rows[400:], [REVENUE]).to_json()], [page_of(rows[400:], [REVENUE]).to_json(), old]):
        merged = PageSums(KEYS, [REVENUE])
        for page in order:
            merged.merge(PageSums.from_json(page))
        data = merged.statistics([REVENUE], KEYS, pre_days=14)[0]
        assert all(v.sum_cubes is None and v.cross_sum_pre_squared is None for v in data)
        assert sum(v.exposures for v in data) == 800  # the rest of the sums are whole


def test_a_conversion_needs_only_the_covariates_cubes():
    data = page_of(users(3, 500), [CONVERTED]).statistics([CONVERTED], KEYS, pre_days=14)[0]
    analysis = analyse("conversion", data, Settings(sequential=False))
    row = analysis["variants"][0]
    assert "pre_sum_cubes" in row and "cross_sum_pre_squared" in row
    assert "sum_cubes" not in row and "cross_sum_outcome_squared" not in row  # its conversions give them


def test_a_percentile_capped_metric_has_no_cubes():
    capped = MetricSpec.model_validate(
        {"event": "buy", "kind": "sum", "property": "amount", "cap": {"percentile": 0.9}}
    )
    data = page_of(users(4, 500), [capped]).statistics([capped], KEYS, pre_days=0)[0]
    assert all(v.sum_cubes is None for v in data)  # its histograms keep none: its test is not corrected


def test_a_ratios_mixed_sums_add_up_and_give_the_linearized_third_moment():
    rows = users(5, 2000)
    merged = PageSums(KEYS, [PER_ORDER])
    for start in range(0, len(rows), 500):
        merged.merge(stored(page_of(rows[start : start + 500], [PER_ORDER])))
    for variant in KEYS:
        mine = np.array([(amount, orders) for key, amount, _, orders in rows if key == variant])
        n, d = mine[:, 0], mine[:, 1]
        sums = merged.ratio_sums(0, 0, variant)
        assert sums.numerator_squares_cross == pytest.approx((n * n * d).sum(), rel=1e-12)
        assert sums.denominator_squares_cross == pytest.approx((n * d * d).sum(), rel=1e-12)
        assert ratio_variance(sums) > 0
        data = merged.statistics([PER_ORDER], KEYS, pre_days=0)[0][KEYS.index(variant)]
        ratio = n.sum() / d.sum()
        linear = ratio + (n - ratio * d) / d.mean()
        assert data.sum_cubes is not None
        third = skewness.third_moment(data.exposures, data.sum, data.sum_squares, data.sum_cubes)
        assert third == pytest.approx(((linear - linear.mean()) ** 3).mean(), rel=1e-6)
    old = merged.to_json()
    del old["ratio_cubes"]
    assert PageSums.from_json(old).ratio_sums(0, 0, "b").numerator_squares_cross is None
