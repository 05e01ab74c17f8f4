"""The nightly job's sums of the primary metric per value of a breakdown property (breakdowns.py).

A page keeps its PAGE_VALUES most common values of each property and adds the rest of its users
to "other"; the merge keeps at most MERGE_VALUES, so neither a page item nor the merge grows with
a property's distinct values. Each user is counted once, in their value or in "other". A value
dropped somewhere (a page with more values than it keeps, or the merge) may have some of its
users in "other": `complete` says whether it was kept by every trim, and so holds all of them.

Only ResultsFunction and NightlyWorkerFunction import this module (through abacus.nightly.sums)."""

from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, Self

from abacus.core.breakdowns import Value, key_of, value_of
from abacus.experiments.metrics_spec import MetricSpec

PAGE_VALUES = 100
MERGE_VALUES = 1_000


class Sums(Protocol):
    exposures: Counter[str]

    def merge(self, other: Self) -> None: ...


def segment_metric(primary: MetricSpec) -> MetricSpec:
    """The primary metric as its breakdowns sum it: a percentile cap is taken over every user once
    every page is in, after pages have summed their values, so segments are not capped by it."""
    if primary.cap is not None and primary.cap.percentile is not None:
        return primary.model_copy(update={"cap": None})
    return primary


def _users(sums: Sums) -> int:
    return sum(sums.exposures.values())


class Shown[S: Sums](NamedTuple):
    value: Value
    sums: S
    complete: bool  # every trim kept this value: all its users are in `sums`


class Segments[S: Sums]:
    """One breakdown property's sums per value (keyed by breakdowns.key_of) and the rest's."""

    def __init__(self, make: Callable[[], S] | None) -> None:
        self.make = make  # a new, empty sums (None for a stored page's, which is only merged)
        self.by_value: dict[str, S] = {}
        self.other: S | None = None
        self.trims = 0  # times values were moved into `other`, on a page or in the merge
        self.kept_through: Counter[str] = Counter()  # per value, the trims that kept it

    def of(self, value: Value) -> S:
        key = key_of(value)
        if key not in self.by_value:
            assert self.make is not None, "a stored page's segments are only merged"
            self.by_value[key] = self.make()
        return self.by_value[key]

    def _ranked(self) -> list[str]:
        """Values by users, most first (ties by value: the same order on every run)."""
        return sorted(self.by_value, key=lambda key: (-_users(self.by_value[key]), key))

    def _into_other(self, sums: S) -> None:
        if self.other is None:
            self.other = sums
        else:
            self.other.merge(sums)

    def trim(self, limit: int) -> None:
        """Keeps the `limit` most common values; the others' users go to "other"."""
        if len(self.by_value) <= limit:
            return
        ranked = self._ranked()
        for key in ranked[limit:]:
            self._into_other(self.by_value.pop(key))
        self.trims += 1
        self.kept_through.update(ranked[:limit])

    def merge(self, theirs: "Segments[S]") -> None:
        for key, sums in theirs.by_value.items():
            if key in self.by_value:
                self.by_value[key].merge(sums)
            else:
                self.by_value[key] = sums
        if theirs.other is not None:
            self._into_other(theirs.other)
        self.trims += theirs.trims
        self.kept_through.update(theirs.kept_through)
        self.trim(MERGE_VALUES)

    def top(self, count: int, empty: S) -> tuple[list[Shown[S]], S | None]:
        """The `count` most common values, and "other" (None: no user in it) with the rest added
        into `empty`."""
        ranked = self._ranked()
        shown = [
            Shown(value_of(key), self.by_value[key], self.kept_through[key] == self.trims) for key in ranked[:count]
        ]
        rest = [self.by_value[key] for key in ranked[count:]] + ([self.other] if self.other is not None else [])
        if not rest:
            return shown, None
        for sums in rest:
            empty.merge(sums)
        return shown, empty

    def to_json(self, limit: int, dump: Callable[[S], dict[str, Any]]) -> dict[str, Any]:
        self.trim(limit)
        return {
            "values": {key: dump(sums) for key, sums in self.by_value.items()},
            "other": dump(self.other) if self.other is not None else None,
            "trims": self.trims,
            "kept_through": dict(self.kept_through),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any], load: Callable[[dict[str, Any]], S]) -> "Segments[S]":
        segments: Segments[S] = cls(None)
        segments.by_value = {key: load(sums) for key, sums in stored["values"].items()}
        segments.other = load(stored["other"]) if stored["other"] is not None else None
        segments.trims = int(stored["trims"])
        segments.kept_through = Counter({key: int(n) for key, n in stored["kept_through"].items()})
        return segments
