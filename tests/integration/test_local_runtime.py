"""The local stack's execution environments behave as Lambda's: a process each, one invocation
at a time, warm reuse, another environment when busy, the function's own environment variables
and layers only, the Timeout enforced, and a crashed or timed-out environment replaced."""

import os
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from abacus_local.lambdas import FunctionError, LocalFunction, close_all
from abacus_local.template import FunctionSpec, Template

HANDLER = textwrap.dedent(
    """
    import importlib.util
    import os
    import time

    invocations = 0  # module state: kept between an environment's invocations, as in Lambda

    def handler(event, context):
        global invocations
        invocations += 1
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("raise"):
            raise ValueError(event["raise"])
        if event.get("exit"):
            os._exit(event["exit"])
        return {
            "echo": event.get("echo"),
            "pid": os.getpid(),
            "invocations": invocations,
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "variable": os.environ.get(event.get("variable", ""), None),
            "stats_layer": importlib.util.find_spec("abacus.stats") is not None,
        }
    """
)


@pytest.fixture
def function_spec(tmp_path: Path) -> FunctionSpec:
    """AssignFunction's settings (shared layer only, 10 s timeout), with the test handler as code."""
    (tmp_path / "app.py").write_text(HANDLER)
    return replace(Template().functions()["AssignFunction"], code_dir=tmp_path)


@pytest.fixture
def function(function_spec: FunctionSpec):
    local = LocalFunction(function_spec, "us-east-1", {"ONLY_THIS_FUNCTION": "yes"}, max_environments=2)
    yield local
    close_all([local])


def test_an_environment_is_a_process_reused_warm(function):
    first = function.invoke({"echo": 1})
    second = function.invoke({"echo": 2})
    assert first["pid"] != os.getpid()
    assert (second["pid"], second["invocations"], second["echo"]) == (first["pid"], 2, 2)
    assert first["request_id"] != second["request_id"]
    assert 9_000 < first["remaining_ms"] <= 10_000


def test_concurrent_invocations_get_environments_of_their_own(function):
    answers: dict[int, dict] = {}

    def call(n: int) -> None:
        answers[n] = function.invoke({"echo": n, "sleep": 0.5})

    threads = [threading.Thread(target=call, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: answer["echo"] for n, answer in answers.items()} == {0: 0, 1: 1}
    assert answers[0]["pid"] != answers[1]["pid"]


def test_the_function_sees_its_own_variables_and_layers_only(function, monkeypatch):
    monkeypatch.setenv("ONLY_THE_STACK", "leaked")
    assert function.invoke({"variable": "ONLY_THIS_FUNCTION"})["variable"] == "yes"
    assert function.invoke({"variable": "AWS_LAMBDA_FUNCTION_NAME"})["variable"] == "AssignFunction"
    assert function.invoke({"variable": "ONLY_THE_STACK"})["variable"] is None
    # The shared layer only, as deployed: the stats layer is ResultsFunction's.
    assert function.invoke({})["stats_layer"] is False


def test_results_function_has_both_layers(function_spec):
    results = Template().functions()["ResultsFunction"]
    local = LocalFunction(replace(function_spec, layers=results.layers), "us-east-1", {})
    try:
        assert local.invoke({})["stats_layer"] is True
    finally:
        close_all([local])


def test_a_handler_error_is_lambdas_error_and_the_environment_stays(function):
    pid = function.invoke({})["pid"]
    with pytest.raises(FunctionError) as failed:
        function.invoke({"raise": "bad input"})
    assert failed.value.payload["errorType"] == "ValueError"
    assert failed.value.payload["errorMessage"] == "bad input"
    assert function.invoke({})["pid"] == pid


def test_an_invocation_past_the_timeout_is_stopped_and_its_environment_replaced(function_spec):
    local = LocalFunction(replace(function_spec, timeout=1), "us-east-1", {}, max_environments=1)
    try:
        pid = local.invoke({})["pid"]
        with pytest.raises(FunctionError) as failed:
            local.invoke({"sleep": 30})
        assert failed.value.payload["errorType"] == "Sandbox.Timedout"
        answer = local.invoke({})
        assert answer["pid"] != pid and answer["invocations"] == 1  # a cold start
    finally:
        close_all([local])


def test_the_slack_stretches_only_where_an_invocation_is_stopped(function_spec):
    """The local stack's slack (abacus_local.stack.TIMEOUT_SLACK): a handler past its Timeout
    but inside the slack finishes, and it saw its own Timeout counting down."""
    local = LocalFunction(replace(function_spec, timeout=1), "us-east-1", {}, max_environments=1, timeout_slack=3)
    try:
        answer = local.invoke({"sleep": 1.5})
        assert answer["remaining_ms"] == 0  # its context: past its 1 s
        with pytest.raises(FunctionError) as failed:
            local.invoke({"sleep": 30})
        assert failed.value.payload["errorType"] == "Sandbox.Timedout"
        assert "after 3.00 seconds" in failed.value.payload["errorMessage"]
    finally:
        close_all([local])


def test_a_crashed_environment_is_replaced(function):
    pid = function.invoke({})["pid"]
    with pytest.raises(FunctionError) as failed:
        function.invoke({"exit": 3})
    assert failed.value.payload["errorType"] == "Runtime.ExitError"
    assert function.invoke({})["pid"] != pid


def test_an_import_error_is_answered_by_every_invocation(function_spec, tmp_path):
    (tmp_path / "app.py").write_text("import no_such_module\n")
    local = LocalFunction(function_spec, "us-east-1", {})
    try:
        for _ in range(2):
            with pytest.raises(FunctionError) as failed:
                local.invoke({})
            assert failed.value.payload["errorType"] == "Runtime.ImportModuleError"
    finally:
        close_all([local])


def test_closing_ends_every_process(function):
    pid = function.invoke({})["pid"]
    close_all([function])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


CALLER = textwrap.dedent(
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, EndpointConnectionError

    # Nothing listens on port 9: a call that passes the IAM check fails on the network instead.
    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )

    def handler(event, context):
        try:
            getattr(client, event["call"])(**event["params"])
        except ClientError as error:
            return error.response["Error"]["Code"]
        except EndpointConnectionError:
            return "passed the IAM check"
    """
)


def test_an_environment_runs_under_its_functions_policy(tmp_path, capfd):
    from tests.conftest import function_policies

    (tmp_path / "app.py").write_text(CALLER)
    spec = replace(Template().functions()["IngestFunction"], code_dir=tmp_path)
    credentials = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    local = LocalFunction(spec, "us-east-1", credentials, policy=function_policies()["IngestFunction"].to_json())
    try:
        granted = {"call": "get_item", "params": {"TableName": "CredentialsTable", "Key": {"pk": {"S": "x"}}}}
        assert local.invoke(granted) == "passed the IAM check"
        refused = {"call": "scan", "params": {"TableName": "ExperimentsTable"}}
        assert local.invoke(refused) == "AccessDeniedException"
    finally:
        close_all([local])
    reported = [line for line in capfd.readouterr().out.splitlines() if line.startswith("AccessDenied")]
    assert reported == [
        "AccessDenied: IngestFunction may not dynamodb:Scan on "
        "arn:aws:dynamodb:us-east-1:123456789012:table/ExperimentsTable (template.yaml does not grant it)"
    ]
