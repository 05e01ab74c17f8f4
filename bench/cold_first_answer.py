"""The first answer of a cold Lambda environment on the local stack, in two checkouts side by side
(issue 33): before and after a change, run by run alternately, so that both see the same load.

For each checkout, in its own worker process (bench/first_answer_worker.py, run with that
checkout's cwd and PYTHONPATH: its own abacus_local, template.yaml, functions and layers), the
local stack's data is set up once (moto server, tables, project, a running experiment with
results, a console session); then each run starts fresh execution environments (a new
`python -m abacus_local.runtime` process, which imports the handler) and times
- `/flags/`: AssignFunction answering posthog-js's flags request for a new visitor (a real
  project token, the running experiment's variant in the answer);
- a console sign-in page (GET /console/sign-in), ResultsFunction;
- a console experiment page, signed in (GET /console/experiments/{key}), ResultsFunction;
each as its init (spawn to ready), its first request, its second request, and init + first.

In the same alternation, the cold import of each function's handler in a bare interpreter (no
site-packages; bench/cold_import.py's probe), each paired with the baseline timed just before it:
the cold import of `botocore.session` alone in a bare interpreter, with only the runtime's SDK on
its path. By default the handler is imported from the checkout's source tree, the interpreter
seeing only the function's code, its layers' source folders, the packages its layers'
requirements.lock pin (linked from this venv, less what the Lambda runtime provides) and the
runtime's SDK: no `sam build` needed, but every package has this venv's bytecode. With --built,
from each checkout's `sam build` output (`make build` in both first), as deployed: a layer built
without bytecode is compiled at every cold start, as in Lambda (/opt is read-only).

Both workers run under one interpreter made for the run: this venv's packages without its
`abacus-dev.pth`, which would put this repository's own layers on every process's path (a
checkout elsewhere would then find this one's modules wherever it lacks its own).

.venv/bin/python bench/cold_first_answer.py [--built] BEFORE_CHECKOUT AFTER_CHECKOUT [runs]
"""

import argparse
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from bench.built import RUNTIME_PROVIDED, runtime_sdk_dir
from bench.cold_import import TARGETS, AgainstBaseline, baseline_command, handler_command, header, probe_ms
from bench.cold_import_side_by_side import commands_of

WORKER = Path(__file__).resolve().parent / "first_answer_worker.py"
LABELS = ("before", "after")
ENVIRONMENTS = {
    "flags": "/flags/ (AssignFunction, posthog-js's request, a new visitor)",
    "sign-in": "GET /console/sign-in (ResultsFunction)",
    "experiment-page": "GET /console/experiments/{key}, signed in (ResultsFunction)",
}
PHASES = {"init_ms": "init", "first_ms": "first request", "second_ms": "second request", "cold_ms": "init + first"}
IMPORTED = ("AssignFunction", "IngestFunction", "ResultsFunction", "NightlyWorkerFunction")
WIDTH = 28  # of the import table's first column: "NightlyWorkerFunction before"
# {checkout: {command: each run's {"init_ms", "first_ms", "second_ms", "cold_ms"}}}
Environments = dict[str, dict[str, list[dict[str, float]]]]
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def order(run: int) -> tuple[str, ...]:
    """Who goes first in a run: each checkout in turn, so that neither always follows the other."""
    return LABELS if run % 2 == 0 else LABELS[::-1]


def pinned(lock: str) -> dict[str, str]:
    """{distribution: version} of a requirements.lock (uv's `name==version \\` lines)."""
    return dict(PINNED.findall(lock))


def top_level_names(files: Iterable[str]) -> set[str]:
    """The names a distribution installs at the top of site-packages (packages and modules), from
    its RECORD's paths: not its metadata, caches, or scripts outside site-packages."""
    names = set()
    for path in files:
        first = path.split("/", 1)[0]
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".data")):
            continue
        if "/" in path or first.endswith((".py", ".so")):
            names.add(first)
    return names


def layer_packages(locks: Iterable[Path], into: Path) -> Path:
    """A folder holding the packages the locks pin, linked from this venv, less what the Lambda
    runtime provides: what `sam build` puts beside the layers' code."""
    into.mkdir(parents=True, exist_ok=True)
    for lock in locks:
        for name, version in pinned(lock.read_text()).items():
            distribution = metadata.distribution(name)
            if distribution.version != version:
                print(f"warning: {lock} pins {name}=={version}, this venv has {distribution.version}", file=sys.stderr)
            for top in top_level_names(str(file) for file in distribution.files or []):
                if top in RUNTIME_PROVIDED or top.removesuffix(".py") in RUNTIME_PROVIDED:
                    continue
                link = into / top
                if not link.exists():
                    link.symlink_to(Path(str(distribution.locate_file(top))))
    return into


def bench_python(folder: Path) -> Path:
    """An interpreter with this venv's packages but not its abacus-dev.pth (this repository's
    folders on every path): each checkout's processes then find that checkout's code alone."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (folder / "lib" / version / "site-packages" / "venv-packages.pth").write_text(sysconfig.get_paths()["purelib"])
    return folder / "bin" / "python"


def compile_sources(checkout: Path) -> None:
    """Bytecode for the checkout's code, written before each run (a file edited since gets its
    own): the bare interpreter of the import probe writes none (-B) and would otherwise compile
    the module on every run. A file that does not compile is left to fail where it is imported."""
    command = [sys.executable, "-m", "compileall", "-q", "-x", "node_modules", "abacus_local", "functions", "layers"]
    subprocess.run(command, cwd=checkout, stdout=subprocess.DEVNULL, check=False)


class Worker:
    """bench/first_answer_worker.py in one checkout: its local stack set up, then one cold
    environment timed per `measure`."""

    SETUP_LIMIT_S = 900
    MEASURE_LIMIT_S = 600

    def __init__(self, label: str, checkout: Path, python: Path, log: Path):
        self.label, self.checkout, self.log = label, checkout, log
        answers, answers_write = os.pipe()
        layers = sorted(str(folder) for folder in (checkout / "layers").iterdir() if folder.is_dir())
        passed = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [str(python), str(WORKER), "--answers", str(answers_write)],
                cwd=checkout,
                env={**passed, "PYTHONPATH": os.pathsep.join([str(checkout), *layers])},
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(answers_write,),
                text=True,
            )
        os.close(answers_write)
        self.answers: IO[str] = os.fdopen(answers, "r")
        self.functions: dict[str, dict[str, Any]] = {}

    def wait_until_ready(self) -> None:
        ready = self._answer(self.SETUP_LIMIT_S)
        self.functions = ready["functions"]

    def measure(self, command: str) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self._answer(self.MEASURE_LIMIT_S)
        return {**answer, "cold_ms": answer["init_ms"] + answer["first_ms"]}

    def _answer(self, limit_s: float) -> dict[str, Any]:
        readable, _, _ = select.select([self.answers], [], [], limit_s)
        line = self.answers.readline() if readable else ""
        answer = json.loads(line) if line else {"error": f"no answer within {limit_s:.0f} s, or the worker ended"}
        if "error" in answer:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{self.label} ({self.checkout}): {answer['error']}\n--- {self.log} ends:\n{tail}")
        return answer

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the worker stops its stack and ends
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.answers.close()


def built_import_commands(checkout: Path) -> dict[str, list[str]]:
    """Each function's import probe on the checkout's `sam build` output (its own template says
    which layers)."""
    return {name: handler_command(command[0], command[1:]) for name, command in commands_of(checkout).items()}


def import_commands(worker: Worker, sdk: Path, packages: Path) -> dict[str, list[str]]:
    """Each function's import probe on the checkout's source: its code, its layers' source
    folders, the packages their locks pin, the runtime's SDK."""
    commands = {}
    folders: dict[tuple[Path, ...], Path] = {}
    for name in IMPORTED:
        handler = worker.functions[name]
        locks = tuple(lock for layer in handler["path"][1:] if (lock := Path(layer) / "requirements.lock").exists())
        if locks not in folders:
            folders[locks] = layer_packages(locks, packages / f"{worker.label}-{len(folders)}")
        commands[name] = handler_command(handler["handler"], [*handler["path"], folders[locks], sdk])
    return commands


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.0f} ({min(values):4.0f})"


def report(
    checkouts: dict[str, Path],
    runs: int,
    built: bool,
    environments: Environments,
    imports: dict[str, dict[str, list[float]]],
    baselines: dict[str, list[float]],
) -> str:
    lines = [
        f"Cold first answers on the local stack, {runs} runs, "
        + " and ".join(f"{label} ({path})" for label, path in checkouts.items())
        + " alternated run by run.",
        f"\n{'ms: median (min)':<44}{'before':>14}{'after':>14}{'after - before':>16}",
    ]
    for command, title in ENVIRONMENTS.items():
        lines.append(title)
        for phase, words in PHASES.items():
            taken = {label: [run[phase] for run in environments[label][command]] for label in LABELS}
            change = statistics.median(taken["after"]) - statistics.median(taken["before"])
            lines.append(f"  {words:<42}{cell(taken['before']):>14}{cell(taken['after']):>14}{change:>+16.0f}")
    every = [ms for function in IMPORTED for ms in baselines[function]]
    lines += [
        f"\nBaseline, the cold import of botocore.session alone (a bare interpreter, the runtime's SDK): "
        f"median {statistics.median(every):.0f} ms, min {min(every):.0f} ({len(every)} runs)",
        "\nCold import of each handler "
        + (
            "from the checkout's sam build output (a bare interpreter: the function, its layers, the runtime's SDK)"
            if built
            else "from the checkout's source tree (a bare interpreter: the function, its layers, "
            "their locked packages with this venv's bytecode, the runtime's SDK)"
        )
        + ", each run against the baseline timed just before it:",
        header(WIDTH),
    ]
    for function in IMPORTED:
        for label in LABELS:
            paired = AgainstBaseline(imports[label][function], baselines[function])
            lines.append(paired.line(f"{function} {label}", TARGETS.get(function), WIDTH))
    return "\n".join(lines)


def measure(
    runs: int, workers: dict[str, Worker], commands: dict[str, dict[str, list[str]]], sdk: Path, scratch: Path
) -> tuple[Environments, dict[str, dict[str, list[float]]], dict[str, list[float]]]:
    """Run by run, each checkout in turn: its cold environments, then each function's cold import
    just after a baseline."""
    environments: Environments = {label: {command: [] for command in ENVIRONMENTS} for label in LABELS}
    imports: dict[str, dict[str, list[float]]] = {label: {name: [] for name in IMPORTED} for label in LABELS}
    baselines: dict[str, list[float]] = {name: [] for name in IMPORTED}
    started = time.monotonic()
    for run in range(runs):
        for worker in workers.values():
            compile_sources(worker.checkout)
        for command in ENVIRONMENTS:
            for label in order(run):
                environments[label][command].append(workers[label].measure(command))
        for name in IMPORTED:
            baselines[name].append(probe_ms(baseline_command(sdk), scratch))
            for label in order(run):
                imports[label][name].append(probe_ms(commands[label][name], workers[label].checkout))
        print(f"run {run + 1}/{runs} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return environments, imports, baselines


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/cold_first_answer.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the checkout before the change")
    parser.add_argument("after", type=Path, help="the checkout after the change")
    parser.add_argument("runs", type=int, nargs="?", default=9)
    parser.add_argument("--built", action="store_true", help="cold imports from each checkout's sam build output")
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    started = time.monotonic()
    scratch, sdk = Path(tempfile.mkdtemp(prefix="cold-first-answer-")), runtime_sdk_dir()
    workers: dict[str, Worker] = {}
    try:
        python = bench_python(scratch / "python")
        for label, checkout in checkouts.items():
            compile_sources(checkout)
            workers[label] = Worker(label, checkout, python, scratch / f"{label}.log")
        for worker in workers.values():  # set up side by side: nothing is timed yet
            worker.wait_until_ready()
        print(f"set up in {time.monotonic() - started:.0f} s; logs in {scratch}", file=sys.stderr)
        commands = {
            label: built_import_commands(worker.checkout)
            if args.built
            else import_commands(worker, sdk, scratch / "packages")
            for label, worker in workers.items()
        }
        measured = measure(args.runs, workers, commands, sdk, scratch)
    finally:
        for worker in workers.values():
            worker.stop()
    print(report(checkouts, args.runs, args.built, *measured))
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    shutil.rmtree(scratch)
    shutil.rmtree(sdk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
