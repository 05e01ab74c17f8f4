"""Issue 33's import budgets: a handler imports only what its requests use. Each case imports one
function's handler in a fresh interpreter (its code and the project's layers on the path, tracing
off) and, where it says so, serves one request, then lists what was imported. scipy and numpy are
the stats layer's (most of a second of a cold start), jinja2 is the console's, the X-Ray SDK is
Powertools' Tracer's, boto3 (with s3transfer and multiprocessing) is what botocore's clients do
without. The timings are bench/cold_import.py's and bench/cold_first_answer.py's, not tests'."""

import json
import os
import subprocess
import sys

import pytest

from abacus_local.template import ROOT, Template

STATS = ("scipy", "numpy", "abacus.stats")
NOT_IN_APP_FUNCTIONS = (*STATS, "jinja2", "abacus.console", "aws_xray_sdk", "boto3")
NOT_ON_CONSOLE_PAGES = (*STATS, "aws_xray_sdk", "boto3")

PROBE = """
import importlib.util, json, sys
from abacus_local.lambdas import LocalContext
sys.path[:0] = json.loads(sys.argv[1])
spec = importlib.util.spec_from_file_location("handler", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
event = json.loads(sys.argv[3])
status = None
if event is not None:
    status = module.handler(event, LocalContext("budget", 512, 30, "us-east-1"))["statusCode"]
built = {}
for name in json.loads(sys.argv[4]):
    module_name, _, model = name.rpartition(".")
    if module_name in sys.modules:
        built[name] = getattr(sys.modules[module_name], model).__pydantic_complete__
print(json.dumps({"status": status, "modules": sorted(sys.modules), "built": built}))
"""
# The spec's models, which defer building their validators (experiments/metrics_spec.py, Strict).
DEFERRED = [
    "abacus.experiments.spec.ExperimentFields",
    "abacus.assignment.spec.AssignRequest",
    "abacus.ingestion.spec.EventBatch",
    "abacus.ingestion.spec.EventSpec",
]


def imported(function: str, event: dict | None = None) -> tuple[int | None, set[str]]:
    """What importing `function`'s handler (and serving `event`) imports: its status and modules."""
    status, modules, _ = probed(function, event)
    return status, modules


def probed(function: str, event: dict | None = None) -> tuple[int | None, set[str], dict[str, bool]]:
    """Importing `function`'s handler (and serving `event`): its status, the modules imported, and
    whether each of the DEFERRED models imported has built its validator."""
    spec = Template().functions()[function]
    path = [str(spec.code_dir), *(str(layer) for layer in spec.layers)]
    handler = spec.code_dir / f"{spec.module}.py"
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", PROBE, json.dumps(path), str(handler), json.dumps(event), json.dumps(DEFERRED)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return answer["status"], set(answer["modules"]), answer["built"]


def heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names if name in modules or any(m.startswith(f"{name}.") for m in modules))


def get(path: str) -> dict:
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "localhost", "x-forwarded-proto": "https"},
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "routeKey": f"GET {path}",
            "stage": "$default",
            "requestId": "budget",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("function", ["AssignFunction", "IngestFunction"])
def test_assign_and_ingest_import_no_statistics_no_console_no_xray_and_no_boto3(function):
    _, modules = imported(function)
    assert heavy(modules, NOT_IN_APP_FUNCTIONS) == []


def test_the_function_serving_the_console_imports_no_statistics_until_it_computes():
    """ResultsFunction serves every console page, the results API and the nightly planner; the
    nightly worker computes (abacus.nightly.computation) and the live check imports its test when
    it runs. A sign-in page is served without scipy, numpy, the X-Ray SDK or boto3."""
    _, at_import = imported("ResultsFunction")
    assert heavy(at_import, NOT_ON_CONSOLE_PAGES) == []
    status, after_a_page = imported("ResultsFunction", get("/console/sign-in"))
    assert status == 200
    assert heavy(after_a_page, NOT_ON_CONSOLE_PAGES) == []
    assert "jinja2" in after_a_page  # the page was rendered: the console's templates are its to load


def test_the_budget_sees_what_a_function_that_computes_imports():
    """The check itself: the nightly worker, which computes, is found importing the stats layer."""
    _, modules = imported("NightlyWorkerFunction")
    assert heavy(modules, STATS) == ["abacus.stats", "numpy", "scipy"]


@pytest.mark.parametrize(
    ("function", "validated_by_every_request"),
    [
        ("AssignFunction", ["abacus.experiments.spec.ExperimentFields", "abacus.assignment.spec.AssignRequest"]),
        ("IngestFunction", ["abacus.experiments.spec.ExperimentFields", *DEFERRED[2:]]),
    ],
)
def test_functions_build_at_init_the_validators_their_requests_use(function, validated_by_every_request):
    """Deferred to the first request, the build would land outside SnapStart's snapshot."""
    _, _, built = probed(function)
    assert {name: built.get(name) for name in validated_by_every_request} == dict.fromkeys(
        validated_by_every_request, True
    )


def test_a_console_page_does_not_build_the_experiment_spec():
    """ResultsFunction imports the spec for its routes' bodies; a sign-in page validates none."""
    status, _, built = probed("ResultsFunction", get("/console/sign-in"))
    assert status == 200
    assert built["abacus.experiments.spec.ExperimentFields"] is False
