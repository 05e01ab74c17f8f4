"""The nightly job's statistics (abacus.nightly.values, then abacus.nightly.sums in pages stored
as JSON and merged) against a brute-force recount of the users' raw events."""

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from abacus.experiments.metrics_spec import MetricSpec
from abacus.nightly.sums import PageSums
from tests.unit.nightly.plain import Event, computed

METRICS = [
    MetricSpec.model_validate({"event": "buy", "window_days": 3}),
    MetricSpec.model_validate({"event": "view", "kind": "count", "window_days": 2}),
    MetricSpec.model_validate({"event": "buy", "kind": "sum", "property": "amount", "window_days": 5}),
]
VARIANTS = ["control", "b", "c"]


def random_users(rng: random.Random, start: datetime) -> list[tuple[str, datetime, list[tuple[str, datetime, object]]]]:
    """150 users exposed over ten days from `start` (some after the cut-off), each with up to six
    events: (variant, exposure, [(event, time, amount)]) per user."""
    users = []
    for index in range(150):
        exposed = start + timedelta(hours=rng.uniform(0, 24 * 10))
        user_events: list[tuple[str, datetime, object]] = []
        for n in range(rng.randint(0, 6)):
            name = rng.choice(["buy", "view", "other"])
            # Some before the exposure: inside the 14-day pre-exposure window, and further back.
            at = exposed + timedelta(hours=rng.uniform(-48, 150) if n < 4 else rng.uniform(-24 * 20, 0))
            amount = round(rng.uniform(1, 100), 2) if rng.random() < 0.9 else "n/a"  # some not numeric
            user_events.append((name, at, amount))
        users.append((VARIANTS[index % 3], exposed, user_events))
    return users


def merged_pages(users: list, cutoff: datetime) -> PageSums:
    """The users' sums, in pages of 40 each stored as JSON, then merged."""
    total = PageSums(VARIANTS, METRICS)
    for first in range(0, len(users), 40):
        page = PageSums(VARIANTS, METRICS)
        for variant, exposed, user_events in users[first : first + 40]:
            events = [Event(name, at, {"amount": amount}) for name, at, amount in user_events]
            values, _ = computed(METRICS, exposed, events, cutoff, pre_days=14)
            page.add_user(variant, values, True, exposed)
        total.merge(PageSums.from_json(json.loads(json.dumps(page.to_json()))))
    return total


def test_statistics_equal_a_brute_force_recount():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    cutoff = datetime(2026, 11, 10, tzinfo=UTC)
    users = random_users(random.Random(7), start)

    def brute_force(event: str, window_days: int, value) -> dict:
        """Per variant: exposures, sum and sum of squares of the values, and CUPED's pre-exposure
        sum, sum of squares and cross-product (the same value over the 14 days before exposure)."""
        totals = {v: [0, 0.0, 0.0, 0.0, 0.0, 0.0] for v in VARIANTS}
        for variant, exposed, user_events in users:
            if exposed >= cutoff:
                continue
            end = min(exposed + timedelta(days=window_days), cutoff)
            inside = [e for e in user_events if e[0] == event and exposed <= e[1] < end]
            before = [e for e in user_events if e[0] == event and exposed - timedelta(days=14) <= e[1] < exposed]
            x, pre = value(inside), value(before)
            for index, amount in enumerate([1, x, x * x, pre, pre * pre, pre * x]):
                totals[variant][index] += amount
        return totals

    conversion = brute_force("buy", 3, lambda inside: 1.0 if inside else 0.0)
    count = brute_force("view", 2, lambda inside: float(len(inside)))
    money = brute_force("buy", 5, lambda inside: sum(e[2] for e in inside if isinstance(e[2], float)))

    exposed_before = [user for user in users if user[1] < cutoff]  # those an analysis counts
    got = merged_pages(exposed_before, cutoff).statistics(METRICS, VARIANTS, 14)

    assert {v.key: [v.exposures, v.conversions] for v in got[0]} == {k: [t[0], t[1]] for k, t in conversion.items()}
    for v in got[0]:
        assert [v.pre_sum, v.pre_sum_squares, v.cross_sum] == conversion[v.key][3:]
    for statistics, expected in ((got[1], count), (got[2], money)):
        for v in statistics:
            got_sums = [v.exposures, v.sum, v.sum_squares, v.pre_sum, v.pre_sum_squares, v.cross_sum]
            assert got_sums == pytest.approx(expected[v.key], rel=1e-12)
    assert sum(t[3] for t in conversion.values()) > 5  # users with a purchase before their exposure
    assert sum(t[0] for t in conversion.values()) > 60 and sum(t[1] for t in conversion.values()) > 5
    assert len(exposed_before) < len(users)  # some exposed after the cut-off
