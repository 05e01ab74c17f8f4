"""Bucketing: PostHog's published formula, uniform over ids, independent across experiments."""

import hashlib
import random
from collections import Counter

import pytest
from scipy.stats import chi2_contingency, chisquare

from abacus.core import hashing


def test_bucket_is_posthogs_formula():
    # PostHog: int(sha1(f"{key}.{id}{salt}").hexdigest()[:15], 16) / 0xFFFFFFFFFFFFFFF, the scale
    # taken as a float (as the posthog SDK's LONG_SCALE is), which rounds differently from int / int.
    for key, distinct_id, salt in [("flag", "user-1", ""), ("flag", "user-1", "variant"), ("x-y", "ü #/", "")]:
        digest = hashlib.sha1(f"{key}.{distinct_id}{salt}".encode()).hexdigest()
        assert hashing.bucket(key, distinct_id, salt) == int(digest[:15], 16) / float(0xFFFFFFFFFFFFFFF)


def test_variant_ranges_follow_the_listed_order():
    variants = [("control", 20), ("a", 30), ("b", 50)]
    for index in range(2000):
        point = hashing.bucket("exp", f"u{index}", "variant")
        expected = "control" if point < 0.2 else "a" if point < 0.5 else "b"
        assert hashing.pick_variant("exp", f"u{index}", variants) == expected


@pytest.mark.parametrize(
    ("key", "variants"),
    [
        ("split-even", [("control", 50), ("a", 50)]),
        ("split-three", [("control", 50), ("a", 25), ("b", 25)]),
        ("split-uneven", [("control", 10), ("a", 20), ("b", 30), ("c", 40)]),
    ],
)
def test_split_matches_weights_over_200000_ids(key, variants):
    rng = random.Random(key)
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(200_000)]
    counts = Counter(hashing.pick_variant(key, distinct_id, variants) for distinct_id in ids)
    observed = [counts[k] for k, _ in variants]
    expected = [200_000 * weight / 100 for _, weight in variants]
    assert chisquare(observed, expected).pvalue > 0.001


def test_two_experiments_assign_independently():
    variants = [("control", 50), ("b", 30), ("c", 20)]
    ids = [f"id-{i}" for i in range(200_000)]
    pairs = Counter(
        (hashing.pick_variant("first", i, variants), hashing.pick_variant("second", i, variants)) for i in ids
    )
    keys = [k for k, _ in variants]
    table = [[pairs[a, b] for b in keys] for a in keys]
    assert chi2_contingency(table).pvalue > 0.001


def test_zero_weight_variant_is_never_chosen():
    variants = [("control", 100), ("never", 0)]
    assert {hashing.pick_variant("z", f"u{i}", variants) for i in range(1000)} == {"control"}


def test_rollout_includes_the_requested_share():
    inside = sum(hashing.in_rollout("roll", f"u{i}", 30) for i in range(20_000))
    assert abs(inside / 20_000 - 0.30) < 0.02


def test_users_shard_evenly_and_the_shard_is_the_sha1_prefix():
    import hashlib
    from collections import Counter

    from abacus.core.keys import shard_of

    assert shard_of("user-42", 16) == int(hashlib.sha1(b"user-42").hexdigest()[:8], 16) % 16
    counts = Counter(shard_of(f"user-{index}", 16) for index in range(16_000))
    # A binomial(16,000, 1/16) count lies within 5 standard deviations (about 153) of 1,000.
    assert len(counts) == 16 and all(abs(count - 1000) < 153 for count in counts.values())
