"""End to end over real HTTP: the local stack in its own process, as `make dev` runs it."""

import http.client
import json
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from abacus_local.client import REQUEST_TIMEOUT_S, AbacusClient
from abacus_local.stack import DEV_ADMIN_KEY, DEV_FLAGS_KEY, DEV_PROJECT_ID, DEV_TOKEN, free_port
from abacus_local.template import ROOT
from tests.e2e.conftest import TOKEN, invoke_nightly, wait_for_snapshot


def test_assign_ingest_nightly_results_over_http(client, stack_url):
    key = "e2e-flow"
    client.create_experiment(
        {
            "key": key,
            "name": "E2E",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "signup"},
        }
    )
    assert client.results(key)["status"] == "pending"
    client.launch(key)
    rng = random.Random(1)
    exposures, conversions, events = Counter[str](), Counter[str](), []
    for index in range(150):
        distinct_id = f"e2e user #{index} ü"
        variant = client.assign(distinct_id, [key])[key]
        assert client.assign(distinct_id, [key])[key] == variant  # sticky
        exposures[variant] += 1
        if rng.random() < 0.3:
            conversions[variant] += 1
            events.append({"event": "signup", "distinct_id": distinct_id, "uuid": f"s-{index}"})
            events.append({"event": "signup", "distinct_id": distinct_id, "uuid": f"s2-{index}"})  # counted once
    first = client.send_events(events)
    assert first == {
        "accepted": len(events),
        "duplicates": 0,
        "rejected": [],
        "refused_exposures": 0,
        "refused_exposure_reasons": {},
    }
    assert client.send_events(events)["duplicates"] == len(events)

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    summary = invoke_nightly(stack_url, tomorrow, client, key)
    assert summary["failed"] == 0 and summary["planned"] >= 1 and summary["units"] >= 16
    results = client.results(key)
    assert results["status"] == "ready"
    assert results["date"] == datetime.now(UTC).date().isoformat()
    got = {row["key"]: (row["exposures"], row["conversions"]) for row in results["variants"]}
    assert got == {variant: (exposures[variant], conversions[variant]) for variant in ("control", "b")}

    client.stop(key)
    assert client.assign("e2e user #1 ü", [key])[key] == "control"


@pytest.mark.parametrize(
    ("method", "path", "body", "admin", "status"),
    [
        ("POST", "/experiments", {"key": "x"}, True, 422),
        ("POST", "/experiments", {"key": "x"}, False, 401),
        ("GET", "/experiments/missing", None, True, 404),
        ("POST", "/assign", {"token": TOKEN}, False, 422),
        ("POST", "/events", {"token": "wrong", "events": [{}]}, False, 401),
        ("GET", "/no-such-route", None, False, 404),
    ],
)
def test_errors_over_http(client, method, path, body, admin, status):
    got, answer = client.request(method, path, body, admin=admin)
    assert got == status, answer


def test_unreadable_body_is_400_over_http(stack_url):
    request = urllib.request.Request(
        stack_url + "/events", data=b"\xff\xfe{", method="POST", headers={"content-type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S)
    assert error.value.code == 400
    assert json.loads(error.value.read())["error"]["field"] == "body"


@pytest.mark.local_only  # the demo starts a local stack of its own
def test_make_demo_prints_a_result_and_leaves_nothing_running():
    port = free_port()
    env = os.environ | {"ABACUS_PORT": str(port), "ABACUS_DEMO_USERS": "400"}
    env.pop("ABACUS_TOKEN", None)
    finished = subprocess.run(
        [sys.executable, "-m", "abacus_local", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Sample ratio check" in finished.stdout and "one-page" in finished.stdout
    assert "of them anonymous when exposed" in finished.stdout  # the sign-up half, counted as people
    assert (
        "The report page:" in finished.stdout and (ROOT / ".abacus" / "demo-report.html").read_text().count("<svg") == 3
    )
    assert "token phc_local_dev" in finished.stdout
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def without_aws_settings() -> dict[str, str]:
    """This process's environment without any AWS setting (region, credentials, profile, endpoint)."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "ABACUS_")) and name != "NIGHTLY_QUEUE_URL"
    }
    nothing = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    return kept | nothing | {"AWS_EC2_METADATA_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}


def banner_of_make_dev(process: subprocess.Popen[str]) -> str:
    """What `python -m abacus_local dev` prints before it serves, up to its last command."""
    assert process.stdout is not None
    lines: list[str] = []
    watchdog = threading.Timer(120, process.kill)  # a banner never printed ends the test, not the run
    watchdog.start()
    try:
        while not lines or f"python -m abacus results hello --project {DEV_PROJECT_ID} --recompute" not in lines[-1]:
            line = process.stdout.readline()
            assert line, "the stack stopped before its banner was printed: " + "".join(lines)
            lines.append(line)
    finally:
        watchdog.cancel()
    # The functions log to the stack's output: read it all, or a full pipe would stall them.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return "".join(lines)


INVOKE_WITH_BOTO3 = """import boto3, sys
answer = boto3.client("lambda").invoke(FunctionName="ResultsFunction", Payload=sys.stdin.read())
print(answer["Payload"].read().decode())"""


def python(arguments: list[str], env: dict[str, str], given: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, env=env, input=given, capture_output=True, text=True, timeout=120
    )


def printed_commands(banner: str) -> list[str]:
    """The commands `make dev` prints after its `export` line, in order, each with its
    continuation lines (indented further), as a reader pastes them one at a time."""
    lines = banner.splitlines()
    start = next(n for n, line in enumerate(lines) if line.strip().startswith("export ")) + 1
    commands: list[str] = []
    for line in lines[start:]:
        if not line.strip() or line.strip().startswith("#"):
            continue
        if line.startswith("    "):
            commands[-1] += "\n" + line
        else:
            commands.append(line.strip())
    return commands


def pasted_alone(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`command` run as pasted into a new terminal: a fresh bash, in the repository's folder."""
    return subprocess.run(["/bin/bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.local_only  # it starts a local stack of its own, as `make dev` does
def test_each_command_make_dev_prints_works_pasted_alone():
    """Every command `make dev` prints works pasted alone into a new shell, without its `export`
    line or any earlier command's variable (each runs in a fresh bash whose environment has no
    AWS setting): the curl commands create, launch, assign, send an event and read; the operator's
    command line lists and issues keys; the nightly job's invocation (tonight's run, which covers
    today) queues the units the stack's worker analyses; `results` prints the snapshot, and
    `--recompute` one of today. Its `export` line is all an AWS SDK needs besides."""
    if shutil.which("curl") is None:
        pytest.skip("the printed commands use curl, which is not installed")
    port = free_port()
    clean = without_aws_settings()
    command = [sys.executable, "-m", "abacus_local", "dev", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=clean, stdout=subprocess.PIPE, text=True)
    try:
        banner = banner_of_make_dev(process)
        for label, key in (("project token", DEV_TOKEN), ("admin key", DEV_ADMIN_KEY), ("flags key", DEV_FLAGS_KEY)):
            assert re.search(rf"^  {label} +{key}\b", banner, re.MULTILINE), (label, banner)
        commands = printed_commands(banner)
        assert not [line for line in commands if "$" in line.replace("$(date", "")], "a variable of another line"
        client = AbacusClient(f"http://127.0.0.1:{port}", admin_key=DEV_ADMIN_KEY, token=DEV_TOKEN)
        today = datetime.now(UTC).date()
        outputs: dict[str, str] = {}
        for printed in commands:
            done = pasted_alone(printed, clean)
            assert done.returncode == 0, f"{printed}\n{done.stdout}\n{done.stderr}"
            assert '"error"' not in done.stdout, f"{printed}\n{done.stdout}"
            outputs[printed] = done.stdout
            if "/invocations" in printed:  # tonight's run: its worker stores the snapshot of today
                summary = json.loads(done.stdout)
                assert summary["date"] in (today.isoformat(), datetime.now(UTC).date().isoformat()), summary
                assert summary | {"date": None} == {"date": None, "planned": 1, "units": 16, "failed": 0}, summary
                wait_for_snapshot(client, "hello", summary["date"])
            if printed.endswith("--recompute"):
                assert ", stored (" in done.stderr.splitlines()[-1], done.stderr
        by_step = {step: next(out for line, out in outputs.items() if step in line) for step in STEPS}
        assert json.loads(by_step["/launch"])["status"] == "running"
        assert json.loads(by_step["/assign"])["assignments"]["hello"] in ("control", "test")
        assert json.loads(by_step["/events"])["accepted"] == 1
        assert [flag["key"] for flag in json.loads(by_step["/flags/definitions"])["flags"]] == ["hello"]
        assert [row["key"] for row in json.loads(by_step["experiment list"])["experiments"]] == ["hello"]
        assert json.loads(by_step["key create"])["key_id"].startswith("ak_")
        printed_results = next(
            out for line, out in outputs.items() if line.endswith(f"results hello --project {DEV_PROJECT_ID}")
        )
        assert summary["date"] in printed_results, printed_results
        # The operator's commands take the stack's region whatever the shell sets.
        elsewhere = clean | {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
        listed = pasted_alone(next(line for line in commands if "experiment list" in line), elsewhere)
        assert listed.returncode == 0, listed.stderr

        # The `export` line: all boto3 (and the AWS CLI, botocore too) needs to reach the stack.
        export = next(line for line in banner.splitlines() if line.strip().startswith("export "))
        env = clean | dict(pair.split("=", 1) for pair in shlex.split(export)[1:])
        summary = python(["-c", INVOKE_WITH_BOTO3], env, given=json.dumps({"source": "nowhere"}))
        assert summary.returncode == 0 and "InvalidInvocation" in summary.stdout, summary.stdout + summary.stderr
        shown = python(["-m", "abacus", "results", "hello", "--project", DEV_PROJECT_ID], env)
        assert shown.returncode == 0 and today.isoformat() in shown.stdout, shown.stderr
    finally:
        process.terminate()
        process.wait(timeout=20)


# What each printed command is found by (a part of it), for the checks of its output.
STEPS = ("/launch", "/assign", "/events", "/flags/definitions", "experiment list", "key create")


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "PURGE", "OPTIONS", "PUT", "HEAD"])
def test_a_method_no_route_has_gets_api_gateways_404(stack_url, method):
    """API Gateway answers any method a path has no route for with 404 {"message": "Not Found"}."""
    host, port = urlsplit(stack_url).hostname, urlsplit(stack_url).port
    for path in ("/assign", "/experiments/some-key", "/openapi.json", "/nowhere"):
        connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_S)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 404, (method, path)
        assert body == (b"" if method == "HEAD" else b'{"message":"Not Found"}'), (method, path)
