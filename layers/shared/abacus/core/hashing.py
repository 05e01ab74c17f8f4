"""PostHog-compatible bucketing, so a flag migrated from PostHog keeps every user in the same variant.

h(key, id, salt) = int(sha1(f"{key}.{id}{salt}").hexdigest()[:15], 16) / float(0xFFFFFFFFFFFFFFF)
(the scale a float, as in the posthog SDK: int / int would round differently in the last bit).
"""

import hashlib
from collections.abc import Sequence

_LONG_SCALE = float(0xFFFFFFFFFFFFFFF)


def bucket(flag_key: str, distinct_id: str, salt: str = "") -> float:
    """A number in [0, 1], uniform over ids and fixed for (flag_key, distinct_id, salt)."""
    digest = hashlib.sha1(f"{flag_key}.{distinct_id}{salt}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16) / _LONG_SCALE


def in_rollout(flag_key: str, distinct_id: str, rollout_percentage: float) -> bool:
    return bucket(flag_key, distinct_id) <= rollout_percentage / 100


def pick_variant(flag_key: str, distinct_id: str, variants: Sequence[tuple[str, float]]) -> str:
    """The variant whose cumulative weight range (in listed order) holds the user's variant hash.

    `variants` are (key, weight) pairs with weights in percent summing to 100: whole ones, or a
    bandit's with two decimals (experiments/bandit_weights.py).
    """
    point = bucket(flag_key, distinct_id, salt="variant")
    lower = 0.0
    for key, weight in variants:
        upper = lower + weight / 100
        if lower <= point < upper:
            return key
        lower = upper
    # point == 1.0 exactly (or float rounding at the top): the last range is closed.
    return variants[-1][0]
