"""Cold import time of each function's handler module: a fresh interpreter per run, timing only
the import (what Lambda's init phase adds to a cold start beyond the runtime itself).

The handler is imported from the `sam build` output by a bare interpreter (no site-packages) that
sees only the function, its layers and the runtime's SDK, as in Lambda; this venv's extra packages
(awscrt, for one, which botocore imports when present) would otherwise inflate the numbers.

Run after `sam build`: .venv/bin/python bench/cold_import.py [runs]
"""

import json
import os
import statistics
import subprocess
import sys

from abacus_local.template import ROOT, Template
from bench.built import BUILD, lambda_path, runtime_sdk_dir

PROBE = """
import importlib.util, json, sys, time
sys.path[:0] = sys.argv[2:]
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "abacus",
    }
    print(f"{'function':<18}{'median ms':>10}{'min ms':>9}{'max ms':>9}   ({runs} fresh interpreters each)")
    template, sdk = Template(), runtime_sdk_dir()
    for name, spec in sorted(template.functions().items()):
        handler = BUILD / name / f"{spec.module}.py"
        command = [sys.executable, "-S", "-B", "-c", PROBE, str(handler), *lambda_path(template, name, sdk)]
        times = []
        for _ in range(runs):
            out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
            times.append(json.loads(out.stdout.strip().splitlines()[-1])["ms"])
        print(f"{name:<18}{statistics.median(times):>10.0f}{min(times):>9.0f}{max(times):>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
