"""The numbers Abacus takes in and gives out: the bound on a value a sum metric adds up, and JSON
without NaN or Infinity. Standard library only: ingest, the nightly job and the API all use it.

Why MAX_VALUE = 1e15. A sum metric's value is a user's total of an event property, and the
nightly job sums those totals and their squares over every user of a variant, in doubles.
- Finite: tens of millions of users (1e8) of values up to 1e15 make sums of squares up to 1e38,
  some 270 orders of magnitude below a double's largest (1.8e308), so a user's total of any
  number of such events, its square, and the covariate's cross-products stay finite too.
- Accurate: every integer up to 2^53 (9.007e15) is a double exactly (and a JavaScript number:
  posthog-js sends them), so every whole value within the bound, such as an amount in cents up
  to $10 trillion, is held exactly; the sums' rounding is at most about 1e-8 of them with 1e8
  users, far below any experiment's noise.
- Room: money in minor units, durations in microseconds (up to 31 years), bytes (a petabyte) and
  epoch milliseconds fit; a value beyond it is a mistake (an id or a nanosecond timestamp sent as
  the amount), and one such value would drown the metric's variance.
"""

import json
import math
from typing import TypeGuard

MAX_VALUE = 1e15


def is_number(value: object) -> bool:
    """A JSON number: an int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def summable(value: object) -> TypeGuard[int | float]:
    """A number a sum metric adds up: finite and within +/-MAX_VALUE (exactly, even for a huge int)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= MAX_VALUE  # False for NaN and infinities too


def beyond_bound(properties: object) -> list[str]:
    """The top-level properties (the ones a sum metric reads) holding a number it would not sum."""
    if not isinstance(properties, dict):
        return []
    return [name for name, value in properties.items() if is_number(value) and not summable(value)]


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
