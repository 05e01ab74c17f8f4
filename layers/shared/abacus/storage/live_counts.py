"""The live check's counters (the console's Implementation page), in the projects table, sharded:
`live#<project>#<key>#<launch>#<variant>#<NN>` (launch: the run's start in epoch seconds, so a
key deleted and created again starts from nothing; NN from 00 to SHARDS - 1).

Each holds, for the exposed users of one variant: first exposures, metric events sent after the
first exposure, and when the last of them was received. Requests add to one shard picked at
random (one UpdateItem per experiment and variant a request touched, never one per event); the
console reads every shard of every variant (one BatchGetItem of at most 100 keys a page). The
nightly job never reads them: they are a day-one check, the results count from the events.

A key takes about 1,000 writes a second: a variant's writes spread over SHARDS keys, so one
experiment of two variants takes about 2 x SHARDS x 1,000 = 32,000 writing requests a second
before a key is at its limit, twice the first assignments its assignments keys take.

Beside them, the exposure events refused (experiments/exposures.py and ingestion/attribution.py
say why), per reason: `refused#<project>#<key>#<launch>#NN` for an experiment's (launch: `draft`
before it), `refused#<project>#NN` for those naming no experiment of the project. A request adds
its refusals of one experiment, or of the project, to one shard picked at random (one UpdateItem,
whatever the reasons); the live check reads an experiment's and its project's in one BatchGetItem."""

import random
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import NamedTuple

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, delete_each

SHARDS = 16
KEEP_SECONDS = 90 * 86400  # after the last write: a quiet experiment's counters go by TTL
_BATCH = 100  # BatchGetItem's most keys


class LiveCountItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    exposures = NumberAttribute(default=0)
    metric_events = NumberAttribute(default=0)
    last_received_at = NumberAttribute(default=0)  # epoch seconds
    expires_at = NumberAttribute()


class Tally(NamedTuple):
    exposures: int
    metric_events: int
    last_received_at: float | None  # epoch seconds; None: nothing received yet


def counter_key(experiment_id: str, launched_at: datetime, variant: str, shard: int) -> str:
    return f"live#{experiment_id}#{int(launched_at.timestamp())}#{variant}#{shard:02d}"


def add(experiment_id: str, launched_at: datetime, variant: str, tally: Tally, now: datetime) -> None:
    """Adds a request's first exposures and metric events of one variant to a shard picked at random."""
    item = LiveCountItem(counter_key(experiment_id, launched_at, variant, random.randrange(SHARDS)))
    item.update(
        actions=[
            LiveCountItem.exposures.add(tally.exposures),
            LiveCountItem.metric_events.add(tally.metric_events),
            LiveCountItem.last_received_at.set(now.timestamp()),
            LiveCountItem.expires_at.set(int(now.timestamp()) + KEEP_SECONDS),
        ]
    )


def delete_run(experiment_id: str, launched_at: datetime, variants: list[str]) -> int:
    """Deletes an experiment run's counters (a project deleted); how many there were."""
    keys = [counter_key(experiment_id, launched_at, variant, shard) for variant in variants for shard in range(SHARDS)]
    found = [item for chunk in _chunks(keys) for item in LiveCountItem.batch_get(chunk, attributes_to_get=["pk"])]
    return delete_each(LiveCountItem, found)


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _BATCH):
        yield keys[start : start + _BATCH]


def read(experiment_id: str, launched_at: datetime, variants: list[str]) -> dict[str, Tally]:
    """Each variant's counts summed over its shards, eventually consistent (a write is seen within
    about a second): one BatchGetItem per 100 keys. PynamoDB sends unprocessed keys again."""
    keys = [counter_key(experiment_id, launched_at, variant, shard) for variant in variants for shard in range(SHARDS)]
    sums = {variant: [0, 0, 0.0] for variant in variants}
    for chunk in _chunks(keys):
        for item in LiveCountItem.batch_get(chunk, consistent_read=False):
            variant = item.pk.rsplit("#", 2)[1]
            sums[variant][0] += int(item.exposures)
            sums[variant][1] += int(item.metric_events)
            sums[variant][2] = max(sums[variant][2], float(item.last_received_at))
    return {
        variant: Tally(int(exposures), int(events), last or None) for variant, (exposures, events, last) in sums.items()
    }


# The reasons an exposure event is refused, each an attribute of the refused counters.
REFUSED_REASONS = (
    "override",
    "before_launch",
    "after_stop",
    "held_out",
    "no_group",
    "unknown_variant",
    "draft",
    "archived",
    "unknown_experiment",
)


class RefusedCountItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    override = NumberAttribute(null=True)
    before_launch = NumberAttribute(null=True)
    after_stop = NumberAttribute(null=True)
    held_out = NumberAttribute(null=True)
    no_group = NumberAttribute(null=True)
    unknown_variant = NumberAttribute(null=True)
    draft = NumberAttribute(null=True)
    archived = NumberAttribute(null=True)
    unknown_experiment = NumberAttribute(null=True)
    expires_at = NumberAttribute()


def run_scope(experiment_id: str, launched_at: datetime | None) -> str:
    """Whose refusals: an experiment's run (its launch in epoch seconds; `draft` before it)."""
    return f"{experiment_id}#{int(launched_at.timestamp()) if launched_at else 'draft'}"


def refused_key(scope: str, shard: int) -> str:
    """`scope`: run_scope's, or a project id (the exposures naming no experiment of it)."""
    return f"refused#{scope}#{shard:02d}"


def add_refused(scope: str, counts: Mapping[str, int], now: datetime) -> None:
    """Adds a request's refused exposure events, by reason, to a shard picked at random."""
    attributes = RefusedCountItem.get_attributes()
    actions = [attributes[reason].add(count) for reason, count in counts.items() if count]
    if not actions:
        return
    item = RefusedCountItem(refused_key(scope, random.randrange(SHARDS)))
    item.update(actions=[*actions, RefusedCountItem.expires_at.set(int(now.timestamp()) + KEEP_SECONDS)])


def read_refused(scopes: list[str]) -> dict[str, dict[str, int]]:
    """Each scope's refusals by reason (the reasons with any), summed over its shards: one
    BatchGetItem per 100 keys, eventually consistent."""
    scope_of = {refused_key(scope, shard): scope for scope in scopes for shard in range(SHARDS)}
    sums: dict[str, dict[str, int]] = {scope: {} for scope in scopes}
    for chunk in _chunks(list(scope_of)):
        for item in RefusedCountItem.batch_get(chunk, consistent_read=False):
            counts = sums[scope_of[item.pk]]
            for reason in REFUSED_REASONS:
                if value := getattr(item, reason):
                    counts[reason] = counts.get(reason, 0) + int(value)
    return sums


def delete_refused(scopes: list[str]) -> int:
    """Deletes the scopes' refused counters (a project deleted); how many there were."""
    refused_keys = [refused_key(scope, shard) for scope in scopes for shard in range(SHARDS)]
    found = [
        item for chunk in _chunks(refused_keys) for item in RefusedCountItem.batch_get(chunk, attributes_to_get=["pk"])
    ]
    return delete_each(RefusedCountItem, found)
