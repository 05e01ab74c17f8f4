"""The per-token rate limit: a fixed window a minute, counted locally and shared at most once a
second per environment: added to the environment's shard of the counter, and every shard read."""

import pytest

from abacus.http.rate_limit import RateLimiter, TooManyRequests
from abacus.storage import rate_limits


class SharedCounter:
    """Stands for the DynamoDB counter shards: {(project, minute, shard): hits}, and how often they
    were written and read."""

    def __init__(self):
        self.hits: dict[tuple[str, int, int], int] = {}
        self.writes = self.reads = 0

    def add(self, project_id: str, minute: int, shard: int, hits: int) -> int:
        self.writes += 1
        key = (project_id, minute, shard)
        self.hits[key] = self.hits.get(key, 0) + hits
        return self.hits[key]

    def read(self, project_id: str, minute: int, shards: int) -> dict[int, int]:
        self.reads += 1
        return {s: n for (p, m, s), n in self.hits.items() if (p, m) == (project_id, minute) and s < shards}

    def limiter(self, limit: int, shard: int = 0, **options) -> RateLimiter:
        return RateLimiter(limit, shard=shard, add_hits=self.add, read_hits=self.read, **options)


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
    limiter = counter.limiter(10, share_every_seconds=0, clock=clock)
    assert allowed(limiter, "p", 25) == 10
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("p")
    assert refused.value.status == 429 and refused.value.field == "token"
    assert refused.value.headers() == {"Retry-After": "60"}


def test_the_next_minute_starts_afresh_and_retry_after_counts_down_to_it():
    counter, clock = SharedCounter(), Clock(6_000_000.0 + 45)
    limiter = counter.limiter(5, share_every_seconds=0, clock=clock)
    assert allowed(limiter, "p", 6) == 5
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("p")
    assert refused.value.retry_after == 15
    clock.now += 15
    assert allowed(limiter, "p", 5) == 5


def test_projects_are_limited_separately():
    counter = SharedCounter()
    limiter = counter.limiter(3, share_every_seconds=0, clock=Clock())
    assert allowed(limiter, "a", 10) == 3
    assert allowed(limiter, "b", 10) == 3


def test_environments_share_the_limit_through_the_counter():
    counter, clock = SharedCounter(), Clock()
    environments = [counter.limiter(100, shard=0, share_every_seconds=0, clock=clock) for _ in range(4)]
    total = sum(allowed(environment, "p", 50) for environment in environments)
    assert total == 100


def test_the_limit_holds_across_environments_on_different_shards():
    counter, clock = SharedCounter(), Clock()
    environments = [counter.limiter(100, shard=shard, share_every_seconds=0, clock=clock) for shard in (3, 7, 11, 15)]
    total = sum(allowed(environment, "p", 50) for environment in environments)
    assert total == 100
    assert {shard for (_, _, shard) in counter.hits} == {3, 7, 11, 15}
    assert sum(counter.hits.values()) == 4 * 50  # every request counted, the refused ones too
    for environment in environments:  # each refuses now: it sees the other shards' counts
        with pytest.raises(TooManyRequests):
            environment.check("p")


def test_the_total_is_the_sum_of_the_shards():
    counter, clock = SharedCounter(), Clock()
    for shard, hits in ((0, 10), (5, 20), (15, 30)):
        counter.add("p", int(clock.now // 60), shard, hits)
    counter.add("p", int(clock.now // 60) - 1, 1, 1000)  # the minute before
    counter.add("other", int(clock.now // 60), 1, 1000)  # another project
    limiter = counter.limiter(61, shard=9, clock=clock)
    assert allowed(limiter, "p", 1) == 1  # 60 + its 1
    clock.now += 1
    with pytest.raises(TooManyRequests):  # 60 + its 2
        limiter.check("p")


def test_a_count_seen_is_not_taken_back_by_an_older_or_partial_read():
    counter, clock = SharedCounter(), Clock()
    reads = iter([{0: 50, 1: 40}, {0: 10}, {}])  # then eventually consistent (older), then unprocessed

    def read(*_):
        counter.reads += 1
        return next(reads)

    limiter = RateLimiter(100, shard=2, add_hits=counter.add, read_hits=read, clock=clock)
    limiter.check("p")  # sees 50 + 40 + its 1
    for _ in range(2):
        clock.now += 1
        limiter.check("p")
    with pytest.raises(TooManyRequests):  # 50 + 40 + its 3, and 8 more
        for _ in range(8):
            limiter.check("p")
    assert counter.reads == 3


def test_its_own_shard_counts_as_its_write_returned_it():
    counter, clock = SharedCounter(), Clock()
    limiter = RateLimiter(5, shard=4, add_hits=counter.add, read_hits=lambda *_: {}, clock=clock)
    assert allowed(limiter, "p", 3) == 3  # shared the first, counts the others
    clock.now += 1
    assert allowed(limiter, "p", 5) == 2  # shared 3; the read, not yet showing them, does not lose them


def test_sharing_once_a_second_costs_one_write_and_one_read_a_second_and_overshoots_by_at_most_that_seconds_traffic():
    counter, clock = SharedCounter(), Clock()
    environments = [counter.limiter(1000, shard=shard, share_every_seconds=1.0, clock=clock) for shard in range(3)]
    total = 0
    for _ in range(20):  # 20 seconds of 100 requests a second in each environment
        for environment in environments:
            total += allowed(environment, "p", 100)
        clock.now += 1
    assert counter.writes <= 3 * 20 and counter.reads <= 3 * 20
    assert 1000 <= total <= 1000 + 3 * 100


def test_a_failing_write_does_not_refuse_requests_and_its_hits_are_shared_later():
    from pynamodb.exceptions import UpdateError

    counter, clock, failing = SharedCounter(), Clock(), [True]

    def add(*args):
        if failing[0]:
            raise UpdateError("throttled")
        return counter.add(*args)

    limiter = RateLimiter(1000, shard=1, add_hits=add, read_hits=counter.read, clock=clock)
    assert allowed(limiter, "p", 50) == 50 and counter.reads == 0
    failing[0] = False
    clock.now += 1
    limiter.check("p")
    assert counter.hits == {("p", int(clock.now // 60), 1): 51}


def test_a_failing_read_does_not_refuse_requests_and_keeps_what_was_counted():
    from pynamodb.exceptions import GetError

    counter, clock = SharedCounter(), Clock()

    def read(*_):
        raise GetError("throttled")

    limiter = RateLimiter(10, shard=1, add_hits=counter.add, read_hits=read, clock=clock)
    assert allowed(limiter, "p", 5) == 5
    clock.now += 1
    assert allowed(limiter, "p", 10) == 5  # its shard holds the first 5 (shared), then 5 more
    assert counter.hits == {("p", int(clock.now // 60), 1): 6}


def test_a_storage_failure_does_not_refuse_requests():
    from pynamodb.exceptions import GetError, UpdateError

    def failing_write(*_):
        raise UpdateError("throttled")

    def failing_read(*_):
        raise GetError("throttled")

    for add, read in ((failing_write, failing_read), (SharedCounter().add, failing_read)):
        limiter = RateLimiter(1000, share_every_seconds=0, add_hits=add, read_hits=read, clock=Clock())
        assert allowed(limiter, "p", 50) == 50


def test_each_environment_picks_a_random_shard():
    picked = {RateLimiter(10).shard for _ in range(400)}
    assert picked == set(range(rate_limits.SHARDS))
    assert {RateLimiter(10, shards=4).shard for _ in range(100)} == {0, 1, 2, 3}


def test_zero_means_no_limit_and_no_writes():
    counter = SharedCounter()
    limiter = counter.limiter(0, clock=Clock())
    assert allowed(limiter, "p", 1000) == 1000 and counter.writes == counter.reads == 0


# The counter shards in DynamoDB (moto) ------------------------------------------------------------


def test_the_shards_are_read_with_one_batch_get_and_unprocessed_ones_left_out(tables, monkeypatch):
    connection = rate_limits.RateWindowItem._get_connection()
    for shard, hits in ((0, 5), (7, 6), (15, 7)):
        assert rate_limits.add_hits("p", 100, shard, hits) == hits
    assert rate_limits.add_hits("p", 100, 7, 1) == 7
    assert rate_limits.add_hits("p", 99, 7, 1000) == 1000  # another minute
    assert rate_limits.shard_hits("p", 100) == {0: 5, 7: 7, 15: 7}
    assert rate_limits.shard_hits("p", 100, shards=8) == {0: 5, 7: 7}

    sent = []
    original = connection.batch_get_item

    def partly(keys, **options):
        """Processes the first half of the keys and hands the rest back, as a throttled table may."""
        sent.append(list(keys))
        answered = original(keys[: len(keys) // 2], **options)
        table = rate_limits.RateWindowItem.Meta.table_name
        return answered | {"UnprocessedKeys": {table: {"Keys": [{"pk": {"S": key["pk"]}} for key in keys[8:]]}}}

    monkeypatch.setattr(connection, "batch_get_item", partly)
    assert rate_limits.shard_hits("p", 100) == {0: 5, 7: 7}  # shard 15 unread, not counted as 0
    assert sent == [[{"pk": rate_limits.counter_key("p", 100, shard)} for shard in range(16)]]  # not resent at once
    item = rate_limits.RateWindowItem.get("rate#p#100#07")
    assert item.expires_at == 101 * 60 + rate_limits.KEEP_SECONDS
