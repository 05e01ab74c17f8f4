"""The TTL cache the request path keeps per execution environment: bounded by entries, the least
recently used dropped first, and only the values its caller keeps (issue 28)."""

from functools import partial

from abacus.core.cache import TtlCache


def test_a_full_cache_drops_the_least_recently_used_entry_alone():
    cache: TtlCache[str, int] = TtlCache(ttl_seconds=60, max_entries=3)
    for key in "abc":
        cache.put(key, ord(key))
    assert cache.get("a", lambda: -1) == ord("a")  # used: now the most recent
    cache.put("d", ord("d"))
    assert len(cache) == 3 and not cache.holds("b")
    assert all(cache.holds(key) for key in "acd")


def test_only_the_values_kept_are_cached():
    cache: TtlCache[str, int | None] = TtlCache(ttl_seconds=60)
    loads: list[str] = []

    def load(key: str) -> int | None:
        loads.append(key)
        return None if key == "unknown" else 1

    def found(value: int | None) -> bool:
        return value is not None

    for _ in range(3):
        for key in ("known", "unknown"):
            cache.get(key, partial(load, key), keep=found)
    assert loads == ["known", "unknown", "unknown", "unknown"] and len(cache) == 1


def test_no_ttl_caches_nothing():
    cache: TtlCache[str, int] = TtlCache(ttl_seconds=0)
    cache.put("a", 1)
    assert cache.get("a", lambda: 2) == 2 and len(cache) == 0 and not cache.holds("a")
