"""The README's quickstart works as written: its ```sh blocks, run with bash against a local stack
started as `make dev` starts one, with only what the quickstart tells a newcomer to set (the
`export` line `make dev` prints, and the variables the blocks read: ABACUS, TOKEN, ADMIN_KEY,
PROJECT). Every step must succeed (the blocks run under `set -euo pipefail`, curl with -f), and
the verdict step must print a verdict."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from abacus_local.stack import DEV_PROJECT_ID, free_port
from abacus_local.template import ROOT
from tests.e2e.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN
from tests.e2e.test_local_stack import banner_of_make_dev, without_aws_settings


def quickstart_blocks(readme: Path = ROOT / "README.md") -> list[str]:
    """The fenced ```sh blocks under the README's Quickstart heading, in order."""
    text = readme.read_text()
    start = re.search(r"^## Quickstart\b.*$", text, re.MULTILINE)
    assert start is not None, "the README has no Quickstart heading"
    end = re.search(r"^## ", text[start.end() :], re.MULTILINE)
    section = text[start.end() : start.end() + end.start() if end else None]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def test_the_quickstart_has_its_steps() -> None:
    blocks = quickstart_blocks()
    assert len(blocks) >= 2, blocks
    script = "\n".join(blocks)
    for step in ("/experiments", "/launch", "/assign", "/events", "/results", "/console", "python -m abacus"):
        assert step in script, step


def line_with(output: str, *words: str) -> str:
    """The first line of the output holding every one of `words`."""
    found = next((line for line in output.splitlines() if all(word in line for word in words)), None)
    assert found is not None, f"no line with {words} in:\n{output}"
    return found


def the_first_hours_mistakes_are_answered(output: str) -> None:
    """Issue 31: each mistake of the README's "first hour's mistakes" answered as it says."""
    assert line_with(output, "whole percentages", "send 34/33/33").endswith("-> HTTP 422")
    line_with(output, "warning: no `purchse` event received since the launch", "received: `purchase`")
    refused = json.loads(line_with(output, '"refused_exposures"', "-> HTTP").rsplit(" -> HTTP", 1)[0])
    assert refused["refused_exposures"] == 2, refused
    assert refused["refused_exposure_reasons"] == {"unknown_variant": 1, "unknown_experiment": 1}, refused
    assert line_with(output, "diluting them all", '"field": "experiments"').endswith("-> HTTP 422")
    assert line_with(output, "cannot change primary_metric of a running experiment").endswith("-> HTTP 409")
    assert " -> HTTP 204" in output.splitlines()  # the draft deleted
    taken = line_with(output, "belongs to an archived experiment until", '\\"replace_archived\\": true')
    assert taken.endswith("-> HTTP 409"), taken
    assert "running: ['new-checkout']" in output.splitlines(), output
    header = line_with(output, "date,experiment,metric").split(",")
    assert {"variant", "exposures", "relative_lift", "decision"} <= set(header), header
    line_with(output, "covers: data up to", "the day so far")


@pytest.mark.local_only  # it starts a local stack of its own, as `make dev` does
def test_the_readmes_quickstart_runs_as_written() -> None:
    port = free_port()
    keys = {"ABACUS_TOKEN": TOKEN, "ABACUS_ADMIN_KEY": ADMIN_KEY, "ABACUS_FLAGS_KEY": FLAGS_KEY}
    # The stack's functions import the package from the repository's layers: keep the caller's
    # PYTHONPATH (a worktree's layers first) for the stack and the operator's command line alike.
    clean = without_aws_settings() | {"POWERTOOLS_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "abacus_local", "dev", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=clean | keys, stdout=subprocess.PIPE, text=True)
    try:
        banner = banner_of_make_dev(process)
        export = next(line for line in banner.splitlines() if line.strip().startswith("export "))
        env = clean | dict(pair.split("=", 1) for pair in shlex.split(export)[1:])
        env |= {
            "ABACUS": f"http://127.0.0.1:{port}",
            "TOKEN": TOKEN,
            "ADMIN_KEY": ADMIN_KEY,
            "PROJECT": DEV_PROJECT_ID,
            # `python -m abacus` and `python3` are this venv's, as `make venv` makes them.
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        }
        script = "set -euo pipefail\n" + "\n".join(quickstart_blocks())
        ran = subprocess.run(
            ["/bin/bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert ran.returncode == 0, f"the quickstart failed:\n{ran.stdout}\n{ran.stderr}"
        verdict = re.search(r"^verdict: (\w+) - .+$", ran.stdout, re.MULTILINE)
        assert verdict is not None, ran.stdout
        assert verdict.group(1) in {"keep_running", "ship", "no_effect", "invalid", "held_back"}, verdict.group(0)
        assert re.search(r"exposed users purchased", ran.stdout), ran.stdout
        assert '"url": ' in ran.stdout, ran.stdout  # the report link
        the_first_hours_mistakes_are_answered(ran.stdout)
    finally:
        process.terminate()
        process.wait(timeout=20)
