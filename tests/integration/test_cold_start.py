"""assign and ingest start fast: importing their handlers loads neither scipy nor numpy."""

import json
import subprocess
import sys

import pytest

from abacus_local.template import ROOT, Template

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {"scipy", "numpy"})))
"""


@pytest.mark.parametrize("function", ["AssignFunction", "IngestFunction"])
def test_request_path_handlers_do_not_import_scipy_or_numpy(function):
    spec = Template().functions()[function]
    handler = spec.code_dir / f"{spec.module}.py"
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE, str(handler)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == []


def test_results_handler_does_load_the_stats_engine():
    spec = Template().functions()["ResultsFunction"]
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE, str(spec.code_dir / f"{spec.module}.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    assert "scipy" in json.loads(loaded.stdout.strip().splitlines()[-1])
