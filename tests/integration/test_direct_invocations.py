"""Invocations that do not come through API Gateway (`aws lambda invoke`, EventBridge): a payload
a function does not take is refused with an error naming what it expected, and the results
function's scheduled event and recompute payload name the field that is wrong; never a KeyError
or a ValueError from deep inside."""

import json

import pytest

from abacus.errors import InvalidInvocation
from tests.conftest import invoke, sample_event, sample_path

FUNCTIONS = ["AssignFunction", "IngestFunction", "ResultsFunction"]
RECOMPUTE = {"project": "test", "experiment": "new-checkout"}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"hello": "world"},
        [1, 2],
        "nightly",
        None,
        {"requestContext": {}},  # not an HTTP API's event (no version 2.0, no http)
        {"version": "2.0", "requestContext": {"http": {"method": "GET"}}},  # no rawPath
    ],
)
def test_a_payload_the_function_does_not_take_is_refused_saying_what_it_takes(tables, function, payload):
    with pytest.raises(InvalidInvocation) as refused:
        invoke(function, payload)
    message = refused.value.message
    assert "an API Gateway HTTP API event (payload format 2.0)" in message, message
    if function == "ResultsFunction":
        assert "EventBridge's Scheduled Event" in message and '{"project", "experiment", "as_of"?}' in message


@pytest.mark.parametrize(
    "time",
    [
        "25/11/2026",
        "2026-11-25T03:00:00",  # no zone: EventBridge always says UTC
        None,
        1795575600,
        "",
    ],
)
def test_a_scheduled_event_without_a_time_it_can_read_names_the_time(tables, time):
    scheduled = json.loads(sample_path("nightly").read_text()) | {"time": time}
    with pytest.raises(InvalidInvocation) as refused:
        invoke("ResultsFunction", scheduled)
    assert refused.value.field == "time" and refused.value.message.startswith("time: "), refused.value.message
    assert "2026-11-25T03:00:00Z" in refused.value.message  # what one looks like


def test_a_scheduled_event_without_its_time_names_it(tables):
    scheduled = json.loads(sample_path("nightly").read_text())
    del scheduled["time"]
    with pytest.raises(InvalidInvocation) as refused:
        invoke("ResultsFunction", scheduled)
    assert refused.value.field == "time" and refused.value.message == "time: is required"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (RECOMPUTE | {"as_of": "25/11/2026"}, "as_of"),
        (RECOMPUTE | {"as_of": "2026-02-30"}, "as_of"),
        (RECOMPUTE | {"as_of": "2026-11-20T00:00:00Z"}, "as_of"),
        (RECOMPUTE | {"as_of": 20261120}, "as_of"),
        ({"project": "test", "as_of": "2026-11-20"}, "experiment"),
        ({"experiment": "new-checkout"}, "project"),
        ({"project": 7, "experiment": "new-checkout"}, "project"),
        (RECOMPUTE | {"asof": "2026-11-20"}, "asof"),
    ],
)
def test_a_recompute_payload_names_the_field_that_is_wrong(project, payload, field):
    invoke("AssignFunction", sample_event("create_experiment"))
    with pytest.raises(InvalidInvocation) as refused:
        invoke("ResultsFunction", payload)
    assert refused.value.field == field and refused.value.message.startswith(f"{field}: "), refused.value.message
    if field == "as_of":
        assert "YYYY-MM-DD" in refused.value.message
