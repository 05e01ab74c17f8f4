"""The per-token rate limit: a fixed window a minute, counted locally and shared at most once a
second per environment."""

import pytest

from abacus.rate_limit import RateLimiter, TooManyRequests


class SharedCounter:
    """Stands for the DynamoDB counters: {(project, minute): hits}, and how often it was written."""

    def __init__(self):
        self.hits: dict[tuple[str, int], int] = {}
        self.writes = 0

    def add(self, project_id: str, minute: int, hits: int) -> int:
        self.writes += 1
        self.hits[(project_id, minute)] = self.hits.get((project_id, minute), 0) + hits
        return self.hits[(project_id, minute)]


class Clock:
    def __init__(self, now: float = 6_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def allowed(limiter: RateLimiter, project: str, requests: int) -> int:
    count = 0
    for _ in range(requests):
        try:
            limiter.check(project)
            count += 1
        except TooManyRequests:
            pass
    return count


def test_one_environment_gets_exactly_the_limit_when_sharing_every_request():
    counter, clock = SharedCounter(), Clock()
    limiter = RateLimiter(10, share_every_seconds=0, add_hits=counter.add, clock=clock)
    assert allowed(limiter, "p", 25) == 10
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("p")
    assert refused.value.status == 429 and refused.value.field == "token"
    assert refused.value.headers() == {"Retry-After": "60"}


def test_the_next_minute_starts_afresh_and_retry_after_counts_down_to_it():
    counter, clock = SharedCounter(), Clock(6_000_000.0 + 45)
    limiter = RateLimiter(5, share_every_seconds=0, add_hits=counter.add, clock=clock)
    assert allowed(limiter, "p", 6) == 5
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("p")
    assert refused.value.retry_after == 15
    clock.now += 15
    assert allowed(limiter, "p", 5) == 5


def test_projects_are_limited_separately():
    counter = SharedCounter()
    limiter = RateLimiter(3, share_every_seconds=0, add_hits=counter.add, clock=Clock())
    assert allowed(limiter, "a", 10) == 3
    assert allowed(limiter, "b", 10) == 3


def test_environments_share_the_limit_through_the_counter():
    counter, clock = SharedCounter(), Clock()
    environments = [RateLimiter(100, share_every_seconds=0, add_hits=counter.add, clock=clock) for _ in range(4)]
    total = sum(allowed(environment, "p", 50) for environment in environments)
    assert total == 100


def test_sharing_once_a_second_costs_one_write_a_second_and_overshoots_by_at_most_that_seconds_traffic():
    counter, clock = SharedCounter(), Clock()
    environments = [RateLimiter(1000, share_every_seconds=1.0, add_hits=counter.add, clock=clock) for _ in range(3)]
    total = 0
    for _ in range(20):  # 20 seconds of 100 requests a second in each environment
        for environment in environments:
            total += allowed(environment, "p", 100)
        clock.now += 1
    assert counter.writes <= 3 * 20
    assert 1000 <= total <= 1000 + 3 * 100


def test_a_storage_failure_does_not_refuse_requests():
    from pynamodb.exceptions import UpdateError

    def failing(*_):
        raise UpdateError("throttled")

    limiter = RateLimiter(1000, share_every_seconds=0, add_hits=failing, clock=Clock())
    assert allowed(limiter, "p", 50) == 50


def test_zero_means_no_limit_and_no_writes():
    counter = SharedCounter()
    limiter = RateLimiter(0, add_hits=counter.add, clock=Clock())
    assert allowed(limiter, "p", 1000) == 1000 and counter.writes == 0
