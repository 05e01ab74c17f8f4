"""Least privilege, proven by use: every route's sample request and the nightly job run against
moto while each DynamoDB, SQS and Secrets Manager call is recorded (the nightly job's worker is run by the queue's
event source mapping). Each function's policy must allow every call it made
(or Lambda would answer AccessDenied) and allow nothing it never made."""

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from botocore.client import BaseClient

from tests.conftest import answer, invoke, running_as, running_function, sample_event, secret_arns
from tests.integration.test_template import FUNCTIONS, statements

# The sample requests in an order where each succeeds: (function, sample event, status).
WORKLOAD = [
    ("AssignFunction", "create_experiment", 201),
    ("AssignFunction", "list_experiments", 200),
    ("AssignFunction", "get_experiment", 200),
    ("AssignFunction", "update_experiment", 200),
    ("AssignFunction", "launch_experiment", 200),
    ("AssignFunction", "assign", 200),
    # The targeting changed under an exposed user: their variant is read back (sticky).
    ("AssignFunction", "update_experiment:targeting", 200),
    ("AssignFunction", "assign", 200),
    ("AssignFunction", "posthog_flags", 200),
    ("AssignFunction", "posthog_decide", 200),
    # A PostHog server SDK polling the flag definitions with the flags key.
    ("AssignFunction", "posthog_flag_definitions", 200),
    ("AssignFunction", "posthog_local_evaluation", 200),
    ("AssignFunction", "posthog_local_evaluation_node", 200),
    ("IngestFunction", "post_events", 200),
    ("IngestFunction", "posthog_batch", 200),
    ("IngestFunction", "posthog_capture", 200),
    ("IngestFunction", "posthog_e", 200),
    ("IngestFunction", "posthog_i_v0_e", 200),
    ("ResultsFunction", "nightly", None),
    ("ResultsFunction", "get_results", 200),
    ("ResultsFunction", "get_results_history", 200),
    ("ResultsFunction", "recompute_results", 200),
    ("ResultsFunction", "create_report_link", 201),
    ("ResultsFunction", "get_report", 200),
    ("ResultsFunction", "get_openapi_document", 200),
    # The console: signed in, its pages read with the session cookie, signed out with the CSRF token.
    ("ResultsFunction", "console_sign_in", 303),
    ("ResultsFunction", "console_experiments", 200),
    ("ResultsFunction", "console_experiment", 200),
    # The Implementation page and its live check (the counters /assign and /events added above).
    ("ResultsFunction", "console_implementation", 200),
    ("ResultsFunction", "console_live_check", 200),
    # A draft created, checked and edited from the Creation form, and launched from its page.
    ("ResultsFunction", "console_new_form", 200),
    ("ResultsFunction", "console_check", 200),
    ("ResultsFunction", "console_create:draft", 303),
    ("ResultsFunction", "console_edit_form:draft", 200),
    ("ResultsFunction", "console_edit:draft", 303),
    # Stopped from the console's results page (confirmed): the same write as the admin route's stop.
    ("ResultsFunction", "console_experiment_action", 303),
    # The console's draft put in a layer, launched from the console and stopped through the API:
    # the layer's allocations and the experiment, written in one transaction each time.
    ("AssignFunction", "update_experiment:layered", 200),
    ("ResultsFunction", "console_experiment_action:launch-layered", 303),
    ("AssignFunction", "stop_experiment:layered", 200),
    ("AssignFunction", "ship_experiment", 200),
    ("AssignFunction", "archive_experiment", 200),
    ("ResultsFunction", "console_sign_out", 303),
]


# SQS's batch calls have no IAM action of their own: SendMessage allows SendMessageBatch.
IAM_ACTION_OF = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}
# A transaction's writes need their own actions (DynamoDB's "Using IAM with transactions").
TRANSACTION_ACTION_OF = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def resources_of(operation: str, params: dict) -> list[str]:
    """The policy resources a call needs: its tables, Table/index/name for an index, its queue, its
    secret (by logical id, whether the call names it by name or by ARN)."""
    if "QueueUrl" in params:
        return [params["QueueUrl"].rsplit("/", 1)[-1]]
    if "SecretId" in params:
        by_arn = {arn: logical_id for logical_id, arn in secret_arns.items()}
        return [by_arn.get(params["SecretId"], params["SecretId"])]
    tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
    if params.get("IndexName"):
        return [f"{table}/index/{params['IndexName']}" for table in tables]
    return tables


def allowed(template, function: str) -> set[tuple[str, str]]:
    pairs = set()
    for statement in statements(template.resources[function]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            if "Fn::Sub" in resource:
                table, _, index = resource["Fn::Sub"].partition(".Arn}/index/")
                name = f"{table.removeprefix('${')}/index/{index}"
            elif "Ref" in resource:  # a secret: !Ref is its ARN
                name = resource["Ref"]
            else:
                name = resource["Fn::GetAtt"][0]
            pairs |= {(action.split(":", 1)[1], name) for action in actions}
    return pairs


def prepared(name: str, console: dict[str, str]) -> dict:
    """The workload's event `name` (a sample event, `sample:variant` for a changed one)."""
    event = sample_event(name.split(":")[0])
    if name == "update_experiment:targeting":
        elsewhere = [{"conditions": [{"property": "country", "operator": "eq", "value": "FR"}]}]
        event["body"] = json.dumps({"targeting": elsewhere})
    if name == "nightly":  # a day after launch, so that there is a day to analyse
        event["time"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    if name == "launch_experiment":  # running since yesterday: the sample exposures are from its run
        event["body"] = json.dumps({"started_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()})
    if name == "ship_experiment":
        event["body"] = json.dumps({"variant": "control"})
    if name.startswith("console_") and name != "console_sign_in":
        event["cookies"] = [console["cookie"]]
    if "from-the-page" in event.get("body", ""):
        event["body"] = event["body"].replace("from-the-page", console["csrf_token"])
    if name.endswith(":draft") or name.endswith("layered"):
        of_a_draft(event)
    return in_a_layer(name, event)


def in_a_layer(name: str, event: dict) -> dict:
    """The console's draft put in a layer, and launched from the console's page."""
    if name == "update_experiment:layered":
        event["body"] = json.dumps({"layer": {"key": "page", "share": 50}})
    if name == "console_experiment_action:launch-layered":
        event["body"] = event["body"].replace("action=stop", "action=launch")
    return event


def of_a_draft(event: dict) -> None:
    """A console event pointed at a draft of its own (new-checkout is running by then)."""
    if "body" in event:
        event["body"] = event["body"].replace("key=new-checkout", "key=console-draft")
    event["rawPath"] = event["rawPath"].replace("new-checkout", "console-draft")
    if "pathParameters" in event:
        event["pathParameters"] = {"key": "console-draft"}


def remember_console(name: str, response: dict, console: dict[str, str]) -> None:
    """The console's session cookie once signed in, and a page's CSRF token."""
    if name == "console_sign_in":
        console["cookie"] = response["cookies"][0].split(";", 1)[0]
    if name == "console_experiments":
        found = re.search(r'name="csrf_token" value="(\w+)"', response["body"])
        assert found is not None
        console["csrf_token"] = found.group(1)


@pytest.fixture
def recorded_calls(monkeypatch):
    """Every DynamoDB, SQS and Secrets Manager call a function's handler makes, by function (the worker's too, run
    by the queue's event source mapping in another thread)."""
    calls: dict[str, set[tuple[str, str]]] = {function: set() for function in FUNCTIONS}
    # botocore-stubs leave out this private method, which every client call goes through.
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(client, operation, params):
        function = running_function()
        if client.meta.service_model.service_name in {"dynamodb", "sqs", "secretsmanager"} and function:
            if operation == "TransactWriteItems":  # IAM allows each of its writes by the write's own action
                for write in params["TransactItems"]:
                    ((kind, request),) = write.items()
                    calls[function].add((TRANSACTION_ACTION_OF[kind], request["TableName"]))
            else:
                action = IAM_ACTION_OF.get(operation, operation)
                calls[function] |= {(action, resource) for resource in resources_of(operation, params)}
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    # A thread a handler starts (its pools of requests) works for that handler's function.
    original_start = threading.Thread.start

    def start_as_the_creator(thread: threading.Thread) -> None:
        creator, run = running_function(), thread.run

        def run_as_creator() -> None:
            with running_as(creator):
                run()

        thread.run = run_as_creator  # type: ignore[method-assign]
        original_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_as_the_creator)
    return calls


def test_each_function_is_allowed_exactly_the_calls_it_makes(template, project, recorded_calls, monkeypatch):
    from abacus import api, nightly_runs
    from abacus.rate_limit import RateLimiter

    monkeypatch.setattr(api, "rate_limiter", RateLimiter(1_000_000, share_every_seconds=0))
    # Pages of one user: a shard of the sample's users takes more than one, so the worker sends the next on.
    monkeypatch.setattr(nightly_runs, "PAGE_USERS", 1)
    calls = recorded_calls
    console: dict[str, str] = {}
    for function, name, status in WORKLOAD:
        response = invoke(function, prepared(name, console))
        if status is not None:
            assert response["statusCode"] == status, (
                name,
                response if name.startswith("console_") else answer(response),
            )
        remember_console(name, response, console)
    for function in FUNCTIONS:
        made, granted = calls[function], allowed(template, function)
        assert made, f"no call of {function} was recorded"
        assert made - granted == set(), f"{function} would be denied these"
        assert granted - made == set(), f"{function} is granted these but never uses them"
