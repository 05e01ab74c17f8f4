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
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def imported(function: str, event: dict | None = None) -> tuple[int | None, set[str]]:
    """What importing `function`'s handler (and serving `event`) imports: its status and modules."""
    spec = Template().functions()[function]
    path = [str(spec.code_dir), *(str(layer) for layer in spec.layers)]
    handler = spec.code_dir / f"{spec.module}.py"
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", PROBE, json.dumps(path), str(handler), json.dumps(event)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return answer["status"], set(answer["modules"])


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
