"""A small time-to-live cache for what the request path reads often and changes rarely
(experiment definitions, project tokens), kept per Lambda execution environment."""

import os
import threading
import time
from collections.abc import Callable


def default_ttl() -> float:
    """Seconds, from ABACUS_CACHE_SECONDS (template parameter CacheSeconds); 0 disables caching."""
    return float(os.environ.get("ABACUS_CACHE_SECONDS", "30"))


class TtlCache[K, V]:
    def __init__(self, ttl_seconds: float | None = None, max_entries: int = 10_000):
        self.ttl_seconds = default_ttl() if ttl_seconds is None else ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value for `key`, or `load()` (cached for the TTL)."""
        if self.ttl_seconds <= 0:
            return load()
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                return entry[1]
        value = load()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now + self.ttl_seconds, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
