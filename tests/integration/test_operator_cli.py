"""The operator's command line (`python -m abacus`) as an operator runs it: a process of its own,
with only the environment given. Every failure is one line on stderr naming what is wrong, a
non-zero exit and no traceback; against the local stack (a DynamoDB endpoint on loopback) it needs
no region or credentials."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from abacus.storage.local_endpoint import LOCAL_CREDENTIALS
from abacus_local.dynamodb import create_tables
from abacus_local.event_sources import QueuePoller
from abacus_local.lambdas import LocalFunction, close_all
from abacus_local.queues import create_queues
from abacus_local.stack import free_port
from abacus_local.template import ROOT, Template
from tests.conftest import function_policies

COMMANDS = {
    "create": ["project", "create", "My shop"],
    "rotate": ["project", "rotate", "local", "--token"],
    "delete": ["project", "delete", "local", "--yes"],
    "move-keys": ["project", "move-keys"],
    "results": ["results", "hello", "--project", "local"],
}
TABLE_VARIABLES = (
    "PROJECTS_TABLE",
    "CREDENTIALS_TABLE",
    "EXPERIMENTS_TABLE",
    "ASSIGNMENTS_TABLE",
    "EVENTS_TABLE",
    "RESULTS_TABLE",
    "PERSONS_TABLE",
)


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


SEED = """
import sys
from datetime import UTC, datetime
from abacus.assignment import sticky
from abacus.experiments import definitions
from abacus import projects
from abacus.assignment.spec import AssignRequest
from abacus.experiments.spec import ExperimentCreate

now = datetime.now(UTC)
projects.create("Shop", project_id="cli", token="phc_cli", admin_key="abacus_cli", flags_key="phs_cli")
for key in sys.argv[1:]:
    spec = {"key": key, "name": key, "primary_metric": {"event": "purchase"},
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}]}
    definitions.create("cli", ExperimentCreate.model_validate(spec), now)
    definitions.apply("cli", key, "launch", now)
    for n in range(12):
        sticky.assign("cli", AssignRequest(token="phc_cli", distinct_id=f"user-{n}"), now)
"""


@pytest.fixture(scope="module")
def recompute_env(dynamodb_url) -> tuple[dict[str, str], dict[str, str]]:
    """The local stack's moto (DynamoDB and SQS) with the template's queues, two running
    experiments of project `cli`, and the environment `make dev` prints (the queue's URL in it)."""
    sqs = boto3.client(
        "sqs", region_name="us-east-1", endpoint_url=dynamodb_url, aws_access_key_id="x", aws_secret_access_key="x"
    )
    queues = create_queues(Template(), sqs, "us-east-1")
    env = environment(
        AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url,
        AWS_ENDPOINT_URL_SQS=dynamodb_url,
        NIGHTLY_QUEUE_URL=queues["NightlyWorkQueue"],
    )
    seeded = subprocess.run(
        [sys.executable, "-c", SEED, "waited", "late"],
        cwd=ROOT,
        env=env | {"AWS_REGION": "us-east-1", **LOCAL_CREDENTIALS},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    return env, queues


def run_the_worker(env: dict[str, str], queues: dict[str, str]) -> None:
    """NightlyWorkerFunction as the local stack runs it (its own process, its template settings),
    fed by its queue's event source mapping until the queue is empty."""
    template = Template()
    [mapping] = [m for m in template.queue_mappings() if m.function == "NightlyWorkerFunction"]
    spec = template.functions()["NightlyWorkerFunction"]
    endpoints = {name: env[name] for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS")}
    variables = {name: queues.get(value, value) for name, value in spec.environment.items()}
    settings = {
        **LOCAL_CREDENTIALS,
        **endpoints,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    policy = function_policies()["NightlyWorkerFunction"].to_json()  # under its own IAM policy, as deployed
    worker = LocalFunction(spec, "us-east-1", {**variables, **settings}, max_environments=1, policy=policy)
    sqs = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=env["AWS_ENDPOINT_URL_SQS"],
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    try:
        with QueuePoller(mapping, sqs, queues[mapping.queue], "us-east-1", worker.invoke) as poller:
            poller.wait_until_idle(timeout_s=300)
    finally:
        close_all([worker])


def test_results_recompute_waits_for_its_snapshot_showing_the_runs_progress(recompute_env):
    """`python -m abacus results KEY --project ID --recompute`: the worker has not run when the
    command starts, so it reports 0 of 16 shards done, then the shards as the worker does them, and
    prints the snapshot once stored."""
    env, queues = recompute_env
    command = [sys.executable, "-m", "abacus", "results", "waited", "--project", "cli", "--recompute"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert re.fullmatch(r"recomputing the snapshot of \d{4}-\d{2}-\d{2}: 0 of 16 shards done \(\d+ s\)\n", first), (
            first
        )
        run_the_worker(env, queues)
        stdout, rest = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, rest
    lines = rest.strip().splitlines()
    assert re.fullmatch(r"recomputing the snapshot of \S+: 16 of 16 shards done, stored \(\d+ s\)", lines[-1]), rest
    assert "Traceback" not in rest
    exposed = re.findall(r"^(control|b) +(\d+) ", stdout, re.MULTILINE)  # the report's table
    assert sum(int(count) for _, count in exposed) == 12 and len(exposed) == 2, stdout


def test_results_recompute_past_its_wait_says_so_in_one_line(recompute_env):
    env, _ = recompute_env
    waited = run(["results", "late", "--project", "cli", "--recompute", "--wait", "1.5"], env)
    assert waited.returncode == 1, waited.stdout
    error = waited.stderr.strip().splitlines()[-1]
    assert re.match(
        r"error: the snapshot of \d{4}-\d{2}-\d{2} is not stored after 1.5 s \(0 of 16 shards done\)", error
    )
    assert "--date" in error and "NightlyWorkDeadLetters" in error and "Traceback" not in waited.stderr
    without_queue = {name: value for name, value in env.items() if name != "NIGHTLY_QUEUE_URL"}
    refused = run(["results", "late", "--project", "cli", "--recompute"], without_queue)
    assert_one_line_error(refused, "no queue for the recompute's work: set NIGHTLY_QUEUE_URL")
    nothing = run(["results", "late", "--project", "cli", "--recompute", "--wait", "0"], env)
    assert nothing.returncode == 2 and "--wait: 0: a number of seconds above 0" in nothing.stderr
