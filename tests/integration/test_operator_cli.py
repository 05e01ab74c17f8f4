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
    "project-list": ["project", "list"],
    "key-create": ["key", "create", "--project", "local", "--name", "Alice"],
    "key-list": ["key", "list", "--project", "local"],
    "key-revoke": ["key", "revoke", "--project", "local", "ak_12345678"],
    "experiment-list": ["experiment", "list", "--project", "local"],
    "experiment-create": ["experiment", "create", "--project", "local", "experiment.json"],
    "experiment-launch": ["experiment", "launch", "--project", "local", "hello"],
    "experiment-ship": ["experiment", "ship", "--project", "local", "hello", "--variant", "b"],
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


def test_projects_are_listed_a_page_at_a_time(dynamodb_url):
    env = environment(AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url)
    created = [json.loads(run(["project", "create", f"Listed {n}"], env).stdout)["project_id"] for n in range(3)]
    everything = json.loads(run(["project", "list"], env).stdout)
    assert everything["next"] is None
    listed = {project["project_id"]: project for project in everything["projects"]}
    assert {project_id: listed[project_id]["name"] for project_id in created} == {
        project_id: f"Listed {n}" for n, project_id in enumerate(created)
    }
    assert all(project["created_at"].startswith("20") for project in everything["projects"])
    # A page of one at a time, each going on from the one before: every project, once.
    paged, after = [], None
    while True:
        page = json.loads(run(["project", "list", "--limit", "1", *(["--after", after] if after else [])], env).stdout)
        paged += [project["project_id"] for project in page["projects"]]
        after = page["next"]
        if after is None:
            break
    assert sorted(paged) == sorted(listed)
    assert_one_line_error(run(["project", "list", "--limit", "0"], env), "limit: from 1 to 1000")


def test_named_admin_keys_are_issued_listed_and_revoked(dynamodb_url):
    env = environment(AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url)
    project_id = json.loads(run(["project", "create", "Keys"], env).stdout)["project_id"]
    created = run(["key", "create", "--project", project_id, "--name", "Alice Smith"], env)
    assert created.returncode == 0, created.stderr
    alice = json.loads(created.stdout)
    assert re.fullmatch(r"ak_[0-9a-f]{8}", alice["key_id"]) and alice["name"] == "Alice Smith"
    assert alice["admin_key"].startswith("abacus_") and "cannot show it again" in created.stderr
    listed = run(["key", "list", "--project", project_id], env)
    assert listed.returncode == 0 and alice["admin_key"] not in listed.stdout
    assert [(key["key_id"], key["name"]) for key in json.loads(listed.stdout)["admin_keys"]] == [
        ("admin", None),
        (alice["key_id"], "Alice Smith"),
    ]
    revoked = run(["key", "revoke", "--project", project_id, alice["key_id"]], env)
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked"]["key_id"] == alice["key_id"]
    again = run(["key", "revoke", "--project", project_id, alice["key_id"]], env)
    assert again.returncode == 2
    assert_one_line_error(again, f"key_id: project '{project_id}' has no admin key '{alice['key_id']}'")
    own = run(["key", "revoke", "--project", project_id, "admin"], env)
    assert own.returncode == 2 and "project rotate" in own.stderr
    assert_one_line_error(own, "key_id: 'admin' is the project's own admin key")
    unnamed = run(["key", "create", "--project", project_id, "--name", "x" * 65], env)
    assert unnamed.returncode == 2
    assert_one_line_error(unnamed, "name: 1 to 64 printable characters")
    nowhere = run(["key", "create", "--project", "nowhere", "--name", "Alice"], env)
    assert nowhere.returncode == 2
    assert_one_line_error(nowhere, "no project 'nowhere'")


EXPERIMENT = {
    "key": "cli-made",
    "name": "Made on the command line",
    "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
    "primary_metric": {"event": "purchase"},
}


def test_experiments_are_created_listed_and_moved_through_their_lifecycle(dynamodb_url, tmp_path):
    env = environment(AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url)
    project_id = json.loads(run(["project", "create", "Experiments"], env).stdout)["project_id"]
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(EXPERIMENT))
    created = run(["experiment", "create", "--project", project_id, str(path)], env)
    assert created.returncode == 0, created.stderr
    draft = json.loads(created.stdout)  # as POST /experiments answers it
    assert (draft["key"], draft["status"], draft["variants"][1]["key"]) == ("cli-made", "draft", "b")
    assert [(entry["action"], entry["by"]) for entry in draft["history"]] == [("create", "operator (command line)")]
    taken = run(["experiment", "create", "--project", project_id, str(path)], env)
    assert taken.returncode == 2
    assert_one_line_error(taken, "an experiment keyed 'cli-made' already exists")
    # From stdin too.
    piped = subprocess.run(
        [sys.executable, "-m", "abacus", "experiment", "create", "--project", project_id, "-", "--by", "Dana"],
        cwd=ROOT,
        env=env,
        input=json.dumps(EXPERIMENT | {"key": "from-stdin"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["history"][0]["by"] == "Dana (command line)"

    listed = run(["experiment", "list", "--project", project_id], env)
    assert [row["key"] for row in json.loads(listed.stdout)["experiments"]] == ["cli-made", "from-stdin"]
    launched = run(["experiment", "launch", "--project", project_id, "cli-made", "--by", "Dana"], env)
    assert launched.returncode == 0, launched.stderr
    assert json.loads(launched.stdout)["status"] == "running"
    assert json.loads(launched.stdout)["history"][-1]["by"] == "Dana (command line)"
    running = run(["experiment", "list", "--project", project_id, "--status", "running"], env)
    assert [row["key"] for row in json.loads(running.stdout)["experiments"]] == ["cli-made"]
    again = run(["experiment", "launch", "--project", project_id, "cli-made"], env)
    assert again.returncode == 2
    assert_one_line_error(again, "cannot launch a running experiment")
    wrong_variant = run(["experiment", "ship", "--project", project_id, "cli-made", "--variant", "c"], env)
    assert wrong_variant.returncode == 2
    assert_one_line_error(wrong_variant, "variant: 'c' is not one of")
    shipped = run(["experiment", "ship", "--project", project_id, "cli-made", "--variant", "b"], env)
    assert shipped.returncode == 0, shipped.stderr
    answer = json.loads(shipped.stdout)
    assert (answer["status"], answer["shipped_variant"], answer["history"][-1]["by"]) == (
        "complete",
        "b",
        "operator (command line)",
    )
    assert run(["experiment", "archive", "--project", project_id, "cli-made"], env).returncode == 0
    missing = run(["experiment", "stop", "--project", project_id, "no-such"], env)
    assert missing.returncode == 2
    assert_one_line_error(missing, "no experiment keyed 'no-such'")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (
            json.dumps(EXPERIMENT | {"variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 40}]}),
            "variants: weights must sum to 100, not 90",
        ),
        (json.dumps({key: value for key, value in EXPERIMENT.items() if key != "primary_metric"}), "primary_metric: "),
        (json.dumps(EXPERIMENT | {"colour": "blue"}), "colour: "),
        ('{"key": "nan", "minimum_detectable_effect": NaN}', "{file}: not valid JSON (NaN is not a JSON number"),
        ("{", "{file}: not valid JSON (Expecting property name"),
    ],
    ids=["weights", "no metric", "unknown field", "NaN", "not JSON"],
)
def test_an_experiment_file_is_checked_as_the_api_checks_its_body(dynamodb_url, tmp_path, written, expected):
    env = environment(AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url)
    project_id = json.loads(run(["project", "create", "Checked"], env).stdout)["project_id"]
    path = tmp_path / "experiment.json"
    path.write_text(written)
    refused = run(["experiment", "create", "--project", project_id, str(path)], env)
    assert refused.returncode == 2
    assert_one_line_error(refused, expected.format(file=path))
    listed = run(["experiment", "list", "--project", project_id], env)
    assert json.loads(listed.stdout)["experiments"] == []


def test_the_command_lines_statuses_and_actions_are_the_lifecycles():
    from abacus.__main__ import ACTIONS, STATUSES
    from abacus.experiments import lifecycle

    assert set(ACTIONS) == set(lifecycle.TRANSITIONS)
    assert set(STATUSES) == {lifecycle.DRAFT, lifecycle.RUNNING, lifecycle.COMPLETE, lifecycle.ARCHIVED}


def test_experiment_commands_name_what_is_wrong(dynamodb_url, tmp_path):
    env = environment(AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url)
    project_id = json.loads(run(["project", "create", "Wrong"], env).stdout)["project_id"]
    nowhere = run(["experiment", "list", "--project", "nowhere"], env)
    assert nowhere.returncode == 2
    assert_one_line_error(nowhere, "no project 'nowhere'")
    status = run(["experiment", "list", "--project", project_id, "--status", "live"], env)
    assert status.returncode == 2
    assert_one_line_error(status, "--status: 'live' is none of draft, running, complete, archived")
    no_file = run(["experiment", "create", "--project", project_id, str(tmp_path / "absent.json")], env)
    assert no_file.returncode == 2
    assert_one_line_error(no_file, f"{tmp_path / 'absent.json'}: No such file or directory")
    unnamed = run(["experiment", "launch", "--project", project_id, "x", "--by", "a\tb"], env)
    assert unnamed.returncode == 2
    assert_one_line_error(unnamed, "--by: 1 to 64 printable characters")


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
        sticky.assign("cli", AssignRequest(token="phc_cli", distinct_id=f"user-{n}", experiments=[key]), now)
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
