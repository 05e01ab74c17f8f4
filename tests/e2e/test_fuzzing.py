"""Schemathesis against the local stack's own OpenAPI document (GET /openapi.json): every
operation, with and without valid credentials. No answer may be a 5xx, and every answer must be
documented (status code, content type, body schema); invalid input must be refused with a 4xx.

Twice: its strategies, driven here per operation with and without credentials; and the
schemathesis command with its default phases (examples, coverage, fuzzing, stateful) and checks,
as a user would run it against the API, so that what its other phases find is caught too."""

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

from abacus_local.client import REQUEST_TIMEOUT_S, AbacusClient
from abacus_local.template import ROOT, Template
from tests.e2e.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN
from tests.e2e.fuzz_cases import EXISTING, EXISTING_WEBHOOK, with_admin_key, with_flags_key, with_project_data

EXAMPLES = int(os.environ.get("ABACUS_FUZZ_EXAMPLES", "40"))  # per operation, each way
STATUSES: dict[tuple, Counter] = defaultdict(Counter)
# API Gateway answers a method a path lacks with 404 (not 405), so unsupported_method does not
# apply. positive_data_acceptance is left out because some schema-valid bodies break rules JSON
# Schema cannot say (weights summing to 100, one control variant): those are 422s by design.
EXCLUDED = [unsupported_method, positive_data_acceptance]
PHASES_EXAMPLES = int(os.environ.get("ABACUS_FUZZ_PHASES_EXAMPLES", "10"))  # per operation and phase
# Schemathesis gives up after 10 s by default; a recompute may wait RECOMPUTE_WAIT_SECONDS.
CALL_TIMEOUT_S = REQUEST_TIMEOUT_S
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

OPERATIONS = sorted((r.method, r.path) for r in Template().routes() if r.path != "/openapi.json")


@pytest.fixture(scope="module")
def api_schema(stack_url, client):
    for key in EXISTING:
        spec = {
            "key": key,
            "name": key,
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
        }
        assert client.request("POST", "/experiments", spec, admin=True)[0] == 201
    assert client.request("POST", "/experiments/fuzz-running/launch", None, admin=True)[0] == 200
    status, webhook = client.request("POST", "/webhooks", {"url": "https://93.184.215.14/existing"}, admin=True)
    assert status == 201, webhook
    os.environ[EXISTING_WEBHOOK] = webhook["id"]  # where fuzz_cases, and the schemathesis command, read it
    yield schemathesis.openapi.from_url(stack_url + "/openapi.json")
    os.environ.pop(EXISTING_WEBHOOK, None)


@pytest.fixture(scope="module")
def client(stack_url):
    return AbacusClient(stack_url, admin_key=ADMIN_KEY, token=TOKEN)


def with_credentials(case) -> None:
    with_project_data(case)
    with_admin_key(case)
    with_flags_key(case)


@pytest.mark.parametrize("credentials", [True, False], ids=["with credentials", "without"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzzed_requests_get_documented_answers_and_no_5xx(api_schema, method, path, credentials):
    operation = api_schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @FUZZ_SETTINGS
    @given(case=cases)
    def fuzz(case):
        if credentials:
            with_credentials(case)
        response = case.call_and_validate(excluded_checks=EXCLUDED, timeout=CALL_TIMEOUT_S)
        STATUSES[(method, path, credentials)][response.status_code] += 1

    fuzz()


@pytest.fixture(scope="module", autouse=True)
def status_summary():
    """With ABACUS_FUZZ_SUMMARY set, the answers' status codes per operation go to that file."""
    yield
    if os.environ.get("ABACUS_FUZZ_SUMMARY"):
        lines = [
            f"{method} {path} {'with' if credentials else 'without'} credentials: {dict(sorted(counts.items()))}"
            for (method, path, credentials), counts in sorted(STATUSES.items())
        ]
        Path(os.environ["ABACUS_FUZZ_SUMMARY"]).write_text("\n".join(lines) + "\n")


def test_the_document_is_served_naming_its_server(stack_url):
    with urllib.request.urlopen(stack_url + "/openapi.json", timeout=REQUEST_TIMEOUT_S) as response:
        document = json.loads(response.read())
    assert document["servers"] == [{"url": stack_url}]


@pytest.mark.local_only  # Swagger UI is the local stack's page
def test_swagger_ui_is_served(stack_url):
    with urllib.request.urlopen(stack_url + "/docs", timeout=REQUEST_TIMEOUT_S) as response:
        page = response.read().decode()
    assert response.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page and '"title": "Abacus"' in page


def test_schemathesis_default_phases_find_nothing(api_schema, stack_url):
    """`schemathesis run` with every default phase and check (but the two excluded above)."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(ROOT / "tests" / "e2e" / "schemathesis.toml"),
        "run",
        f"{stack_url}/openapi.json",
        "--phases=examples,coverage,fuzzing,stateful",
        f"--max-examples={PHASES_EXAMPLES}",
        f"--exclude-checks={','.join(check.__name__ for check in EXCLUDED)}",
        "--workers=2",
        f"--request-timeout={CALL_TIMEOUT_S:g}",
        "--generation-database=none",
        "--no-color",
    ]
    environment = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "ABACUS_ADMIN_KEY": ADMIN_KEY,
        "ABACUS_FLAGS_KEY": FLAGS_KEY,
        "PYTHONPATH": str(ROOT),
    }
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, failures_first(finished.stdout) + finished.stderr[-2000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in finished.stdout or f"⏭  {phase}" in finished.stdout, finished.stdout[-3000:]


def failures_first(output: str) -> str:
    """The command's FAILURES section (each failure, its request and `st replay` id) ahead of its
    summary: CI keeps the start and the end of a long message, and the failures sit in its middle."""
    failures = output.partition("= FAILURES =")[2].partition("= WARNINGS =")[0]
    return f"FAILURES:{failures[:5000]}\n...\n{output[-1500:]}"
