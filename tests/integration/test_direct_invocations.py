"""Invocations that do not come through API Gateway (`aws lambda invoke`, EventBridge): a payload
a function does not take is refused with an error naming what it expected, and the results
function's scheduled event and recompute payload name the field that is wrong; never a KeyError
or a ValueError from deep inside."""

import json
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from abacus.core.errors import InvalidInvocation
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
    "payload",
    [
        {},
        sample_event("get_results"),
        json.loads(sample_path("nightly").read_text()),
        {"Records": []},
        {"Records": [{"eventSource": "aws:kinesis", "body": "{}"}]},
        [1, 2],
        None,
    ],
)
def test_the_nightly_worker_takes_only_sqs_events(tables, payload):
    with pytest.raises(InvalidInvocation) as refused:
        invoke("NightlyWorkerFunction", payload)
    assert "an SQS event from its event source mapping" in refused.value.message, refused.value.message


def test_a_unit_of_work_it_cannot_read_fails_and_comes_back(project):
    """A record whose body is not a unit fails: beside a good one it is reported in
    batchItemFailures (SQS brings back only it, and after 5 receives moves it to the dead-letter
    queue); alone, the invocation fails (Powertools' default: the whole batch comes back)."""
    from abacus.experiments import definitions
    from abacus.nightly import runs

    invoke("ResultsFunction", sample_event("create_experiment"))
    experiment = definitions.apply("test", "new-checkout", "launch", datetime(2026, 11, 20, tzinfo=UTC))
    unit = runs.plan(experiment, datetime(2026, 11, 25, tzinfo=UTC), datetime.now(UTC))[0]

    def record(message_id: str, body: str) -> dict:
        return {"messageId": message_id, "receiptHandle": "r", "body": body, "eventSource": "aws:sqs", "attributes": {}}

    good, bad = record("good", json.dumps(unit.to_json())), record("bad", "not json")
    assert invoke("NightlyWorkerFunction", {"Records": [good, bad]}) == {
        "batchItemFailures": [{"itemIdentifier": "bad"}]
    }
    with pytest.raises(BatchProcessingError):
        invoke("NightlyWorkerFunction", {"Records": [bad]})


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
    invoke("ResultsFunction", sample_event("create_experiment"))
    with pytest.raises(InvalidInvocation) as refused:
        invoke("ResultsFunction", payload)
    assert refused.value.field == field and refused.value.message.startswith(f"{field}: "), refused.value.message
    if field == "as_of":
        assert "YYYY-MM-DD" in refused.value.message


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"hello": "world"},
        sample_event("get_results"),
        {"Records": []},
        {"Records": [{"eventSource": "aws:kinesis", "body": "{}"}]},
        {"source": "aws.sqs", "Records": "none"},
        [1, 2],
        "schedule",
        None,
    ],
)
def test_the_automation_function_takes_only_its_queue_and_its_schedule(tables, payload):
    with pytest.raises(InvalidInvocation) as refused:
        invoke("AutomationFunction", payload)
    assert "an SQS event from its event source mapping" in refused.value.message, refused.value.message


@pytest.mark.parametrize("time", ["25/11/2026", "2026-11-25T03:00:00", None, 1795575600, ""])
def test_the_automation_functions_schedule_without_a_time_it_can_read_names_the_time(tables, time):
    scheduled = json.loads(sample_path("nightly").read_text()) | {"time": time}
    with pytest.raises(InvalidInvocation) as refused:
        invoke("AutomationFunction", scheduled)
    assert refused.value.field == "time" and refused.value.message.startswith("time: "), refused.value.message


def test_the_automation_functions_schedule_with_nothing_due_does_nothing(project):
    scheduled = json.loads(sample_path("nightly").read_text())
    assert invoke("AutomationFunction", scheduled) == {
        "launched": [],
        "stopped": [],
        "failed": [],
        "raced": 0,
        "errors": 0,
        "bandits_recomputed": [],
    }


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{}",
        json.dumps({"type": "snapshot", "project": "test"}),  # no experiment, generation, date
        json.dumps({"type": "webhook", "project": "test"}),  # no such type
        json.dumps({"type": "delivery", "project": "test", "experiment_id": "e", "alert": "a", "webhook": 7}),
    ],
)
def test_an_alerts_message_it_cannot_read_fails_and_comes_back(project, body):
    """As the nightly worker's: beside a good message it is reported in batchItemFailures (SQS
    brings back only it, and after 8 receives moves it to AlertsDeadLetters); alone, the
    invocation fails."""

    def record(message_id: str, body: str) -> dict:
        attributes = {"ApproximateReceiveCount": "1"}
        return {
            "messageId": message_id,
            "receiptHandle": "r",
            "body": body,
            "eventSource": "aws:sqs",
            "attributes": attributes,
        }

    # A follow-up of a snapshot whose experiment does not exist: read, and nothing to do.
    good = json.dumps(
        {"type": "snapshot", "project": "test", "experiment": "gone", "generation": 1, "date": "2026-11-24"}
    )
    assert invoke("AutomationFunction", {"Records": [record("good", good), record("bad", body)]}) == {
        "batchItemFailures": [{"itemIdentifier": "bad"}]
    }
    with pytest.raises(BatchProcessingError):
        invoke("AutomationFunction", {"Records": [record("bad", body)]})
