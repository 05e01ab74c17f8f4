"""The persons table: which person each distinct id belongs to, and each person's properties.

Keyed (shard = `project#NN`, distinct_id), NN = keys.shard_of(distinct_id, SHARDS): a project's ids
are spread over SHARDS keys, and a key takes about 1,000 writes and 3,000 strongly consistent reads
a second, so a project takes 32 x 1,000 = 32,000 identity writes a second (merges, properties)
before one key is at its limit, and 96,000 consistent (192,000 eventually consistent) lookups.
Deleting a project Queries its SHARDS keys.

An id without an item is a person of its own, whose root is the id itself: most ids never get an
item (an anonymous visitor who never signs in costs nothing here). An item's `person` points at
another id of the same person, or at itself on the person's root item; the root holds the person's
`ids` (at most MAX_IDS) and `properties` ($set and $set_once, at most MAX_PROPERTIES, each value
at most MAX_VALUE_CHARACTERS, the whole at most MAX_PROPERTIES_BYTES as JSON). Items expire by TTL
KEEP_DAYS after their last write.

Joining two persons (`join`) makes the root with more ids the survivor, the first one's on a tie:
1. the survivor's root item is made to exist;
2. the loser is claimed: its item points at the survivor, in one transaction with a check that
   the survivor is still a root, on the condition that the loser is still a root holding the ids
   read (its version); a claim that loses a race is tried again from a fresh read, so two joins
   never both take one person, and links never make a circle;
3. the loser's ids and properties are added to the survivor's root, on the condition that it is
   still a root (else to the root it joined meanwhile: ids claimed are never dropped);
4. the loser's other ids are pointed at the survivor directly (lookups follow `person` links at
   most MAX_HOPS times, so a chain left by a join that stopped half-way still resolves).
"""

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from abacus.core import keys
from abacus.core.cache import TtlCache
from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, connection, delete_each

SHARDS = 32
MAX_IDS = 100  # a person's ids: a join that would pass it is refused (PostHog caps merges too)
MAX_HOPS = 8
MAX_PROPERTIES = 100
MAX_VALUE_CHARACTERS = 1000
MAX_PROPERTIES_BYTES = 16_000
KEEP_DAYS = 400
ATTEMPTS = 8  # conditional writes that lost a race, tried again from a fresh read
_BATCH = 100  # BatchGetItem's most keys


class PersonIdItem(Model):
    class Meta(TableMeta):
        table_name = settings.persons_table

    shard = UnicodeAttribute(hash_key=True)  # project#NN
    distinct_id = UnicodeAttribute(range_key=True)
    person = UnicodeAttribute()  # another id of the person; the item's own id on the person's root
    ids = UnicodeSetAttribute(null=True)  # on a root: the person's ids, its own included
    properties = JSONAttribute(null=True)  # on a root: the person's properties
    version = NumberAttribute(default=0)  # of a root's properties: they are written read-modify-write
    # On a root: the person was identified ($identify, an alias, a merge): their anonymous ids
    # are theirs, and an $identify may no longer join their person to another (PostHog's rule).
    identified = BooleanAttribute(null=True)
    expires_at = NumberAttribute()


class Person(NamedTuple):
    """A person as found: their root id, every id, and their properties."""

    root: str
    ids: frozenset[str]
    properties: dict[str, Any]
    version: int  # of the root item's ids and properties
    stored: bool  # whether the root has an item (an id alone has none)
    identified: bool


class Merge(NamedTuple):
    """Two persons joined: the loser's ids now belong to the survivor."""

    survivor: str
    loser: str
    loser_ids: frozenset[str]


class TooManyIds(Exception):
    """The join would give a person more than MAX_IDS ids: refused."""


class AlreadyIdentified(Exception):
    """The id that must be anonymous to be joined (an $identify's anonymous id, an alias) belongs
    to an identified person: refused, as PostHog refuses it (two people on one shared device)."""


def shard_key(project_id: str, distinct_id: str) -> str:
    return f"{project_id}#{keys.shard_of(distinct_id, SHARDS):02d}"


def _alone(distinct_id: str) -> Person:
    return Person(distinct_id, frozenset({distinct_id}), {}, 0, False, False)


def _expiry(now: datetime) -> int:
    return int((now + timedelta(days=KEEP_DAYS)).timestamp())


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _items(project_id: str, distinct_ids: Iterable[str], consistent: bool) -> dict[str, PersonIdItem]:
    wanted = sorted(set(distinct_ids))
    found: dict[str, PersonIdItem] = {}
    for chunk in _chunks(wanted):
        request = [(shard_key(project_id, distinct_id), distinct_id) for distinct_id in chunk]
        for item in PersonIdItem.batch_get(request, consistent_read=consistent):
            found[item.distinct_id] = item
    return found


def persons(project_id: str, distinct_ids: Iterable[str], consistent: bool = False) -> dict[str, Person]:
    """The person of each id: one BatchGetItem per 100 ids, and one more per link followed (only
    ids joined to another person have an item at all)."""
    wanted = set(distinct_ids)
    items = _items(project_id, wanted, consistent)
    looked = set(wanted)
    at = {distinct_id: distinct_id for distinct_id in wanted}  # id -> the id its links lead to so far
    for _ in range(MAX_HOPS):
        onward = {start: items[now].person for start, now in at.items() if now in items and items[now].person != now}
        if not onward:
            break
        at.update(onward)
        unread = set(onward.values()) - looked
        items.update(_items(project_id, unread, consistent))
        looked |= unread
    found: dict[str, Person] = {}
    for start, root in at.items():
        item = items.get(root)
        if item is None:
            found[start] = _alone(root)
        else:
            ids, properties = frozenset(item.ids or {root}), item.properties or {}
            found[start] = Person(root, ids, properties, int(item.version), True, bool(item.identified))
    return found


def person(project_id: str, distinct_id: str, consistent: bool = False) -> Person:
    return persons(project_id, [distinct_id], consistent)[distinct_id]


def join(project_id: str, first: str, second: str, now: datetime, anonymous: str | None = None) -> Merge | None:
    """Makes the ids one person (the module's docstring says how), identified from then on; the
    merge made, or None when they were one person already. `anonymous`: `first` or `second`, the
    one whose person must not be identified yet (AlreadyIdentified; None: joined whatever,
    $merge_dangerously). TooManyIds when the person would pass MAX_IDS."""
    for _ in range(ATTEMPTS):
        found = persons(project_id, [first, second], consistent=True)
        a, b = found[first], found[second]
        if a.root == b.root:
            return None
        if anonymous is not None and found[anonymous].identified:
            raise AlreadyIdentified(f"'{anonymous}' belongs to an identified person")
        if len(a.ids) + len(b.ids) > MAX_IDS:
            raise TooManyIds(f"joining would give a person more than {MAX_IDS} ids")
        survivor, loser = (a, b) if len(a.ids) >= len(b.ids) else (b, a)
        must_be_anonymous = None if anonymous is None else found[anonymous].root
        if not survivor.stored:
            _ensure_root(project_id, survivor.root, now)
        if not _claim(project_id, loser, survivor.root, now, must_be_anonymous):
            continue  # either changed meanwhile (joined someone, gained ids, was identified): read again
        target = _absorb(project_id, survivor.root, loser, now)
        for distinct_id in loser.ids - {loser.root}:
            _repoint(project_id, distinct_id, loser.root, target, now)
        _mark_joined(project_id, now)
        return Merge(target, loser.root, loser.ids)
    raise RuntimeError(f"joining {first!r} and {second!r}: still racing after {ATTEMPTS} attempts")


# An item saying that the project has persons of several ids (local evaluation reads it).
_JOINED_SHARD, _JOINED = "{project_id}#persons", "joined"


# Projects this environment knows are marked (for CacheSeconds, as the experiments are cached):
# the one key is read once an environment, written once.
_marked: TtlCache[str, bool] = TtlCache()


def _mark_joined(project_id: str, now: datetime) -> None:
    """Marks the project as having persons of several ids: read first (once an environment), and
    written only when absent, so that joins do not all write one key."""
    if _marked.holds(project_id):
        return
    if not joined_any(project_id):
        item = PersonIdItem(_JOINED_SHARD.format(project_id=project_id), _JOINED, person=_JOINED)
        item.expires_at = _expiry(now)
        item.save()
    _marked.put(project_id, True)


def joined_any(project_id: str) -> bool:
    """Whether two ids of the project were ever joined into one person (one read)."""
    key = (_JOINED_SHARD.format(project_id=project_id), _JOINED)
    return any(True for _ in PersonIdItem.batch_get([key]))


def _ensure_root(project_id: str, root: str, now: datetime) -> None:
    """Creates the root item of a person who has none (an id alone); leaves an existing one."""
    item = PersonIdItem(shard_key(project_id, root), root, person=root, ids={root}, properties={}, version=0)
    item.expires_at = _expiry(now)
    try:
        item.save(condition=PersonIdItem.distinct_id.does_not_exist())
    except PutError as error:
        if not condition_failed(error):
            raise


def _claim(project_id: str, loser: Person, survivor: str, now: datetime, must_be_anonymous: str | None) -> bool:
    """Points the loser's root at the survivor and marks the survivor identified, in one
    transaction: on the conditions that the survivor is still a root (two joins claiming each
    other's person would make a circle), that the loser is still a root with the ids and
    properties read (its version), and that the root `must_be_anonymous` names (if any) is not
    identified (two identifies racing for one anonymous id: one wins). False when one failed."""
    item = PersonIdItem(shard_key(project_id, loser.root), loser.root)
    unchanged = (
        PersonIdItem.distinct_id.does_not_exist()
        if not loser.stored
        else (PersonIdItem.person == loser.root) & (PersonIdItem.version == loser.version)
    )
    anonymous = PersonIdItem.identified.does_not_exist() | (PersonIdItem.identified == False)  # noqa: E712
    still_root = PersonIdItem.person == survivor
    try:
        with TransactWrite(connection=connection()) as transaction:
            transaction.update(
                PersonIdItem(shard_key(project_id, survivor), survivor),
                actions=[PersonIdItem.identified.set(True)],
                condition=still_root & anonymous if must_be_anonymous == survivor else still_root,
            )
            transaction.update(
                item,
                actions=[PersonIdItem.person.set(survivor), PersonIdItem.expires_at.set(_expiry(now))],
                condition=unchanged & anonymous if must_be_anonymous == loser.root else unchanged,
            )
    except TransactWriteError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _absorb(project_id: str, survivor: str, loser: Person, now: datetime) -> str:
    """Adds the loser's ids and properties (where the survivor has none of that name) to the
    survivor's root, or to the root the survivor joined meanwhile; returns the root it went to."""
    target = survivor
    for _ in range(ATTEMPTS * MAX_HOPS):
        current = person(project_id, target, consistent=True)
        if current.root != target:
            target = current.root
            continue
        # The survivor's properties win; the loser's fill what it has none of.
        merged = {**current.properties, **{k: v for k, v in loser.properties.items() if k not in current.properties}}
        try:
            PersonIdItem(shard_key(project_id, target), target).update(
                actions=[
                    PersonIdItem.ids.add(set(loser.ids)),
                    PersonIdItem.properties.set(bounded(merged)),
                    PersonIdItem.version.add(1),
                    PersonIdItem.expires_at.set(_expiry(now)),
                ],
                condition=(PersonIdItem.person == target) & (PersonIdItem.version == current.version),
            )
            return target
        except UpdateError as error:
            if not condition_failed(error):
                raise
    raise RuntimeError(f"adding ids to {survivor!r}: still racing after {ATTEMPTS * MAX_HOPS} attempts")


def _repoint(project_id: str, distinct_id: str, old: str, new: str, now: datetime) -> None:
    """Points one of the loser's ids straight at the survivor (if it still points at the loser)."""
    try:
        PersonIdItem(shard_key(project_id, distinct_id), distinct_id).update(
            actions=[PersonIdItem.person.set(new), PersonIdItem.expires_at.set(_expiry(now))],
            condition=PersonIdItem.person == old,
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise


def set_properties(
    project_id: str, distinct_id: str, to_set: dict[str, Any], to_set_once: dict[str, Any], now: datetime
) -> bool:
    """Applies $set (replacing) and $set_once (only where absent) to the person of the id, bounded;
    whether anything changed. Read, then written on the condition that nobody wrote between."""
    for _ in range(ATTEMPTS):
        current = person(project_id, distinct_id, consistent=True)
        merged = {**current.properties, **to_set}  # kept in order: new names after those kept already
        merged = bounded({**merged, **{k: v for k, v in to_set_once.items() if k not in merged}})
        if merged == current.properties:
            return False
        if not current.stored:
            _ensure_root(project_id, current.root, now)
        try:
            PersonIdItem(shard_key(project_id, current.root), current.root).update(
                actions=[
                    PersonIdItem.properties.set(merged),
                    PersonIdItem.version.add(1),
                    PersonIdItem.expires_at.set(_expiry(now)),
                ],
                condition=(PersonIdItem.person == current.root) & (PersonIdItem.version == current.version),
            )
            return True
        except UpdateError as error:
            if not condition_failed(error):
                raise
    raise RuntimeError(f"setting properties of {distinct_id!r}: still racing after {ATTEMPTS} attempts")


def bounded(properties: dict[str, Any]) -> dict[str, Any]:
    """The properties kept: the first MAX_PROPERTIES of them (in the order given) whose name and
    value fit, while the whole fits MAX_PROPERTIES_BYTES; a value too long is left out."""
    kept: dict[str, Any] = {}
    size = 2
    for name, value in properties.items():
        if len(kept) >= MAX_PROPERTIES:
            break
        if len(name) > 200 or len(json.dumps(value)) > MAX_VALUE_CHARACTERS:
            continue
        grows = len(json.dumps({name: value})) + 1
        if size + grows > MAX_PROPERTIES_BYTES:
            continue
        kept[name] = value
        size += grows
    return kept


def delete_project(project_id: str) -> int:
    """Deletes every person item of the project (a project deleted): one Query per shard."""
    keys_ = [f"{project_id}#{shard:02d}" for shard in range(SHARDS)] + [_JOINED_SHARD.format(project_id=project_id)]
    return sum(
        delete_each(PersonIdItem, PersonIdItem.query(key, attributes_to_get=["shard", "distinct_id"])) for key in keys_
    )
