"""Cold imports of AssignFunction's and IngestFunction's handlers in two checkouts, side by side: run
by run alternately, so that both see the same load (issue 29: a refactor must not slow them).

Each checkout must have been built (`make build`). The probe is bench/cold_import.py's: a bare
interpreter that sees only the built function, its layers and the runtime's SDK.

.venv/bin/python bench/cold_import_side_by_side.py BEFORE_CHECKOUT AFTER_CHECKOUT [runs]
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.cold_import import PROBE

FUNCTIONS = ("AssignFunction", "IngestFunction")
ENV = {"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
# Each checkout's own template and build say what its handler imports with (its layers' folders).
COMMANDS = """
import json, sys
from abacus_local.template import Template
from bench.built import BUILD, lambda_path, runtime_sdk_dir
template, sdk = Template(), runtime_sdk_dir()
print(json.dumps({
    name: [str(BUILD / name / f"{spec.module}.py"), *map(str, lambda_path(template, name, sdk))]
    for name, spec in template.functions().items()
}))
"""


def commands_of(checkout: Path) -> dict[str, list[str]]:
    env = ENV | {"PYTHONPATH": str(checkout)}
    listed = [sys.executable, "-c", COMMANDS]
    out = subprocess.run(listed, capture_output=True, text=True, check=True, cwd=checkout, env=env)
    return json.loads(out.stdout)


def import_ms(checkout: Path, command: list[str]) -> float:
    env = ENV | {"POWERTOOLS_SERVICE_NAME": "abacus"}
    probe = [sys.executable, "-S", "-B", "-c", PROBE, *command]
    out = subprocess.run(probe, capture_output=True, text=True, check=True, cwd=checkout, env=env)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["ms"])


def main() -> int:
    checkouts = {"before": Path(sys.argv[1]).resolve(), "after": Path(sys.argv[2]).resolve()}
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    commands = {label: commands_of(checkout) for label, checkout in checkouts.items()}
    for name in FUNCTIONS:
        times: dict[str, list[float]] = {label: [] for label in checkouts}
        for run in range(runs):
            for label in ("before", "after") if run % 2 == 0 else ("after", "before"):
                times[label].append(import_ms(checkouts[label], commands[label][name]))
        for label, taken in times.items():
            median, low, high = statistics.median(taken), min(taken), max(taken)
            print(f"{name:16} {label:6} median {median:4.0f} ms  min {low:4.0f}  max {high:4.0f}  ({runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
