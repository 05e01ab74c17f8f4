"""Verdict rules, and degenerate inputs that must give defined numbers (never NaN, never an error)."""

import json
import math

import pytest

from abacus.core.documents import Analysis
from abacus.stats.analysis import Settings, VariantData, analyse


def finite_everywhere(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_everywhere(v) for v in value)
    return True


def conversion(*counts, **settings) -> Analysis:
    variants = [VariantData("control" if i == 0 else f"v{i}", n, x) for i, (n, x) in enumerate(counts)]
    return analyse("conversion", variants, Settings(**settings))


def test_clear_winner_is_shipped():
    verdict = conversion((20_000, 2_000), (20_000, 2_400))["verdict"]
    assert verdict["decision"] == "ship" and verdict["variant"] == "v1"


def test_the_best_of_several_winners_is_shipped():
    verdict = conversion((20_000, 2_000), (20_000, 2_300), (20_000, 2_500))["verdict"]
    assert verdict == verdict | {"decision": "ship", "variant": "v2"}


def test_control_is_shipped_when_every_variant_is_worse():
    verdict = conversion((20_000, 2_400), (20_000, 2_000))["verdict"]
    assert verdict["decision"] == "ship" and verdict["variant"] == "control"


def test_no_effect_when_the_interval_excludes_the_mde():
    verdict = conversion((2_000_000, 200_000), (2_000_000, 200_400), mde=0.05)["verdict"]
    assert verdict["decision"] == "no_effect"


def test_keep_running_estimates_days_left():
    verdict = conversion((5_000, 500), (5_000, 510), days_running=5)["verdict"]
    days_left = verdict.get("days_left")
    assert verdict["decision"] == "keep_running" and days_left is not None and days_left > 0


def test_days_left_wait_for_a_full_day_of_exposures():
    verdict = conversion((11, 1), (12, 2), days_running=1 / 1440, planned_exposures=8_291)["verdict"]
    assert verdict["decision"] == "keep_running" and verdict["days_left"] is None, verdict
    assert verdict["reason"].endswith(
        "; the days left cannot be estimated before a full day of exposures (1 minute so far)"
    )


def test_sample_ratio_mismatch_is_invalid_whatever_the_lift():
    result = conversion((20_000, 2_000), (15_000, 2_400), weights={"control": 50, "v1": 50})
    assert result["srm"]["mismatch"] is True and result["verdict"]["decision"] == "invalid"


@pytest.mark.parametrize(
    "counts",
    [[(0, 0), (0, 0)], [(100, 0), (100, 0)], [(100, 100), (100, 100)], [(0, 0), (10, 3)], [(1, 1), (1, 0)]],
)
def test_degenerate_conversions_are_defined(counts):
    for sequential in (True, False):
        result = conversion(*counts, sequential=sequential)
        assert finite_everywhere(result)
        json.dumps(result, allow_nan=False)
        assert result["verdict"]["decision"] == "keep_running"


@pytest.mark.parametrize(
    "values",
    [
        [(0, 0.0, 0.0), (0, 0.0, 0.0)],  # no exposures
        [(1, 5.0, 25.0), (3, 3.0, 3.0)],  # a single user
        [(10, 20.0, 40.0), (10, 20.0, 40.0)],  # zero variance, equal
        [(10, 20.0, 40.0), (10, 30.0, 90.0)],  # zero variance, different
    ],
)
def test_degenerate_means_are_defined(values):
    variants = [
        VariantData("control" if i == 0 else "v", n, sum=s, sum_squares=q) for i, (n, s, q) in enumerate(values)
    ]
    result = analyse("mean", variants, Settings())
    assert finite_everywhere(result)
    json.dumps(result, allow_nan=False)


def test_refuses_impossible_input():
    with pytest.raises(ValueError, match="conversions"):
        conversion((10, 11), (10, 1))
    with pytest.raises(ValueError, match="control"):
        analyse("conversion", [VariantData("a", 1), VariantData("b", 1)], Settings())
    with pytest.raises(ValueError, match="sum_squares"):
        analyse("mean", [VariantData("control", 10, sum=10, sum_squares=1), VariantData("b", 1)], Settings())
