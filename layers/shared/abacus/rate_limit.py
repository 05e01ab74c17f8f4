"""Requests per minute per project token (template parameter TokenRateLimitPerMinute): one
project's app cannot take the API's whole throughput from the others.

Every Lambda environment counts its requests locally and adds them to the project's shared
counter of the minute (one DynamoDB update) at most once a second, deciding in between from the
last total it saw plus its own count. So the limit costs at most one write a second per
environment, and can be overshot by about one second of traffic per environment: a fixed-window
limit, as API Gateway usage plans are, not an exact one.
"""

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pynamodb.exceptions import PynamoDBException

from abacus.errors import AbacusError
from abacus.storage import rate_limits

WINDOW_SECONDS = 60


class TooManyRequests(AbacusError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, field="token")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass
class _Window:
    minute: int
    shared_total: int = 0  # the shared counter when this environment last added to it
    unshared: int = 0  # counted here since then
    shared_at: float = -math.inf


class RateLimiter:
    def __init__(
        self,
        limit_per_minute: int,
        share_every_seconds: float = 1.0,
        add_hits: Callable[[str, int, int], int] = rate_limits.add_hits,
        clock: Callable[[], float] = time.time,
    ):
        self.limit_per_minute = limit_per_minute
        self.share_every_seconds = share_every_seconds
        self._add_hits = add_hits
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def check(self, project_id: str) -> None:
        """Counts one request of the project; TooManyRequests (429) when the minute's limit is reached."""
        if self.limit_per_minute <= 0:
            return
        now = self._clock()
        minute = int(now // WINDOW_SECONDS)
        with self._lock:
            window = self._windows.get(project_id)
            if window is None or window.minute != minute:
                window = self._windows[project_id] = _Window(minute)
            window.unshared += 1
            share = now - window.shared_at >= self.share_every_seconds
            if share:
                hits, window.unshared, window.shared_at = window.unshared, 0, now
        if share:
            try:
                total = self._add_hits(project_id, minute, hits)
            except PynamoDBException:
                # The limit protects the API; it must not take it down: count on, share later.
                with self._lock:
                    window.unshared += hits
            else:
                with self._lock:
                    window.shared_total = max(window.shared_total, total)
        if window.shared_total + window.unshared > self.limit_per_minute:
            retry_after = max(1, math.ceil((minute + 1) * WINDOW_SECONDS - now))
            raise TooManyRequests(
                f"token: more than {self.limit_per_minute} requests this minute; retry in {retry_after} s",
                retry_after,
            )


def from_environment() -> RateLimiter:
    return RateLimiter(int(os.environ.get("ABACUS_TOKEN_RATE_LIMIT_PER_MINUTE", "0")))
