"""The nightly runs table: what one computation of one experiment's snapshot (a run) has done so
far, keyed (experiment_id, part). A run is `date#started`; its parts are

- `<run>#run`: the header, written by whoever plans the run: how many shards the experiment's users
  are spread over, which shards are done (a string set: adding a shard twice changes nothing), when
  the snapshot was merged, or why the run cannot finish;
- `<run>#page#SS#PPPPP`: one page of one shard's users, its partial sufficient statistics and the last
  user it covers. The first write of a page wins (a condition), so a page delivered twice, or
  computed by two workers at once, keeps one set of users and one chain of pages after it.

And one item per planner invocation, `planner#<request id>` / `started`: when its first attempt
started, so that Lambda's retries of it (the same request id) carry on the same runs.

One experiment's runs share its key, so deleting an experiment finds them. The key takes a run's
writes (a page every few seconds per worker, at most NightlyMaxConcurrency at once): far below a
partition's 1,000 a second. Items expire (TTL) after PARTS_KEPT_DAYS: longer than a message can
wait in the dead-letter queue, so a redriven message still finds its run.
"""

from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import CompressedJSONAttribute, TableMeta, condition_failed, delete_each, nullable

PARTS_KEPT_DAYS = 16  # the dead-letter queue keeps a message 14 days


class RunPartItem(Model):
    class Meta(TableMeta):
        table_name = settings.runs_table

    experiment_id = UnicodeAttribute(hash_key=True)
    part = UnicodeAttribute(range_key=True)  # <run>#run, or <run>#page#SS#PPPPP
    expires_at = NumberAttribute()
    # The header's
    shards = nullable(NumberAttribute())
    shards_done = UnicodeSetAttribute(null=True)
    queued_at = nullable(UTCDateTimeAttribute())  # when all the run's first units were sent
    merged_at = nullable(UTCDateTimeAttribute())
    error = nullable(UnicodeAttribute())
    # A page's: the users it covers are those after `start_after` up to and including `last`
    # (None: to the end of the shard), and their sums (abacus.nightly_units.PageSums.to_json).
    start_after = nullable(UnicodeAttribute())
    last = nullable(UnicodeAttribute())
    sums = JSONAttribute(null=True)  # pages stored before percentile caps; now packed_sums
    # A planner invocation's: when its first attempt started
    started_at = nullable(UTCDateTimeAttribute())
    packed_sums = CompressedJSONAttribute(null=True)  # zlib: a percentile cap's histograms are large

    def stored_sums(self) -> dict[str, Any]:
        """The page's sums (PageSums.to_json), however they were stored."""
        stored = self.packed_sums if self.packed_sums is not None else self.sums
        assert isinstance(stored, dict), "a page item has its sums"
        return stored


def header_part(run: str) -> str:
    return f"{run}#run"


def page_part(run: str, shard: int, page: int) -> str:
    return f"{run}#page#{shard:02d}#{page:05d}"


def shard_of_page(item: RunPartItem) -> int:
    return int(item.part.split("#")[-2])


def _expires(now: datetime) -> int:
    return int((now + timedelta(days=PARTS_KEPT_DAYS)).timestamp())


def start(experiment_id: str, run: str, shards: int, now: datetime) -> None:
    """Writes the run's header, before any of its units is sent."""
    RunPartItem(experiment_id, header_part(run), shards=shards, expires_at=_expires(now)).save()


def queued(experiment_id: str, run: str, at: datetime) -> None:
    """Records that every first unit of the run was sent (an update: workers may be marking
    shards done already)."""
    RunPartItem(experiment_id, header_part(run)).update(
        actions=[RunPartItem.queued_at.set(at)], condition=RunPartItem.part.exists()
    )


def planner_started(invocation: str, now: datetime) -> tuple[datetime, bool]:
    """When the planner invocation `invocation` (Lambda's request id, the same for its retries)
    first started, and whether that is now (a first attempt) rather than an earlier attempt's."""
    item = RunPartItem(f"planner#{invocation}", "started", started_at=now, expires_at=_expires(now))
    try:
        item.save(condition=RunPartItem.part.does_not_exist())
    except PutError as error:
        if not condition_failed(error):
            raise
        stored = RunPartItem.get(f"planner#{invocation}", "started", consistent_read=True)
        assert stored.started_at is not None, "a planner item has its start"
        return stored.started_at, False
    return now, True


def header(experiment_id: str, run: str) -> RunPartItem | None:
    try:
        return RunPartItem.get(experiment_id, header_part(run), consistent_read=True)
    except RunPartItem.DoesNotExist:
        return None


def page(experiment_id: str, run: str, shard: int, number: int) -> RunPartItem | None:
    """A page already stored (strongly consistent: a redelivery must see what was written)."""
    try:
        return RunPartItem.get(experiment_id, page_part(run, shard, number), consistent_read=True)
    except RunPartItem.DoesNotExist:
        return None


def put_page(
    experiment_id: str,
    run: str,
    shard: int,
    number: int,
    bounds: tuple[str | None, str | None],
    sums: dict[str, Any],
    now: datetime,
) -> RunPartItem:
    """Stores a page (its users after `bounds[0]` up to `bounds[1]`, None: to the end) unless one
    is stored already; returns the stored one (this or the first)."""
    start_after, last = bounds
    item = RunPartItem(
        experiment_id,
        page_part(run, shard, number),
        start_after=start_after,
        last=last,
        packed_sums=sums,
        expires_at=_expires(now),
    )
    try:
        item.save(condition=RunPartItem.part.does_not_exist())
    except PutError as error:
        if not condition_failed(error):
            raise
        stored = page(experiment_id, run, shard, number)
        assert stored is not None, "a page that failed its condition exists"
        return stored
    return item


def pages(experiment_id: str, run: str) -> list[RunPartItem]:
    """Every stored page of a run, by shard then page (one Query, paged by PynamoDB)."""
    return list(RunPartItem.query(experiment_id, RunPartItem.part.startswith(f"{run}#page#"), consistent_read=True))


def shard_done(experiment_id: str, run: str, shard: int) -> tuple[int, int]:
    """Records that a shard's last page is stored (idempotent); how many shards are done, of how many."""
    item = RunPartItem(experiment_id, header_part(run))
    item.update(actions=[RunPartItem.shards_done.add({f"{shard:02d}"})], condition=RunPartItem.part.exists())
    return len(item.shards_done or ()), int(item.shards or 0)


def merged(experiment_id: str, run: str, at: datetime) -> None:
    RunPartItem(experiment_id, header_part(run)).update(actions=[RunPartItem.merged_at.set(at)])


def failed(experiment_id: str, run: str, message: str) -> None:
    """Records why the run cannot finish (a recompute waiting on it answers with it); nothing when
    the run is gone (its experiment deleted with its project)."""
    try:
        RunPartItem(experiment_id, header_part(run)).update(
            actions=[RunPartItem.error.set(message[:1000])], condition=RunPartItem.part.exists()
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise


def delete_experiment(experiment_id: str) -> int:
    """Deletes every run of an experiment (they would expire anyway: their pages name users)."""
    return delete_each(RunPartItem, RunPartItem.query(experiment_id, attributes_to_get=["experiment_id", "part"]))
