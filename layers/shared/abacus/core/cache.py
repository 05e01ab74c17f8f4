"""A small time-to-live cache for what the request path reads often and changes rarely
(experiment definitions, project tokens), kept per Lambda execution environment. It holds at most
`max_entries`: when full, the entry used least recently goes, so a caller sending keys it makes up
can never grow it past its bound, nor flush what the real traffic uses all at once.

Every cache made is known (weakly) to `clear_every_cache`, which an execution environment restored
from a SnapStart snapshot calls (abacus.http.snapstart): entries kept from before the snapshot would
be as old as the snapshot, however fresh time.monotonic() may say they are."""

import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


def default_ttl() -> float:
    """Seconds, from ABACUS_CACHE_SECONDS (template parameter CacheSeconds); 0 disables caching."""
    return float(os.environ.get("ABACUS_CACHE_SECONDS", "30"))


def _always(_: object) -> bool:
    return True


# Every cache made, weakly: a cache no one holds any more (a test's) goes as it would without this set.
_every_cache: "weakref.WeakSet[TtlCache[Any, Any]]" = weakref.WeakSet()


class TtlCache[K, V]:
    def __init__(self, ttl_seconds: float | None = None, max_entries: int = 10_000):
        self.ttl_seconds = default_ttl() if ttl_seconds is None else ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        _every_cache.add(self)

    def get(self, key: K, load: Callable[[], V], keep: Callable[[V], bool] = _always) -> V:
        """The cached value for `key`, or `load()`, cached for the TTL when `keep` says so."""
        with self._lock:
            entry = self._fresh(key)
        if entry is not None:
            return entry[1]
        value = load()
        if keep(value):
            self.put(key, value)
        return value

    def peek(self, key: K) -> V | None:
        """The value of `key` while it lasts, or None (loading nothing)."""
        with self._lock:
            entry = self._fresh(key)
        return None if entry is None else entry[1]

    def holds(self, key: K) -> bool:
        """Whether `key` has a value that has not expired."""
        with self._lock:
            return self._fresh(key) is not None

    def put(self, key: K, value: V) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _fresh(self, key: K) -> tuple[float, V] | None:
        """The entry of `key` while it lasts (the lock held), marked as used most recently."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def clear_every_cache() -> int:
    """Empties every TtlCache of this process; how many there are."""
    caches = list(_every_cache)
    for cache in caches:
        cache.clear()
    return len(caches)
