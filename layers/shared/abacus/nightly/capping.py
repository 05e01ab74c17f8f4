"""Percentile caps: one variant's users' values of a metric kept as a histogram whose bins are
log-spaced (a bin's values are within a factor GAMMA of each other, as in DDSketch), each bin
holding its users' count, sums (of the value, its square, the pre-exposure value and value times
pre-exposure value) and its largest value. Histograms of pages of users add up. The merge finds
the bin holding the percentile's rank among every variant's users, caps at the largest value in
that bin (a user's value, within GAMMA of the percentile's exact value) and sums each variant's
users capped at it, exactly: below the cap from the bins' sums, above it as the cap.

The percentile is taken over the values above 0 ("ignore zeros", as GrowthBook offers it and
Statsig does by default). A cap is an upper one: it never lowers a value of 0 or below, so those
users only pulled the percentile down into them. On a sparse metric, where most users have 0 (a
revenue metric: few buy), the percentile of every user's value is 0 itself once the zeros reach
it, and capping every buyer at 0 erases any effect. Over the values above 0 the cap is always
above 0, and it does not move with how many users convert, which the treatment may change.

A histogram keeps at most `limit` bins; past it, its bins of 0 and below merge into one, then its
lowest bins above 0 (their sums stay exact; the cap is only less precise if the percentile falls
among them, which for the top percentiles needs more occupied bins above the percentile than a
page has users there). A bin never holds values on both sides of 0, so the users above 0 are
counted exactly. Pure: no storage, no I/O."""

import math
from dataclasses import dataclass, field

GAMMA = 1.02  # the cap is within 2% of the percentile's value
_LOG_GAMMA = math.log(GAMMA)
# Keys order bins as their values: 0 holds zeros; positive keys hold positive values, higher for
# larger ones; negative keys mirror them. OFFSET keeps every positive double's key above 0.
_OFFSET = 100_000
# Bins a page may store over all its percentile-capped metrics and variants (the page's item must
# stay well under DynamoDB's 400 KB: about 70 KB compressed); a histogram gets at least MIN_BINS.
PAGE_BINS = 1024
MIN_BINS = 32

# A bin: [users, sum, sum of squares, pre-exposure sum, sum of value times pre-exposure value,
# largest value, smallest value]
USERS, SUM, SQUARES, PRE, CROSS, MAX, MIN = range(7)


def key_of(value: float) -> int:
    if value == 0:
        return 0
    index = math.ceil(math.log(abs(value)) / _LOG_GAMMA)
    return _OFFSET + index if value > 0 else -(_OFFSET + index)


@dataclass
class Histogram:
    bins: dict[int, list[float]] = field(default_factory=dict)

    def add(self, value: float, pre_value: float) -> None:
        found = self.bins.get(key := key_of(value))
        if found is None:
            self.bins[key] = [1, value, value * value, pre_value, value * pre_value, value, value]
            return
        found[USERS] += 1
        found[SUM] += value
        found[SQUARES] += value * value
        found[PRE] += pre_value
        found[CROSS] += value * pre_value
        found[MAX] = max(found[MAX], value)
        found[MIN] = min(found[MIN], value)

    def merge(self, other: "Histogram") -> None:
        for key, theirs in other.bins.items():
            mine = self.bins.get(key)
            if mine is None:
                self.bins[key] = list(theirs)
            else:
                self.bins[key] = _combined(mine, theirs)

    def limit(self, most: int) -> None:
        """Merges bins until at most `most` are left: those of 0 and below into one (a cap above 0
        never lowers them), then the lowest above 0 (each into the one above it)."""
        if len(self.bins) <= most:
            return
        self._merge_lowest([key for key in sorted(self.bins) if key <= 0])
        above = [key for key in sorted(self.bins) if key > 0]
        self._merge_lowest(above[: max(0, len(self.bins) - most + 1)])

    def _merge_lowest(self, keys: list[int]) -> None:
        """Merges the bins of `keys` (ascending) into one, kept at the highest of them."""
        if len(keys) < 2:
            return
        merged = self.bins.pop(keys[0])
        for key in keys[1:]:
            merged = _combined(merged, self.bins.pop(key))
        self.bins[keys[-1]] = merged

    def to_json(self) -> list[list[float]]:
        return [[key, *values] for key, values in sorted(self.bins.items())]

    @classmethod
    def from_json(cls, stored: list[list[float]]) -> "Histogram":
        return cls({int(entry[0]): [float(number) for number in entry[1:]] for entry in stored})


def _combined(one: list[float], other: list[float]) -> list[float]:
    sums = [a + b for a, b in zip(one[:MAX], other[:MAX], strict=True)]
    return [*sums, max(one[MAX], other[MAX]), min(one[MIN], other[MIN])]


def percentile_cap(histograms: list[Histogram], percentile: float) -> float | None:
    """The cap at `percentile` of the values above 0 of the users in `histograms` (None: no such
    value, so nothing to cap): the largest value in the bin holding the user of rank
    ceil(percentile x users above 0) in ascending order (numpy's "inverted_cdf" percentile of
    those values, rounded up to a value within GAMMA of it)."""
    users: dict[int, float] = {}
    largest: dict[int, float] = {}
    for histogram in histograms:
        for key, values in histogram.bins.items():
            if key <= 0:
                continue  # zeros and below: never capped, and they do not set the cap
            users[key] = users.get(key, 0) + values[USERS]
            largest[key] = max(largest.get(key, -math.inf), values[MAX])
    total = sum(users.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(percentile * total - 1e-9))
    seen = 0.0
    for key in sorted(users):
        seen += users[key]
        if seen >= rank:
            return _above_merged_bins(histograms, largest[key])
    raise AssertionError("the rank is within the users")


def _above_merged_bins(histograms: list[Histogram], cap: float) -> float:
    """A bin merged by `limit` may hold values on both sides of the cap: the cap rises to its
    largest value, so that every bin is wholly at or below the cap, or above it."""
    straddled = [v[MAX] for h in histograms for v in h.bins.values() if v[MIN] <= cap < v[MAX]]
    return _above_merged_bins(histograms, max(straddled)) if straddled else cap


def capped_sums(histogram: Histogram, cap: float) -> tuple[float, float, float, int]:
    """(sum, sum of squares, sum of value times pre-exposure value, users lowered) of the
    histogram's users, each value capped at `cap`."""
    total = squares = cross = 0.0
    lowered = 0
    for values in histogram.bins.values():
        if values[MAX] <= cap:
            total += values[SUM]
            squares += values[SQUARES]
            cross += values[CROSS]
        else:  # every value of the bin is above the cap (percentile_cap)
            count = values[USERS]
            total += count * cap
            squares += count * cap * cap
            cross += cap * values[PRE]
            lowered += round(count)
    return total, squares, cross, lowered
