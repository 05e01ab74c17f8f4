"""Bucketing equals the official posthog SDK's own local evaluation, over 100,000 ids."""

import random

import pytest
from posthog.feature_flags import match_feature_flag_properties

from abacus.core import hashing

FLAGS = [
    ("checkout-test", 100, [("control", 50), ("test", 50)]),
    ("pricing-3way", 40, [("control", 34), ("cheap", 33), ("dear", 33)]),
    ("onboarding", 75.5, [("control", 10), ("a", 20), ("b", 30), ("c", 40)]),
]


def posthog_flag(key: str, rollout: float, variants: list[tuple[str, int]]) -> dict:
    return {
        "key": key,
        "active": True,
        "filters": {
            "groups": [{"properties": [], "rollout_percentage": rollout}],
            "multivariate": {"variants": [{"key": k, "rollout_percentage": w} for k, w in variants]},
        },
    }


@pytest.mark.parametrize(("key", "rollout", "variants"), FLAGS)
def test_same_variant_as_posthog_local_evaluation(key, rollout, variants):
    flag = posthog_flag(key, rollout, variants)
    rng = random.Random(key)
    ids = [f"user-{i}" for i in range(50_000)] + [f"{rng.getrandbits(64):x}@example.com" for _ in range(50_000)]
    mismatches = 0
    for distinct_id in ids:
        ours = (
            hashing.pick_variant(key, distinct_id, variants) if hashing.in_rollout(key, distinct_id, rollout) else False
        )
        theirs = match_feature_flag_properties(flag, distinct_id, {}, bucketing_value=distinct_id)
        mismatches += ours != theirs
    assert mismatches == 0
