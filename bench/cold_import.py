"""Cold import time of each function's handler module: a fresh interpreter per run, timing only
the import (what Lambda's init phase adds to a cold start beyond the runtime itself), against a
baseline timed in the same runs: the cold import of `botocore.session` alone, which every
function pays for DynamoDB anyway (issue 33). Absolute times swing with the machine's load; each
handler's import is paired with a baseline timed just before it, so "above baseline" and
"x baseline" compare the two under the same load. A second reference, the standard stack's floor
(bench/stack_floor/app.py: Powertools' Logger and validating resolver, pydantic, one PynamoDB
model, nothing of Abacus), shows how much of each import is Abacus's own.

The handler is imported from the `sam build` output by a bare interpreter (no site-packages) that
sees only the function, its layers and the runtime's SDK, as in Lambda; this venv's extra packages
(awscrt, for one, which botocore imports when present) would otherwise inflate the numbers.

Run after `sam build`: .venv/bin/python bench/cold_import.py [runs]
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROBE = """
import importlib.util, json, sys, time
sys.path[:0] = sys.argv[2:]
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""
# The baseline, in the same style: what importing botocore's session costs a bare interpreter.
BASELINE_MODULE = "botocore.session"
BASELINE_PROBE = """
import importlib, json, sys, time
sys.path[:0] = sys.argv[2:]
started = time.perf_counter()
importlib.import_module(sys.argv[1])
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""
STACK_FLOOR = "(standard stack floor)"
FLOOR_APP = Path(__file__).resolve().parent / "stack_floor" / "app.py"
ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "abacus",
}


@dataclass(frozen=True)
class Target:
    """Issue 33's target for a function's cold import, against the baseline."""

    words: str
    most_above_ms: float | None = None  # at most this many ms above the baseline
    most_times: float | None = None  # at most this many times the baseline

    def met(self, above_ms: float, times: float) -> bool | None:
        """Whether the median import meets it; None for a target that is no bound ("unchanged")."""
        if self.most_above_ms is not None:
            return above_ms <= self.most_above_ms
        if self.most_times is not None:
            return times <= self.most_times
        return None


TARGETS = {
    "AssignFunction": Target("<= baseline + 50 ms", most_above_ms=50),
    "IngestFunction": Target("<= baseline + 50 ms", most_above_ms=50),
    "ResultsFunction": Target("<= 2x baseline (console pages)", most_times=2),
    "NightlyWorkerFunction": Target("unchanged"),
}


@dataclass(frozen=True)
class AgainstBaseline:
    """A function's import times, each paired with the baseline timed next to it."""

    times: Sequence[float]
    baselines: Sequence[float]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.baselines) or not self.times:
            raise ValueError("each time needs its own baseline, and there must be some")

    @property
    def above(self) -> list[float]:
        return [time - baseline for time, baseline in zip(self.times, self.baselines, strict=True)]

    @property
    def ratios(self) -> list[float]:
        return [time / baseline for time, baseline in zip(self.times, self.baselines, strict=True)]

    def line(self, name: str, target: Target | None, width: int = 22) -> str:
        above, ratios = statistics.median(self.above), statistics.median(self.ratios)
        met = target.met(above, ratios) if target is not None else None
        verdict = "" if target is None else f"{target.words}{'' if met is None else (': met' if met else ': missed')}"
        return (
            f"{name:<{width}}{statistics.median(self.times):>7.0f}{min(self.times):>6.0f}{max(self.times):>6.0f}"
            f"{above:>+9.0f}{min(self.above):>+6.0f}{ratios:>8.2f}x{min(self.ratios):>6.2f}x   {verdict}"
        ).rstrip()


def header(width: int = 22) -> str:
    return (
        f"{'':<{width}}{'median':>7}{'min':>6}{'max':>6}{'above baseline':>15}{'x baseline':>15}   target (issue 33)\n"
        f"{'':<{width}}{'ms':>7}{'ms':>6}{'ms':>6}{'median':>9}{'min':>6}{'median':>9}{'min':>6}"
    )


def probe_ms(command: list[str], cwd: Path) -> float:
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=cwd, env=ENV)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["ms"])


def baseline_command(sdk: Path) -> list[str]:
    """A bare interpreter that imports botocore.session with only the runtime's SDK on its path."""
    return [sys.executable, "-S", "-B", "-c", BASELINE_PROBE, BASELINE_MODULE, str(sdk)]


def handler_command(handler: Path | str, path: Sequence[Path | str]) -> list[str]:
    """A bare interpreter that imports the handler file with `path` (the function's, in Lambda)."""
    return [sys.executable, "-S", "-B", "-c", PROBE, str(handler), *map(str, path)]


def main() -> int:
    from abacus_local.template import ROOT, Template
    from bench.built import BUILD, lambda_path, runtime_sdk_dir

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    template, sdk = Template(), runtime_sdk_dir()
    functions = sorted(template.functions().items())
    commands = {
        name: handler_command(BUILD / name / f"{spec.module}.py", lambda_path(template, name, sdk))
        for name, spec in functions
    }
    # The standard stack alone (Powertools' Logger and validating resolver, pydantic, PynamoDB),
    # with AssignFunction's layers: what any function built like Abacus's imports.
    commands[STACK_FLOOR] = handler_command(FLOOR_APP, lambda_path(template, "AssignFunction", sdk))
    times: dict[str, list[float]] = {name: [] for name in commands}
    baselines: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        # Run by run, each handler just after its own baseline: both see the same load.
        for name, command in commands.items():
            baselines[name].append(probe_ms(baseline_command(sdk), ROOT))
            times[name].append(probe_ms(command, ROOT))
    every_baseline = [ms for taken in baselines.values() for ms in taken]
    print(f"Cold import of each handler, {runs} fresh bare interpreters each, after `sam build`;")
    print(f"the baseline (import {BASELINE_MODULE} alone) timed just before each.\n")
    print(header())
    print(
        f"{'baseline':<22}{statistics.median(every_baseline):>7.0f}{min(every_baseline):>6.0f}"
        f"{max(every_baseline):>6.0f}   ({BASELINE_MODULE}, {len(every_baseline)} runs)"
    )
    for name in commands:
        print(AgainstBaseline(times[name], baselines[name]).line(name, TARGETS.get(name)))
    floor = statistics.median(AgainstBaseline(times[STACK_FLOOR], baselines[STACK_FLOOR]).above)
    print(f"\nAbove the standard stack's floor ({floor:+.0f} ms above the baseline, bench/stack_floor/app.py):")
    for name in [name for name in commands if name != STACK_FLOOR]:
        print(f"{name:<22}{statistics.median(AgainstBaseline(times[name], baselines[name]).above) - floor:>+7.0f} ms")
    shutil.rmtree(sdk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
