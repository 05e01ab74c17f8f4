"""Breakdowns: results per value of a property a user had at their first exposure (browser,
country, plan), sent to /assign or carried by the exposure event. The values are stored with the
first exposure, in the order of the experiment's `breakdowns` (frozen while it runs), so that an
assignment stays one write unit: a value is a number, a boolean or a string cut to
MAX_VALUE_CHARS; anything else, or a property not sent, is None ("not set").

Standard library only: assign and ingest import it."""

import json
from collections.abc import Mapping

MAX_BREAKDOWNS = 3
# Values shown per breakdown; the rest are analysed together as "other".
TOP_VALUES = 10
MAX_VALUE_CHARS = 100

type Value = str | int | float | bool | None


def values_of(names: list[str], properties: Mapping[str, object]) -> list[Value]:
    """The user's value of each breakdown property among `properties`."""
    return [_value(properties.get(name)) for name in names]


def _value(given: object) -> Value:
    if isinstance(given, str):
        return given[:MAX_VALUE_CHARS]
    if isinstance(given, bool | int | float):
        return given
    return None


def key_of(value: Value) -> str:
    """A value as the nightly job's sums key it (JSON: "Chrome", 3, true, null)."""
    return json.dumps(value)


def value_of(key: str) -> Value:
    parsed: Value = json.loads(key)
    return parsed
