"""breakdown_sums.Segments: each user counted once, in their value or in "other", whatever a page
or the merge drops; a value is `complete` only when every trim kept it."""

from collections import Counter
from typing import Any

import pytest

from abacus.nightly import breakdown_sums
from abacus.nightly.breakdown_sums import Segments


class Users:
    """The smallest sums: users per variant."""

    def __init__(self) -> None:
        self.exposures: Counter[str] = Counter()

    def merge(self, other: "Users") -> None:
        self.exposures.update(other.exposures)

    def dump(self) -> dict[str, Any]:
        return dict(self.exposures)

    @classmethod
    def load(cls, stored: dict[str, Any]) -> "Users":
        users = cls()
        users.exposures = Counter(stored)
        return users


def page(values: dict[Any, int], limit: int) -> Segments[Users]:
    """A page's segments as stored (kept to `limit` values) and read back by the merge."""
    segments = Segments(Users)
    for value, users in values.items():
        segments.of(value).exposures["control"] += users
    return Segments.from_json(segments.to_json(limit, Users.dump), Users.load)


def shown(segments: Segments[Users], count: int) -> tuple[dict[object, tuple[int, bool]], int]:
    top, other = segments.top(count, Users())
    return {s.value: (s.sums.exposures["control"], s.complete) for s in top}, (
        other.exposures["control"] if other else 0
    )


def test_values_a_page_drops_go_to_other_and_are_marked_incomplete():
    total: Segments[Users] = Segments(Users)
    total.merge(page({"a": 5, "b": 3, "c": 1}, limit=2))  # c to other
    total.merge(page({"a": 1, "c": 4, "d": 1}, limit=2))  # a kept (ties by value: a before d), d to other
    values, other = shown(total, count=10)
    assert values == {"a": (6, True), "c": (4, False), "b": (3, False)}
    assert other == 2, "c's user on the first page and d's on the second"
    assert sum(n for n, _ in values.values()) + other == 15, "every user once"


def test_a_page_with_few_values_drops_none_and_every_value_is_complete():
    total: Segments[Users] = Segments(Users)
    total.merge(page({"a": 5, "b": 3}, limit=2))
    total.merge(page({"b": 1, None: 2}, limit=2))
    values, other = shown(total, count=10)
    assert values == {"a": (5, True), "b": (4, True), None: (2, True)} and other == 0


def test_beyond_the_top_values_the_rest_is_other(monkeypatch):
    total: Segments[Users] = Segments(Users)
    total.merge(page({f"v{n:02}": 20 - n for n in range(14)}, limit=100))
    values, other = shown(total, count=10)
    assert list(values) == [f"v{n:02}" for n in range(10)]
    assert all(complete for _, complete in values.values())
    assert other == sum(20 - n for n in range(10, 14))


def test_the_merge_keeps_at_most_its_limit_of_values(monkeypatch):
    monkeypatch.setattr(breakdown_sums, "MERGE_VALUES", 3)
    total: Segments[Users] = Segments(Users)
    for start in range(0, 8, 2):  # eight values over four pages, two each
        total.merge(page({f"v{start}": 10 - start, f"v{start + 1}": 9 - start}, limit=100))
        assert len(total.by_value) <= 3
    values, other = shown(total, count=10)
    assert values == {"v0": (10, True), "v1": (9, True), "v2": (8, True)}, "kept by every trim: all their users"
    assert other == 7 + 6 + 5 + 4 + 3


def test_a_value_the_merge_dropped_that_comes_back_is_incomplete(monkeypatch):
    monkeypatch.setattr(breakdown_sums, "MERGE_VALUES", 3)
    total: Segments[Users] = Segments(Users)
    total.merge(page({"a": 10, "b": 9, "c": 8, "d": 1}, limit=100))  # the merge drops d
    total.merge(page({"d": 20}, limit=100))  # d is back, and the merge drops c
    values, other = shown(total, count=10)
    assert values == {"d": (20, False), "a": (10, True), "b": (9, True)}
    assert other == 8 + 1, "c's users, and d's first one"


@pytest.mark.parametrize("value", ["Chrome", 3, 2.5, True, None])
def test_values_keep_their_type_through_storage(value):
    segments = page({value: 1}, limit=10)
    assert [s.value for s in segments.top(10, Users())[0]] == [value]
