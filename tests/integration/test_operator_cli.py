"""The operator's command line (`python -m abacus`) as an operator runs it: a process of its own,
with only the environment given. Every failure is one line on stderr naming what is wrong, a
non-zero exit and no traceback; against the local stack (a DynamoDB endpoint on loopback) it needs
no region or credentials."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from abacus_local.dynamodb import create_tables
from abacus_local.stack import free_port
from abacus_local.template import ROOT, Template

COMMANDS = {
    "create": ["project", "create", "My shop"],
    "rotate": ["project", "rotate", "local", "--token"],
    "delete": ["project", "delete", "local", "--yes"],
    "results": ["results", "hello", "--project", "local"],
}
TABLE_VARIABLES = ("PROJECTS_TABLE", "EXPERIMENTS_TABLE", "ASSIGNMENTS_TABLE", "EVENTS_TABLE", "RESULTS_TABLE")


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without any AWS setting (no region, credentials, profile, config
    file, instance metadata or table name), and with `variables`."""
    kept = {
        name: value for name, value in os.environ.items() if not name.startswith("AWS_") and name not in TABLE_VARIABLES
    }
    nothing = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    return kept | nothing | {"AWS_EC2_METADATA_DISABLED": "true"} | variables


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "abacus", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {expected}"), done.stderr


@pytest.fixture(scope="module")
def dynamodb_url() -> Iterator[str]:
    """A moto server on loopback with the template's tables, as the local stack has it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client(
            "dynamodb", region_name="us-east-1", endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x"
        )
        create_tables(Template(), client)
        yield url
    finally:
        server.stop()


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_without_a_region_every_command_says_so_in_one_line(command):
    assert_one_line_error(run(command, environment()), "no AWS region: set AWS_REGION")


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_without_credentials_every_command_says_so_in_one_line(command):
    assert_one_line_error(run(command, environment(AWS_REGION="eu-west-1")), "no AWS credentials")


def test_a_table_that_is_not_there_is_named(dynamodb_url):
    local = {"AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url}
    created = run(COMMANDS["create"], environment(**local, PROJECTS_TABLE="NoSuchProjects"))
    assert_one_line_error(created, "table NoSuchProjects not found")
    assert "PROJECTS_TABLE" in created.stderr  # the variable that names it
    shown = run(COMMANDS["results"], environment(**local, EXPERIMENTS_TABLE="NoSuchExperiments"))
    assert_one_line_error(shown, "table NoSuchExperiments not found")


def test_against_a_loopback_endpoint_no_region_or_credentials_are_needed(dynamodb_url):
    """`AWS_ENDPOINT_URL_DYNAMODB=<the local stack's> python -m abacus project create "My shop"`."""
    env = environment(AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url)
    created = run(COMMANDS["create"], env)
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)
    project_id = keys["project_id"]
    assert keys["token"].startswith("phc_") and keys["flags_key"].startswith("phs_")
    shown = run(["results", "hello", "--project", project_id], env)
    assert_one_line_error(shown, "no experiment keyed 'hello' in this project")
    rotated = run(["project", "rotate", project_id, "--admin-key"], env)
    assert rotated.returncode == 0 and "admin_key" in json.loads(rotated.stdout), rotated.stderr
    rotated = run(["project", "rotate", project_id, "--flags-key"], env)
    assert rotated.returncode == 0, rotated.stderr
    assert set(json.loads(rotated.stdout)) == {"project_id", "flags_key"}
    assert json.loads(rotated.stdout)["flags_key"] != keys["flags_key"]
    assert run(["project", "rotate", project_id], env).returncode == 2  # which keys? it says


def test_a_region_given_with_a_loopback_endpoint_is_kept(dynamodb_url):
    """The local stack's tables are in us-east-1: another region asked for finds none of them."""
    env = environment(AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url, AWS_REGION="eu-west-1")
    assert_one_line_error(run(COMMANDS["create"], env), "table ProjectsTable not found")
