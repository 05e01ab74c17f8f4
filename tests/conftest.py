"""Shared fixtures: moto-backed tables created from template.yaml, a project, handler invocation."""

import functools
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

# Before anything imports abacus: table names and the region come from the environment, as in Lambda.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Abacus",
        "POWERTOOLS_SERVICE_NAME": "abacus",
        "ABACUS_CACHE_SECONDS": "0",  # every test sees its own writes at once
        # moto names a queue's URL after its account and name: the `tables` fixture creates it.
        "NIGHTLY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/NightlyWorkQueue",
        "ALERTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/AlertsQueue",
        "ALERTS_BUS_NAME": "AlertsBus",  # the local name of the template's bus (abacus_local.buses)
        "ABACUS_WEBHOOK_RETRY_SECONDS": "0",  # a failed delivery comes back at once, not in a minute
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)

import boto3
from moto import mock_aws

from abacus.core.answers import NewProject
from abacus.http.invocations import is_scheduled
from abacus_local import iam
from abacus_local.event_sources import POLL_WAIT_SECONDS, QueuePoller
from abacus_local.lambdas import LocalContext, load_handler
from abacus_local.moto_server import one_request_at_a_time
from abacus_local.template import ROOT, Template

# The event source mappings' threads and the test's own share moto: each request sees items whole, as in DynamoDB.
one_request_at_a_time()


@functools.cache
def function_policies() -> dict[str, iam.FunctionPolicy]:
    return iam.function_policies(Template())


# Every AWS call a handler makes (and the threads it starts, and Lambda's polling of its queue) is
# checked against its function's policy in template.yaml, as IAM checks it deployed: every test
# that runs a handler is a least-privilege test (the `iam_denials` fixture fails it on a refusal).
iam.threads_inherit_identity()
iam.install(function_policies)

EVENTS_DIR = ROOT / "events"
TOKEN = "phc_local_dev"
ADMIN_KEY = "abacus_local_admin"
FLAGS_KEY = "phs_local_dev"


@pytest.fixture(scope="session")
def template() -> Template:
    return Template()


# A failed unit of the nightly job comes back after this (the template's 30 minutes, in a test).
TEST_VISIBILITY_TIMEOUT = 1


# {logical id: ARN} of the template's secrets in the current moto mock (the functions name them by
# their logical id, as deployed by ARN: settings.signing_secret's default).
secret_arns: dict[str, str] = {}


@contextmanager
def template_resources(template: Template):
    """Every table, queue and secret of template.yaml, empty, in the moto mock already started;
    while it lasts, `invoke` runs the queues' event source mappings."""
    from abacus.results import signing
    from abacus_local.buses import create_buses
    from abacus_local.dynamodb import create_tables
    from abacus_local.queues import create_queues
    from abacus_local.secretsmanager import create_secrets

    create_tables(template, boto3.client("dynamodb", region_name="us-east-1"))
    urls = create_queues(template, boto3.client("sqs", region_name="us-east-1"), "us-east-1", TEST_VISIBILITY_TIMEOUT)
    assert urls["NightlyWorkQueue"] == os.environ["NIGHTLY_QUEUE_URL"]
    assert urls["AlertsQueue"] == os.environ["ALERTS_QUEUE_URL"]
    create_buses(template, boto3.client("events", region_name="us-east-1"))
    secret_arns.update(create_secrets(template, boto3.client("secretsmanager", region_name="us-east-1")))
    signing.forget_secret()  # a secret read from an earlier mock is not this one's
    _queues_created.set()
    try:
        yield
    finally:
        _queues_created.clear()
        secret_arns.clear()


@pytest.fixture
def tables(template: Template):
    """Every table and queue of template.yaml, empty, in moto."""
    with mock_aws(), template_resources(template):
        yield


@pytest.fixture
def project(tables) -> NewProject:
    """A project with the local development credentials (those the sample events carry)."""
    from abacus import projects

    return projects.create("Test project", project_id="test", token=TOKEN, admin_key=ADMIN_KEY, flags_key=FLAGS_KEY)


_handlers: dict = {}
_queues_created = threading.Event()  # within the `tables` fixture: moto has the template's queues


def invoke(function: str, event: dict, request_id: str | None = None):
    """Invokes a function's handler (loaded from its CodeUri, as template.yaml says) with `event`.
    The queues' event source mappings run meanwhile, and the nightly job's work queued (the
    planner's units, a recompute's, a bandit's scheduled recompute) is done before this returns
    (or raises), as deployed it is soon after.
    `request_id`: Lambda's, which its retries of an asynchronous invocation keep (else a new one)."""
    if function not in _handlers:
        _handlers[function] = load_handler(_template().functions()[function])
    route_functions = _route_functions()
    if isinstance(event, dict) and function in route_functions.values():
        # An HTTP API event goes to the function API Gateway would send it to.
        served_by = route_functions.get(str(event.get("routeKey")), function)
        assert served_by == function, f"{event['routeKey']} is {served_by}'s route in template.yaml, not {function}'s"
    context = LocalContext(function, 256, 10, "us-east-1")
    if request_id is not None:
        context = replace(context, aws_request_id=request_id)
    # The functions that queue the nightly job's work: the planner and a recompute (ResultsFunction),
    # and the minute's schedule, which starts the bandits' recomputes (AutomationFunction).
    queues_work = function == "ResultsFunction" or (function == "AutomationFunction" and is_scheduled(event))
    if not queues_work or not _queues_created.is_set():
        return _as(function, event, context)
    with event_sources() as pollers:
        try:
            return _as(function, event, context)
        finally:  # what it queued is worked even when it then fails (the planner, for a retry)
            for poller in pollers:
                poller.wait_until_idle(timeout_s=300)


@functools.cache
def _route_functions() -> dict[str, str]:
    """{route key: the function template.yaml gives it}."""
    return {route.route_key: route.function for route in _template().routes()}


@functools.cache
def _template() -> Template:
    """template.yaml, read once per process: what `invoke` and `event_sources` look up in it
    (parsing it again for each invocation of the ResultsFunction took half a second)."""
    return Template()


def function_of(event: dict) -> str:
    """The function template.yaml gives the route of an HTTP API event."""
    return _route_functions()[event["routeKey"]]


def running_function() -> str | None:
    """The function whose handler this thread is running (None outside one)."""
    return iam.current()


running_as = iam.acting_as


def _as(function: str, event: dict, context: LocalContext):
    with running_as(function):
        return _handlers[function](event, context)


@pytest.fixture(autouse=True)
def iam_denials(request):
    """The calls IAM refused during the test: none, unless the test is marked `access_denied`
    (it then reads them from this fixture's list)."""
    start = len(iam.denials)
    refused: list[iam.Denial] = []
    yield refused
    refused.extend(iam.denials[start:])
    if refused and request.node.get_closest_marker("access_denied") is None:
        listed = "\n".join(str(denial) for denial in refused)
        pytest.fail(f"calls the functions' policies in template.yaml do not allow:\n{listed}", pytrace=False)


class event_sources:
    """The template's SQS event source mappings, polling moto's in-process queues and invoking the
    handlers in this process, as Lambda would (abacus_local.event_sources)."""

    def __init__(self, on_error=None):
        sqs = boto3.client("sqs", region_name="us-east-1")
        self.pollers = []
        for mapping in _template().queue_mappings():
            url = sqs.get_queue_url(QueueName=mapping.queue)["QueueUrl"]
            # One at a time: the handlers share this process's modules (Powertools' metrics among
            # them), where each Lambda environment has its own; the local stack runs them in processes.
            one = replace(mapping, maximum_concurrency=1)
            handler = partial(invoke, mapping.function)
            self.pollers.append(_StoppablePoller(one, sqs, url, "us-east-1", handler, on_error or (lambda error: None)))

    def __enter__(self):
        return [poller.start() for poller in self.pollers]

    def __exit__(self, *exc):
        for poller in self.pollers:
            poller.stop()


class _StoppablePoller(QueuePoller):
    """A QueuePoller whose long poll ends as soon as it is stopped. SQS's long poll is a wait until
    the queue has a visible message (or POLL_WAIT_SECONDS pass), then a receive: so is this one's,
    on the in-process moto queue's own condition, which `stop` wakes. The base class's receive
    with WaitTimeSeconds cannot be woken: each invocation of the ResultsFunction ended waiting
    out its poller's last long poll (a second or two, most of such a test's time)."""

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._wait_for_messages(POLL_WAIT_SECONDS)
                if not self._stop.is_set():
                    self.poll_once(0)
            except Exception as error:  # noqa: BLE001 - as the base class: it outlives one failed request
                self.on_error(error)
                self._stop.wait(0.5)

    def _queue(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[iam.ACCOUNT_ID]["us-east-1"].queues[self.mapping.queue]

    def _wait_for_messages(self, timeout_s: float) -> None:
        queue = self._queue()
        with queue._messages_lock:
            queue._messages_lock.wait_for(lambda: queue.messages or self._stop.is_set(), timeout=timeout_s)

    def stop(self) -> None:
        self._stop.set()
        queue = self._queue()
        with queue._messages_lock:
            queue._messages_lock.notify_all()
        super().stop()


def sample_event(name: str, body: dict | None = None, path: str | None = None, **headers) -> dict:
    """events/<name>.json, with its body, path or headers replaced where given."""
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    if body is not None:
        event["body"] = json.dumps(body)
    if path is not None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
    for header, value in headers.items():
        if value is None:
            event["headers"].pop(header, None)
        else:
            event["headers"][header] = value
    return event


def answer(response: dict) -> tuple[int, dict]:
    """(status, decoded JSON body) of an HTTP API handler's response."""
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else {}


def sample_path(name: str) -> Path:
    return EVENTS_DIR / f"{name}.json"


def assignment_partition(experiment_key: str, distinct_id: str, project_id: str = "test") -> str:
    """The assignments table's key of a user of an experiment (its shard)."""
    from abacus.storage.experiments import ExperimentItem

    return ExperimentItem.get(project_id, experiment_key).assignment_partition(distinct_id)


def stored_assignment(experiment_key: str, distinct_id: str, project_id: str = "test") -> Any:
    """A user's stored assignment, in whichever shard of the experiment it is."""
    from abacus.storage.assignments import AssignmentItem

    return AssignmentItem.get(assignment_partition(experiment_key, distinct_id, project_id), distinct_id)


def stored_assignments(experiment_key: str, project_id: str = "test") -> list[Any]:
    """Every stored assignment of an experiment, across its shards."""
    from abacus.storage.assignments import AssignmentItem
    from abacus.storage.experiments import ExperimentItem

    partitions = ExperimentItem.get(project_id, experiment_key).assignment_partitions()
    return [item for partition in partitions for item in AssignmentItem.query(partition)]
