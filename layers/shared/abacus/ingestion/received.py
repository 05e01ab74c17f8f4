"""The names a project's events carry, recorded as they arrive (storage/event_names.py): the event
names received, which the results, the report and the live check compare with each metric's
event (experiments/received_events.py) and the console's Creation form suggests; and the keys of
`$exposure` events naming no experiment of the project, which the live check lists.

Ingest may take thousands of events a second for a project, so nothing here is written per event:
a name is written only when this execution environment has not written it on this day (UTC; it
remembers for a day, `_written`), the names of one shard in one UpdateItem. A name sent all day
long costs one write per environment and day; a request writes at most MAX_NAMES_A_REQUEST names
(the others wait for a later request). A write that fails is logged and tried again by a later
request: recording never fails a request, and never delays the events' storage (it follows it).
"""

import random
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

from aws_lambda_powertools import Logger
from pynamodb.exceptions import PynamoDBException

from abacus.core.cache import TtlCache, default_ttl
from abacus.storage import event_names
from abacus.storage.events import EventItem

logger = Logger(child=True)
MAX_NAMES_A_REQUEST = 32
PARALLEL_WRITES = 8
DAY_SECONDS = 86400.0
# (project, kind, name, day) written by this environment: kept a day, or not at all when caching
# is off (ABACUS_CACHE_SECONDS=0, as in the tests: every request writes its names).
_written: TtlCache[tuple[str, str, str, date], bool] = TtlCache(
    ttl_seconds=DAY_SECONDS if default_ttl() > 0 else 0, max_entries=100_000
)


def record_events(project_id: str, items: Iterable[EventItem], now: datetime) -> None:
    """Records the names of the events stored (now or before: a redelivery records what a failed
    request may not have)."""
    _record(project_id, event_names.EVENTS, {item.event for item in items}, now)


def record_unknown_experiments(project_id: str, experiment_keys: Iterable[str], now: datetime) -> None:
    """Records the keys `$exposure` events named that are no experiment of the project."""
    _record(project_id, event_names.UNKNOWN_EXPERIMENTS, set(experiment_keys), now)


def _record(project_id: str, kind: str, names: set[str], now: datetime) -> None:
    day = now.astimezone(UTC).date()
    due = [name for name in names if not _written.holds((project_id, kind, name, day))]
    by_shard: dict[int, list[str]] = defaultdict(list)
    # Picked at random past the bound: every name gets its turn, even with the cache off.
    for name in due if len(due) <= MAX_NAMES_A_REQUEST else random.sample(due, MAX_NAMES_A_REQUEST):
        by_shard[event_names.shard_of(kind, name)].append(name)

    def write(shard: int, shard_names: list[str]) -> None:
        try:
            full = event_names.add(project_id, kind, shard, shard_names, day, now)
        except PynamoDBException as error:
            logger.warning("names not recorded", extra={"kind": kind, "error": type(error).__name__})
            return
        if full:  # the bound: these are not recorded, and not tried again today
            logger.info("names not recorded: their shard is full", extra={"kind": kind, "names": full[:10]})
        for name in shard_names:
            _written.put((project_id, kind, name, day), True)

    if len(by_shard) <= 1:
        for shard, shard_names in by_shard.items():
            write(shard, shard_names)
        return
    with ThreadPoolExecutor(max_workers=min(PARALLEL_WRITES, len(by_shard))) as pool:
        list(pool.map(lambda pair: write(*pair), by_shard.items()))
