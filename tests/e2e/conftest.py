"""What the end-to-end tests run against: by default a local stack of their own (one per test
module), in its own process as `make dev` runs it; or, when the environment names one (as
`make e2e-aws` does through tests/e2e/deployed.py), a stack already running, deployed or local,
with a throwaway project's keys.

  ABACUS_E2E_API_URL           the API's base URL
  ABACUS_E2E_TOKEN, ABACUS_E2E_ADMIN_KEY, ABACUS_E2E_FLAGS_KEY
                               the project's token, admin key and flags key
  ABACUS_E2E_RESULTS_FUNCTION  the results function's alias ARN, or name, to invoke the nightly job (whose
                               worker the stack's queue runs: the tests wait for its snapshots)
  ABACUS_E2E_LAMBDA_ENDPOINT   where Lambda's Invoke API is (unset: AWS's own)
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from abacus.core import hashing
from abacus_local.client import AbacusClient, lambda_client
from abacus_local.stack import free_port
from abacus_local.template import ROOT

TARGET_URL = os.environ.get("ABACUS_E2E_API_URL")
# Fresh keys for each run, never a constant written in the source: Hypothesis mixes the project's
# string literals into what it generates, so the fuzzer "guessed" a fixed key and its requests
# without credentials were answered 200 (one run of the deployed tier).
TOKEN = os.environ.get("ABACUS_E2E_TOKEN") or f"phc_e2e_{secrets.token_hex(12)}"
ADMIN_KEY = os.environ.get("ABACUS_E2E_ADMIN_KEY") or f"abacus_e2e_{secrets.token_hex(12)}"
FLAGS_KEY = os.environ.get("ABACUS_E2E_FLAGS_KEY") or f"phs_e2e_{secrets.token_hex(12)}"


# {a local stack's URL: its AWS endpoint (the moto server)}: what a test reads the queues through.
AWS_ENDPOINTS: dict[str, str] = {}


@pytest.fixture(scope="module")
def stack_url() -> Iterator[str]:
    if TARGET_URL:
        yield TARGET_URL.rstrip("/")
        return
    port = free_port()
    env = os.environ | {
        "ABACUS_TOKEN": TOKEN,
        "ABACUS_ADMIN_KEY": ADMIN_KEY,
        "ABACUS_FLAGS_KEY": FLAGS_KEY,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "abacus_local", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    denials: list[str] = []
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), line
        AWS_ENDPOINTS[line.split()[1]] = line.split()[2]  # `serve` prints its moto server's URL too
        # The functions log to the stack's output: read it all, or a full pipe would stall them.
        reader = threading.Thread(target=collect_denials, args=(process.stdout, denials), daemon=True)
        reader.start()
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=20)
    reader.join(timeout=10)
    # Every function ran under its own IAM policy (abacus_local.iam): none may have been refused.
    assert denials == [], "calls the functions' policies in template.yaml do not allow:\n" + "".join(denials)


def collect_denials(output: Any, denials: list[str]) -> None:
    """Reads the stack's output to its end, keeping the lines that report a call IAM refused."""
    for line in output:
        if line.startswith("AccessDenied: "):
            denials.append(line)


@pytest.fixture
def client(stack_url: str) -> AbacusClient:
    return AbacusClient(stack_url, admin_key=ADMIN_KEY, token=TOKEN)


def invoke_nightly(url: str, fire_time: datetime, client: AbacusClient | None = None, *keys: str) -> Any:
    """Invokes the results function with the scheduled event, as EventBridge does at `fire_time`:
    it plans the night's runs and queues their units. With `client`, waits until the worker has
    stored the night's snapshot of each of `keys` (the experiments the test reads)."""
    event = json.loads((ROOT / "events" / "nightly.json").read_text()) | {"time": fire_time.isoformat()}
    function = os.environ.get("ABACUS_E2E_RESULTS_FUNCTION", "ResultsFunction")
    endpoint = os.environ.get("ABACUS_E2E_LAMBDA_ENDPOINT", None if TARGET_URL else url)
    answer = lambda_client(endpoint).invoke(FunctionName=function, Payload=json.dumps(event))
    payload = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, payload
    date = (fire_time.astimezone(UTC).date() - timedelta(days=1)).isoformat()
    for key in keys:
        assert client is not None, "a client reads the snapshots"
        wait_for_snapshot(client, key, date)
    return payload


def wait_for_snapshot(client: AbacusClient, key: str, date: str, timeout_s: float = 300) -> dict:
    """The snapshot of `date`, once the nightly job's worker has stored it."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = client.request("GET", f"/experiments/{key}/results?date={date}", admin=True)
        if status == 200:
            return body
        assert status == 404 and time.monotonic() < deadline, (status, body)
        time.sleep(0.2)


def launch_split(
    client: AbacusClient, key: str, split: list[tuple[str, int]], metric_event: str, **fields: Any
) -> None:
    """An experiment of these variants and weights, on `metric_event`, created and launched now."""
    variants = [{"key": variant, "weight": weight} for variant, weight in split]
    client.create_experiment(
        {"key": key, "name": key, "variants": variants, "primary_metric": {"event": metric_event}, **fields}
    )
    client.launch(key)


def people_who_would_switch(key: str, split: list[tuple[str, int]], prefix: str, count: int) -> list[tuple[str, str]]:
    """`count` people, (anonymous id, user id), whose two ids hash to different variants of `key`:
    unless joined into one person, each would switch variant at sign-in. As many start in each
    variant, taken in turn."""
    quota = -(-count // len(split))
    starting: dict[str, list[tuple[str, str]]] = {variant: [] for variant, _ in split}
    n = 0
    while any(len(found) < quota for found in starting.values()):
        anon, user = f"{prefix}-anon-{n}", f"{prefix}-user-{n}"
        first = hashing.pick_variant(key, anon, split)
        if first != hashing.pick_variant(key, user, split) and len(starting[first]) < quota:
            starting[first].append((anon, user))
        n += 1
    return [pair for turn in zip(*starting.values(), strict=True) for pair in turn][:count]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium (make test installs it), driven by Playwright: its own download is not reachable."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "make test installs Debian's chromium; run it so"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


# The console's browser tests: a fresh browser context (no cookie) per test, screenshots of the
# pages to .abacus/console/ (not committed), and signing in as a user does, with the keyboard.
SHOTS = ROOT / ".abacus" / "console"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in_with_the_keyboard(page: Any, stack_url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{stack_url}/console")
    page.get_by_label("Admin key").focus()
    page.keyboard.type(ADMIN_KEY)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{stack_url}/console")
