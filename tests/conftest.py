"""Shared fixtures: moto-backed tables created from template.yaml, a project, handler invocation."""

import json
import os
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
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)

import boto3
from moto import mock_aws

from abacus.documents import NewProject
from abacus_local.lambdas import LocalContext, load_handler
from abacus_local.template import ROOT, Template

EVENTS_DIR = ROOT / "events"
TOKEN = "phc_local_dev"
ADMIN_KEY = "abacus_local_admin"


@pytest.fixture(scope="session")
def template() -> Template:
    return Template()


@pytest.fixture
def tables(template: Template):
    """Every table of template.yaml, empty, in moto."""
    from abacus_local.dynamodb import create_tables

    with mock_aws():
        create_tables(template, boto3.client("dynamodb", region_name="us-east-1"))
        yield


@pytest.fixture
def project(tables) -> NewProject:
    """A project with the local development credentials (those the sample events carry)."""
    from abacus import projects

    return projects.create("Test project", project_id="test", token=TOKEN, admin_key=ADMIN_KEY)


_handlers: dict = {}


def invoke(function: str, event: dict):
    """Invokes a function's handler (loaded from its CodeUri, as template.yaml says) with `event`."""
    if function not in _handlers:
        _handlers[function] = load_handler(Template().functions()[function])
    context = LocalContext(function, 256, 10, "us-east-1")
    return _handlers[function](event, context)


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
