"""Targeting conditions, one operator at a time, and how groups combine."""

import pytest

from abacus.experiments.metrics_spec import TargetingGroup
from abacus.experiments.targeting import matches


def group(*conditions) -> TargetingGroup:
    return TargetingGroup.model_validate(
        {
            "conditions": [
                {"property": p, "operator": o, **({"value": v} if v is not None else {})} for p, o, v in conditions
            ]
        }
    )


@pytest.mark.parametrize(
    ("condition", "properties", "expected"),
    [
        (("country", "eq", "DE"), {"country": "de"}, True),  # case-insensitive, as in PostHog
        (("country", "eq", "DE"), {"country": "FR"}, False),
        (("country", "neq", "DE"), {"country": "FR"}, True),
        (("country", "neq", "DE"), {}, False),  # a missing property fails
        (("country", "in", ["DE", "AT"]), {"country": "AT"}, True),
        (("country", "not_in", ["DE", "AT"]), {"country": "CH"}, True),
        (("country", "not_in", ["DE", "AT"]), {"country": "DE"}, False),
        (("age", "gt", 30), {"age": 31}, True),
        (("age", "gt", 30), {"age": "31"}, True),  # numbers sent as strings compare as numbers
        (("age", "gte", 30), {"age": 30}, True),
        (("age", "lt", 30), {"age": 30}, False),
        (("age", "lte", 30), {"age": 30.0}, True),
        (("version", "gt", "b"), {"version": "c"}, True),  # strings compare as strings
        (("email", "contains", "@ACME.com"), {"email": "ann@acme.com"}, True),
        (("email", "contains", "@acme.com"), {"email": "ann@other.com"}, False),
        (("plan", "is_set", None), {"plan": "pro"}, True),
        (("plan", "is_set", None), {"plan": None}, False),
        (("plan", "is_not_set", None), {}, True),
        (("tags", "eq", "beta"), {"tags": ["alpha", "beta"]}, True),  # any element of a list
        (("tags", "neq", "beta"), {"tags": ["alpha", "beta"]}, False),
        (("beta", "eq", True), {"beta": True}, True),
    ],
)
def test_operators(condition, properties, expected):
    assert matches([group(condition)], properties) is expected


def test_and_within_a_group_or_across_groups():
    rules = [group(("country", "eq", "DE"), ("plan", "eq", "pro")), group(("beta", "eq", True))]
    assert matches(rules, {"country": "DE", "plan": "pro"})
    assert not matches(rules, {"country": "DE", "plan": "free"})
    assert matches(rules, {"beta": True})
    assert matches([], {})  # no targeting: everyone


@pytest.mark.parametrize(
    "condition",
    [
        {"property": "a", "operator": "in", "value": "x"},
        {"property": "a", "operator": "eq"},
        {"property": "a", "operator": "is_set", "value": 1},
        {"property": "a", "operator": "gt", "value": True},
        {"property": "a", "operator": "like", "value": "x"},
    ],
)
def test_malformed_conditions_are_refused(condition):
    with pytest.raises(ValueError):
        TargetingGroup.model_validate({"conditions": [condition]})
