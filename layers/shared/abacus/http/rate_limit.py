"""Requests per minute per project token (template parameter TokenRateLimitPerMinute): one
project's app cannot take the API's whole throughput from the others.

Every Lambda environment counts its requests locally and, at most once a second, adds them to its
shard of the project's counter of the minute (one DynamoDB UpdateItem; each environment picks one
of `rate_limits.SHARDS` shards at random at its first request) and reads every shard (one BatchGetItem of
SHARDS items, eventually consistent), deciding in between from the total it last saw plus its own
count. So the limit costs each environment at most one write and one BatchGetItem a second (two
round trips on one request a second), and can be overshot by about one second of traffic per
environment: a fixed-window limit, as API Gateway usage plans are, not an exact one.

Shards, because one key takes about 1,000 writes a second: with one counter, a project on 1,000
environments would take its whole limit. A counter key takes environments / SHARDS writes a second
and, as every environment reads every shard, environments x 0.5 read units a second: 62.5 writes
and 500 read units a key at 1,000 environments.

A count seen is never taken back within its minute: a shard's count only grows, so an eventually
consistent read older than what this environment saw before, or a shard left unread (unprocessed,
or the read failed), keeps the larger count it saw; its own shard's count is the one its write
returned. A failed write keeps the hits to share at the next second: the limit must never take the
API down.
"""

import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pynamodb.exceptions import PynamoDBException

from abacus.core.errors import AbacusError
from abacus.storage import rate_limits

WINDOW_SECONDS = 60


class TooManyRequests(AbacusError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int, field: str = "token"):
        super().__init__(message, field=field)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass
class _Window:
    minute: int
    seen: dict[int, int] = field(default_factory=dict)  # each shard's largest count seen this minute
    unshared: int = 0  # counted here since this environment last added to its shard
    shared_at: float = -math.inf

    def saw(self, counts: Mapping[int, int]) -> None:
        for shard, hits in counts.items():
            self.seen[shard] = max(self.seen.get(shard, 0), hits)

    @property
    def total(self) -> int:
        return sum(self.seen.values()) + self.unshared


class RateLimiter:
    def __init__(
        self,
        limit_per_minute: int,
        share_every_seconds: float = 1.0,
        shards: int = rate_limits.SHARDS,
        shard: int | None = None,
        add_hits: Callable[[str, int, int, int], int] = rate_limits.add_hits,
        read_hits: Callable[[str, int, int], Mapping[int, int]] = rate_limits.shard_hits,
        clock: Callable[[], float] = time.time,
        counted: str = "requests",
    ):
        self.limit_per_minute = limit_per_minute
        self.counted = counted  # what the 429's message says there were too many of
        self.share_every_seconds = share_every_seconds
        self.shards = shards
        self._shard = shard
        self._add_hits = add_hits
        self._read_hits = read_hits
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    @property
    def shard(self) -> int:
        """This environment's shard: random, so that the environments spread over the shards evenly.
        Drawn at the first request, not when the limiter is made (the handler's import): every
        environment SnapStart restores from one snapshot would otherwise share the snapshot's draw."""
        if self._shard is None:
            self._shard = random.randrange(self.shards)
        return self._shard

    @shard.setter
    def shard(self, shard: int) -> None:
        self._shard = shard

    def check(self, project_id: str, field: str = "token") -> None:
        """Counts one request of the project; TooManyRequests (429, naming `field`) when the minute's
        limit is reached."""
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
            self._share(project_id, window, hits)
        if window.total > self.limit_per_minute:
            retry_after = max(1, math.ceil((minute + 1) * WINDOW_SECONDS - now))
            raise TooManyRequests(
                f"{field}: more than {self.limit_per_minute} {self.counted} this minute; retry in {retry_after} s",
                retry_after,
                field,
            )

    def _share(self, project_id: str, window: _Window, hits: int) -> None:
        """Adds this environment's `hits` to its shard, then reads every shard."""
        try:
            own = self._add_hits(project_id, window.minute, self.shard, hits)
        except PynamoDBException:
            # The limit protects the API; it must not take it down: count on, share later.
            with self._lock:
                window.unshared += hits
            return
        with self._lock:
            window.saw({self.shard: own})
        try:
            counts = self._read_hits(project_id, window.minute, self.shards)
        except PynamoDBException:
            return  # the total as last seen, with this environment's hits in its own shard's count
        with self._lock:
            window.saw(counts)


def from_environment() -> RateLimiter:
    return RateLimiter(int(os.environ.get("ABACUS_TOKEN_RATE_LIMIT_PER_MINUTE", "0")))


# The bucket every request carrying an unknown token or flags key counts in, all projects together
# (`rate#UNKNOWN#<minute>#NN`: a project id is lowercase, so never this one).
UNKNOWN_KEYS = "UNKNOWN"


def unknown_keys_from_environment() -> RateLimiter:
    """The limit of requests with unknown keys (template parameter UnknownKeyRateLimitPerMinute):
    they are counted as a project's are, in the bucket UNKNOWN_KEYS, so that keys made up cannot
    send the stack unmetered traffic."""
    limit = int(os.environ.get("ABACUS_UNKNOWN_KEY_RATE_LIMIT_PER_MINUTE", "0"))
    return RateLimiter(limit, counted="requests with unknown keys")
