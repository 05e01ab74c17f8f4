"""`make lock`: every environment's dependencies, transitive ones included, pinned with hashes.

| lock | compiled from | installed by |
|---|---|---|
| requirements-dev.lock | requirements-dev.txt (and the layers' requirements) | `make venv` (uv pip sync) |
| requirements-uv.lock | requirements-uv.txt: uv alone, at the dev lock's version | `make venv`, first (pip) |
| layers/*/requirements.lock | layers/*/requirements.txt, at the dev lock's versions | its Makefile (sam build) |
| requirements-checkov.lock | requirements-checkov.txt | `make validate` (.venv-checkov) |

uv rather than pip-tools: uv resolves for a platform other than the one it runs on
(`--python-platform`), which the layers need (Lambda's CPython 3.13 on x86_64, manylinux wheels
only) whatever machine runs `make lock`, while pip-compile resolves for the interpreter that runs
it; and `uv pip sync` makes a venv exactly its lock (removing what the lock does not list),
downloading and installing in parallel. Every lock targets that one platform: Lambda's, which is
also CI's and the developers'.

The layers are compiled with the dev lock as constraints, so they pin the versions that the tests
ran against. Each lock records the sha256 of the requirements files it was compiled from, so
tests/integration/test_locks.py notices, without the network, a requirements file changed since.

Existing pins are kept unless a requirement now excludes them; `make lock UPGRADE=1` (this
script's `--upgrade`) takes the newest version allowed of everything.
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ["--python-version", "3.13", "--python-platform", "x86_64-manylinux_2_28"]
STAMP = "# Compiled from these files (sha256), as tests/integration/test_locks.py checks:"


@dataclass(frozen=True)
class Lock:
    source: str
    lock: str
    constraints: tuple[str, ...] = ()
    wheels_only: bool = False  # as the layers' builds install (pip --only-binary=:all:)


DEV = "requirements-dev.lock"
# In this order: the dev lock first, as the next three are constrained by it.
LOCKS = (
    Lock("requirements-dev.txt", DEV),
    Lock("requirements-uv.txt", "requirements-uv.lock", (DEV,)),
    Lock("layers/shared/requirements.txt", "layers/shared/requirements.lock", (DEV,), wheels_only=True),
    Lock("layers/stats/requirements.txt", "layers/stats/requirements.lock", (DEV,), wheels_only=True),
    Lock("requirements-checkov.txt", "requirements-checkov.lock"),
)


def inputs(source: str) -> list[str]:
    """The requirements file and those it includes (-r, -c), recursively, relative to ROOT."""
    found: list[str] = []
    pending = [ROOT / source]
    while pending:
        path = pending.pop(0).resolve()
        name = path.relative_to(ROOT).as_posix()
        if name in found:
            continue
        found.append(name)
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) == 2 and words[0] in {"-r", "--requirement", "-c", "--constraint"}:
                pending.append(path.parent / words[1])
    return found


def stamp(lock: Lock, path: Path) -> None:
    """Write the sha256 of the lock's inputs after uv's header."""
    lines = path.read_text().splitlines(keepends=True)
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    digests = [STAMP + "\n"]
    for name in inputs(lock.source):
        digests.append(f"#    {name} {hashlib.sha256((ROOT / name).read_bytes()).hexdigest()}\n")
    path.write_text("".join(lines[:header] + digests + lines[header:]))


def preferences(path: Path) -> tuple[str, bool]:
    """The lock's text for uv to keep its pins, less any merge conflict (whose packages uv resolves anew)."""
    kept, conflicted, inside = [], False, False
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith(("<<<<<<< ", "||||||| ", "=======", ">>>>>>> ")):
            conflicted = True
            inside = not line.startswith(">>>>>>> ")
        elif not inside:
            kept.append(line)
    return "".join(kept), conflicted


def compile_lock(uv: str, lock: Lock, upgrade: bool) -> None:
    """Compile into a copy of the lock (uv keeps the pins it finds there), replace the lock if it changed:
    an unchanged lock keeps its mtime, so make does not reinstall what it installs."""
    path = ROOT / lock.lock
    draft = path.with_name(path.name + ".draft")
    text, conflicted = preferences(path) if path.exists() else ("", False)
    command = [uv, "pip", "compile", "--quiet", "--generate-hashes", *TARGET]
    command += ["--custom-compile-command", "make lock", lock.source, "-o", draft.relative_to(ROOT).as_posix()]
    for constraint in lock.constraints:
        command += ["-c", constraint]
    if lock.wheels_only:
        command += ["--only-binary", ":all:"]
    if upgrade:
        command.append("--upgrade")
    try:
        draft.write_text(text)
        if subprocess.run(command, cwd=ROOT).returncode != 0:  # noqa: S603 (our own arguments)
            if not conflicted:
                raise SystemExit(f"uv could not compile {lock.lock}")
            # What the merge left of the lock did not parse: resolve it without its pins.
            print(f"{lock.lock}: merge conflict; compiling it anew", flush=True)
            draft.write_text("")
            subprocess.run(command, cwd=ROOT, check=True)  # noqa: S603 (our own arguments)
        stamp(lock, draft)
        changed = not path.exists() or draft.read_bytes() != path.read_bytes()
        print(f"{lock.lock} {'updated' if changed else 'unchanged'} <- {' '.join(inputs(lock.source))}", flush=True)
        if changed:
            draft.replace(path)
    finally:
        draft.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="newest allowed versions, not the pins kept")
    args = parser.parse_args()
    uv = Path(sys.executable).with_name("uv")
    uv_path = str(uv) if uv.exists() else shutil.which("uv")
    if uv_path is None:
        print("uv not found: run `make venv` first", file=sys.stderr)
        return 1
    for lock in LOCKS:
        compile_lock(uv_path, lock, args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
