"""Names a project's requests carried, bounded and sharded, in the projects table: the event names
it received (`names#<project>#events#NN`, NN from 00 to 15) and the experiment keys its exposure
events named that are no experiment of it (`names#<project>#unknown-experiments#00`).

Each item holds two maps, name -> day (YYYY-MM-DD, UTC): `first_seen` and `last_seen`. A name's
shard is keys.shard_of(name). A shard holds at most PER_SHARD names (64: 1,024 event names a
project, 64 unknown experiment keys); a name whose shard is full is not recorded, the write's
condition refusing it, and the writer (ingestion/received.py) remembers so for the day. A name
stays until its item expires (KEEP_DAYS after the item's last write) or the project is deleted.

The names of one shard a request carries go in one UpdateItem, on the condition that they are
all there already or that the shard has room for them all; when that fails (the shard's first
name, whose maps do not exist yet, or a shard near full) the maps are created if absent and the
names written one at a time, each on its own condition. Read in one BatchGetItem of every shard,
eventually consistent. A key takes at most one write per execution environment, day and name it
holds, the names of a request together (docs/data-model.md, "Hot keys"). A map key cannot hold
`[` or `]` in PynamoDB's document paths: they are stored percent-encoded (with `%` itself), and
decoded when read.
"""

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import NamedTuple
from urllib.parse import unquote

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, _Size
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from abacus.core import keys
from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, delete_each, error_code

EVENTS, UNKNOWN_EXPERIMENTS = "events", "unknown-experiments"
SHARDS = {EVENTS: 16, UNKNOWN_EXPERIMENTS: 1}
PER_SHARD = 64
KEEP_DAYS = 400


class NameDaysItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    first_seen: MapAttribute[str, str] = MapAttribute(null=True)  # map key (encoded name): day
    last_seen: MapAttribute[str, str] = MapAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class Seen(NamedTuple):
    first: date
    last: date


def names_key(project_id: str, kind: str, shard: int) -> str:
    return f"names#{project_id}#{kind}#{shard:02d}"


def shard_of(kind: str, name: str) -> int:
    return keys.shard_of(name, SHARDS[kind])


def _map_key(name: str) -> str:
    return name.replace("%", "%25").replace("[", "%5B").replace("]", "%5D")


def _first(name: str) -> Path:
    return Path(NameDaysItem.first_seen)[_map_key(name)]


def _last(name: str) -> Path:
    return Path(NameDaysItem.last_seen)[_map_key(name)]


def _seen_actions(names: Iterable[str], day: date, now: datetime) -> list[Action]:
    """Each name last seen on `day`, first seen then unless it was before."""
    text = day.isoformat()
    actions: list[Action] = [NameDaysItem.expires_at.set(int((now + timedelta(days=KEEP_DAYS)).timestamp()))]
    for name in names:
        actions += [_last(name).set(text), _first(name).set(_first(name) | text)]
    return actions


def _fits(names: list[str], room: int) -> Condition:
    """The shard's maps exist, and the names are all in them already, or there is room for them
    all as new ones (`room`: at most this many names there before)."""
    present = _last(names[0]).exists()
    for name in names[1:]:
        present = present & _last(name).exists()
    fits: Condition = Path(NameDaysItem.last_seen).exists() & (present | (_Size(Path(NameDaysItem.last_seen)) <= room))
    return fits


def add(project_id: str, kind: str, shard: int, names: list[str], day: date, now: datetime) -> list[str]:
    """Records `names` (all of the kind's `shard`) as seen on `day`; returns those not recorded
    because their shard is full. PynamoDBException when DynamoDB refused."""
    item = NameDaysItem(names_key(project_id, kind, shard))
    try:
        item.update(actions=_seen_actions(names, day, now), condition=_fits(names, PER_SHARD - len(names)))
        return []
    except UpdateError as error:
        if not (condition_failed(error) or error_code(error) == "ValidationException"):
            raise
    # The maps do not exist yet, or the shard has no room for them all as new: one at a time.
    empty: dict[str, str] = {}
    first, last = Path(NameDaysItem.first_seen), Path(NameDaysItem.last_seen)
    item.update(actions=[first.set(first | empty), last.set(last | empty)])
    full = []
    for name in names:
        try:
            item.update(actions=_seen_actions([name], day, now), condition=_fits([name], PER_SHARD - 1))
        except UpdateError as error:
            if not condition_failed(error):
                raise
            full.append(name)
    return full


def read(project_id: str, kind: str) -> dict[str, Seen]:
    """Every name of the kind recorded for the project, with the days it was first and last seen:
    one BatchGetItem of the kind's shards, eventually consistent."""
    found: dict[str, Seen] = {}
    shard_keys = [names_key(project_id, kind, shard) for shard in range(SHARDS[kind])]
    for item in NameDaysItem.batch_get(shard_keys, consistent_read=False):
        firsts = item.first_seen.as_dict() if item.first_seen else {}
        for key, last in (item.last_seen.as_dict() if item.last_seen else {}).items():
            found[unquote(key)] = Seen(date.fromisoformat(firsts.get(key, last)), date.fromisoformat(last))
    return found


def delete_project(project_id: str) -> int:
    """Deletes the project's names (a project deleted); how many items held them."""
    shard_keys = [names_key(project_id, kind, shard) for kind, count in SHARDS.items() for shard in range(count)]
    found = list(NameDaysItem.batch_get(shard_keys, attributes_to_get=["pk"]))
    return delete_each(NameDaysItem, found)
