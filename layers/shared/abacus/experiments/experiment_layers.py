"""Layers: experiments that must not share users take disjoint shares of a layer's users.

A layer's users are spread over 100 buckets by a layer-level hash, PostHog's variant hash of the
layer's own flag key (`$layer/<key>`): bucket = floor(100 h("$layer/<key>", id, "variant")). An
experiment of the layer takes `share` buckets at its launch, from those no running experiment of
the layer holds (the lowest free ones first), and serves only users in them: a user is in at most
one running experiment of a layer. A running experiment's buckets never change, so its users stay
in it whatever its neighbours do. When it completes (stop or ship) its buckets return to the
layer, and the next experiment to launch may take them: a user who was in the completed
experiment is then like any other user of those buckets (the completed experiment serves its
shipped variant, or control, to everyone, as any complete experiment does).

Local evaluation publishes the layer as a flag whose variants are its segments (contiguous runs
of buckets, each held by one experiment or free), and each experiment's conditions require that
flag to evaluate to the experiment's key (a PostHog flag dependency).
"""

from collections.abc import Mapping, Sequence

from abacus.core import hashing
from abacus.storage.layer_allocations import Ranges

BUCKETS = 100
FREE = "(free)"  # the variant of the layer flag's free segments: no experiment key holds brackets


class DoesNotFit(ValueError):
    def __init__(self, free: int, holders: Mapping[str, int]):
        self.free, self.holders = free, dict(holders)
        super().__init__(f"{free} free")


def flag_key(layer_key: str) -> str:
    """The layer's flag key: `$` cannot start an experiment key, so it names no experiment."""
    return f"$layer/{layer_key}"


def bucket(layer_key: str, distinct_id: str) -> int:
    return min(int(hashing.bucket(flag_key(layer_key), distinct_id, salt="variant") * BUCKETS), BUCKETS - 1)


def holds(ranges: Sequence[Sequence[int]] | None, layer_key: str, distinct_id: str) -> bool:
    """Whether the user's bucket of the layer is in an experiment's ranges."""
    if not ranges:
        return False
    point = bucket(layer_key, distinct_id)
    return any(first <= point < end for first, end in ranges)


def allocate(allocations: Mapping[str, Ranges], experiment: str, share: int) -> Ranges:
    """`share` buckets for `experiment`, the lowest that no other experiment holds; DoesNotFit when
    fewer are free."""
    taken = [False] * BUCKETS
    for owner, ranges in allocations.items():
        if owner != experiment:
            for first, end in ranges:
                taken[first:end] = [True] * (end - first)
    free = [b for b in range(BUCKETS) if not taken[b]]
    if len(free) < share:
        holders = {owner: size(ranges) for owner, ranges in allocations.items() if owner != experiment}
        raise DoesNotFit(len(free), holders)
    return as_ranges(free[:share])


def size(ranges: Sequence[Sequence[int]]) -> int:
    return sum(end - first for first, end in ranges)


def as_ranges(buckets: Sequence[int]) -> Ranges:
    """Sorted buckets as [first, end) runs."""
    runs: Ranges = []
    for b in buckets:
        if runs and runs[-1][1] == b:
            runs[-1][1] = b + 1
        else:
            runs.append([b, b + 1])
    return runs


def segments(allocations: Mapping[str, Ranges]) -> list[tuple[str, int]]:
    """The layer tiled in bucket order: (the experiment holding a run, or FREE; its size)."""
    owner_of = [FREE] * BUCKETS
    for owner, ranges in allocations.items():
        for first, end in ranges:
            owner_of[first:end] = [owner] * (end - first)
    tiles: list[tuple[str, int]] = []
    for owner in owner_of:
        if tiles and tiles[-1][0] == owner:
            tiles[-1] = (owner, tiles[-1][1] + 1)
        else:
            tiles.append((owner, 1))
    return tiles
