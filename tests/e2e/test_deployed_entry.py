"""`make e2e-aws`'s entry point: without a stack it says why and fails; against a local stack it
runs the tests with a throwaway project and deletes it (the whole selection runs in make
e2e-local; here a few tests, to keep the plumbing working)."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from abacus_local.template import ROOT

pytestmark = pytest.mark.local_only  # it starts stacks of its own


def test_without_a_stack_name_it_says_why_and_fails():
    environment = {key: value for key, value in os.environ.items() if key != "AWS_SAM_STACK_NAME"}
    make = shutil.which("make") or "make"
    finished = subprocess.run(
        [make, "-s", "e2e-aws"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode != 0
    assert "set AWS_SAM_STACK_NAME" in finished.stderr


def test_against_a_local_stack_through_the_same_entry_point():
    selection = "assign_ingest_nightly_results or errors_over_http or concurrent_requests"
    finished = subprocess.run(
        [sys.executable, "-m", "tests.e2e.deployed", "--local", "--", "-q", "-k", selection],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-2000:]
    assert re.search(r"\b8 passed", finished.stdout), finished.stdout[-2000:]
    created = re.search(r"throwaway project (\w+)", finished.stdout)
    assert created, finished.stdout[-2000:]
    deleted = re.search(rf"deleted project {created.group(1)}: (.*)", finished.stdout)
    assert deleted and "'experiments': 2" in deleted.group(1) and "'events': " in deleted.group(1), finished.stdout[
        -2000:
    ]
