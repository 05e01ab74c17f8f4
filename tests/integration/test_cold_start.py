"""assign and ingest start fast: importing their handlers loads neither scipy nor numpy, nor the
console (Jinja2 and its pages)."""

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
heavy = {"scipy", "numpy", "jinja2"}
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in heavy or name == "abacus.console.pages")))
"""


@pytest.mark.parametrize("function", ["AssignFunction", "IngestFunction"])
def test_request_path_handlers_do_not_import_scipy_numpy_or_the_console(function):
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


def test_results_handler_does_load_the_stats_engine_and_the_console():
    spec = Template().functions()["ResultsFunction"]
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE, str(spec.code_dir / f"{spec.module}.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    loaded_modules = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert "scipy" in loaded_modules and "jinja2" in loaded_modules and "abacus.console.pages" in loaded_modules
