"""The numbers Abacus gives out: JSON without NaN or Infinity. Standard library only: the API and
the stats layer use it."""

import json
import math


def finite_everywhere(value: object) -> bool:
    """No float in `value` (dicts and lists, however nested) is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_everywhere(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(finite_everywhere(item) for item in value)
    return True


def nulled(value: object) -> object:
    """`value` with every float that is NaN or infinite replaced by None, JSON's null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: nulled(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [nulled(item) for item in value]
    return value


def dumps(value: object) -> str:
    """JSON as RFC 8259 defines it: NaN and Infinity, which Python would write, are null."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(nulled(value), allow_nan=False)
