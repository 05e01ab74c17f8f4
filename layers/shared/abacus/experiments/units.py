"""What an experiment randomises and counts: a person (their root id, identity/), or, in a group
experiment (`group_type`), the group of that type the user acts for, as PostHog's group flags do.

A group is named by its key in a request's `groups` ({"company": "acme"}) and in an event's
`$groups` property (posthog-js and posthog-node add it to every event after `group()`). It is
hashed by its key, as PostHog hashes a group flag, and stored under keys.group_unit.
"""

from collections.abc import Mapping
from typing import NamedTuple

from abacus.core import keys
from abacus.experiments.spec import ExperimentFields

MAX_GROUP_KEY_LENGTH = 200


class Unit(NamedTuple):
    stored_as: str  # the id its assignment and events are stored under
    hashed: str  # the identifier the flag's hash takes (PostHog's: the distinct_id, or the group key)


def group_key(groups: object, group_type: str) -> str | None:
    """The key of the group of `group_type` in a `groups` or `$groups` object, or None."""
    if not isinstance(groups, Mapping):
        return None
    key = groups.get(group_type)
    if isinstance(key, bool) or not isinstance(key, str | int) or not 0 < len(str(key)) <= MAX_GROUP_KEY_LENGTH:
        return None
    return str(key)


def unit_of(spec: ExperimentFields, person_root: str, groups: object) -> Unit | None:
    """The unit a user acting with `groups` is in this experiment: their person, or their group
    (None: a group experiment, and no group of its type given)."""
    if spec.group_type is None:
        return Unit(person_root, person_root)
    key = group_key(groups, spec.group_type)
    return None if key is None else Unit(keys.group_unit(spec.group_type, key), key)


def plural(noun: str) -> str:
    """An English plural for a group type: company -> companies, team -> teams, class -> classes."""
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "z", "ch", "sh")) else "s")


def group_types(specs: list[ExperimentFields]) -> set[str]:
    return {spec.group_type for spec in specs if spec.group_type is not None}
