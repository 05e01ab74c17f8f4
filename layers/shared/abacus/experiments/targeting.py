"""Targeting: does a user, by the properties sent with an assignment, belong to an experiment?

Conditions in a group are combined with AND, groups with OR; no groups means everyone. As in
PostHog, values compare as case-insensitive strings for eq, neq, in, not_in and contains, and as
numbers for gt, gte, lt, lte when both sides are numbers (else as strings). A condition on a
property that was not sent (or is null) fails, except is_not_set. A list property matches eq,
in and contains when any element does, and neq and not_in when none does.
"""

from collections.abc import Mapping, Sequence

from abacus.experiments.metrics_spec import Condition, Scalar, TargetingGroup

_NEGATED = {"neq": "eq", "not_in": "in"}


def matches(targeting: list[TargetingGroup], properties: Mapping[str, Scalar | list[Scalar] | None]) -> bool:
    if not targeting:
        return True
    return any(all(_holds(condition, properties) for condition in group.conditions) for group in targeting)


def all_hold(conditions: Sequence[Condition], properties: Mapping[str, Scalar | list[Scalar] | None]) -> bool:
    """Whether every condition holds (a metric's filters on an event's properties)."""
    return all(_holds(condition, properties) for condition in conditions)


def _holds(condition: Condition, properties: Mapping[str, Scalar | list[Scalar] | None]) -> bool:
    actual = properties.get(condition.property)
    if condition.operator == "is_set":
        return actual is not None
    if condition.operator == "is_not_set":
        return actual is None
    if actual is None:
        return False
    values = actual if isinstance(actual, list) else [actual]
    if condition.operator in _NEGATED:
        positive = condition.model_copy(update={"operator": _NEGATED[condition.operator]})
        return not any(_test(positive, value) for value in values)
    return any(_test(condition, value) for value in values)


def _text(value: Scalar | list[Scalar] | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _number(value: Scalar | list[Scalar] | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _test(condition: Condition, actual: Scalar) -> bool:
    operator, expected = condition.operator, condition.value
    if operator == "eq":
        return _text(actual) == _text(expected)
    if operator == "in":
        return isinstance(expected, list) and _text(actual) in {_text(item) for item in expected}
    if operator == "contains":
        return _text(expected) in _text(actual)
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return _ordered(operator, left, right)
    return _ordered(operator, _text(actual), _text(expected))


def _ordered[T: (float, str)](operator: str, left: T, right: T) -> bool:
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[operator]
