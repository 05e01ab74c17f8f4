"""The local stack in its own process, as `make dev` runs it, for the end-to-end tests."""

import json
import os
import subprocess
import sys
import threading
from datetime import datetime

import pytest

from abacus_local.client import AbacusClient, lambda_client
from abacus_local.stack import free_port
from abacus_local.template import ROOT

TOKEN, ADMIN_KEY = "phc_e2e_token", "abacus_e2e_admin"


@pytest.fixture(scope="module")
def stack_url():
    port = free_port()
    env = os.environ | {"ABACUS_TOKEN": TOKEN, "ABACUS_ADMIN_KEY": ADMIN_KEY, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "abacus_local", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), line
        # The functions log to the stack's output: read it all, or a full pipe would stall them.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def client(stack_url) -> AbacusClient:
    return AbacusClient(stack_url, admin_key=ADMIN_KEY, token=TOKEN)


def invoke_nightly(url: str, fire_time: datetime) -> dict:
    event = json.loads((ROOT / "events" / "nightly.json").read_text()) | {"time": fire_time.isoformat()}
    answer = lambda_client(url).invoke(FunctionName="ResultsFunction", Payload=json.dumps(event))
    assert "FunctionError" not in answer
    return json.loads(answer["Payload"].read())
