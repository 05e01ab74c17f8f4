"""What a batch of events says about persons: which ids it joins and which properties it sets.

- Joins: `$identify` with `$anon_distinct_id` (posthog-js's and posthog-node's identify), and
  `$create_alias` or `$merge_dangerously` with `alias` (their alias), applied in the events' order,
  with PostHog's rule for identified persons (joins.py).
- Properties: `$set` (replacing) and `$set_once` (only where the person has none), from any event's
  properties, where the capture API puts them (posthog/capture.py), as `$identify`, `$set` and
  `$set_once` events carry them. Within a batch, a later `$set` wins and the earliest `$set_once`;
  each person's are written at once (storage/persons.py bounds what is kept).

Cost: a join, once per sign-in (joins.py); an event setting properties, one strongly consistent
read of its person per batch, and one write when something changed.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple

from abacus.identity import joins
from abacus.storage import persons
from abacus.storage.events import EventItem

IDENTIFY, CREATE_ALIAS, MERGE_DANGEROUSLY = "$identify", "$create_alias", "$merge_dangerously"
MAX_ID_LENGTH = 200  # as a distinct_id (assignment/spec.py)
PARALLEL_PERSONS = 16


class Join(NamedTuple):
    first: str  # whose person survives a tie (the one more likely to hold the exposures)
    second: str
    anonymous: str | None  # the one that must not be identified yet; None: joined whatever


def joined_ids(event: EventItem) -> Join | None:
    """The ids the event joins, or None: `$identify` its anonymous id (which must be anonymous)
    to its distinct_id; `$create_alias` its alias (the same) and `$merge_dangerously` its alias
    (whatever it is) to its distinct_id, which posthog-js sends as the id used until then."""
    properties = event.event_properties()
    other = properties.get("$anon_distinct_id" if event.event == IDENTIFY else "alias")
    if event.event not in (IDENTIFY, CREATE_ALIAS, MERGE_DANGEROUSLY) or not isinstance(other, str):
        return None
    if not 0 < len(other) <= MAX_ID_LENGTH or other == event.distinct_id:
        return None
    if event.event == IDENTIFY:
        return Join(other, event.distinct_id, other)
    return Join(event.distinct_id, other, other if event.event == CREATE_ALIAS else None)


def _updates(properties: dict[str, Any], name: str) -> dict[str, Any]:
    given = properties.get(name)
    if not isinstance(given, dict):
        return {}
    return {str(key): value for key, value in given.items() if _targetable(value)}


def _targetable(value: object) -> bool:
    """A value targeting can compare: a scalar, or a list of scalars."""
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def apply(project_id: str, items: Iterable[EventItem], now: datetime) -> int:
    """Joins the ids the events join, in the events' order, then sets the properties they set on
    each person; how many joins merged two persons."""
    ordered = sorted(items, key=lambda item: item.timestamp)
    merged = 0
    for item in ordered:
        joined = joined_ids(item)
        if joined is not None and joins.join(project_id, joined.first, joined.second, now, joined.anonymous):
            merged += 1
    to_set: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for item in ordered:
        properties = item.event_properties()
        set_now, set_once = _updates(properties, "$set"), _updates(properties, "$set_once")
        if set_now or set_once:
            earlier_set, earlier_once = to_set.setdefault(item.distinct_id, ({}, {}))
            earlier_set.update(set_now)
            to_set[item.distinct_id] = (earlier_set, {**set_once, **earlier_once})
    if to_set:

        def write(pair: tuple[str, tuple[dict[str, Any], dict[str, Any]]]) -> bool:
            distinct_id, (set_now, set_once) = pair
            return persons.set_properties(project_id, distinct_id, set_now, set_once, now)

        with ThreadPoolExecutor(max_workers=PARALLEL_PERSONS) as pool:
            list(pool.map(write, to_set.items()))
    return merged
