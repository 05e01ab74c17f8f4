"""The locks (`make lock`, tools/lock.py): every requirements file is compiled into a lock that is
up to date, whose pins satisfy it and carry hashes; the layers deploy the versions tested here.

No network: each lock records the sha256 of the files it was compiled from, and these tests
recompute them, so a requirements file edited without `make lock` fails here, on any day.
"""

import hashlib
import json
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from abacus_local.template import ROOT

REQUIREMENTS = sorted([*ROOT.glob("requirements*.txt"), *ROOT.glob("layers/*/requirements.txt")])
LOCKS = sorted([*ROOT.glob("requirements*.lock"), *ROOT.glob("layers/*/requirements.lock")])
DEV_LOCK = ROOT / "requirements-dev.lock"
# Locks whose every pin must be the dev lock's: what is deployed, and the uv that `make venv` installs.
SAME_AS_DEV = [ROOT / "layers/shared/requirements.lock", ROOT / "layers/stats/requirements.lock"]
SAME_AS_DEV += [ROOT / "requirements-uv.lock"]
# Every lock is resolved for Lambda's python3.13 on x86_64 Linux: markers are evaluated there.
TARGET = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
STAMP = re.compile(r"^#\s+(?P<path>\S+) (?P<sha256>[0-9a-f]{64})$")
INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)\s*=?\s*(?P<path>\S+)$")


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def logical_lines(path: Path) -> list[str]:
    """The file's requirement lines, continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [re.sub(r"(^|\s)#.*$", "", line).strip() for line in text.splitlines()]
    return [line for line in lines if line]


def compiled_from(path: Path) -> list[Path]:
    """A requirements file and every file it includes (-r, -c), recursively."""
    found: list[Path] = []
    pending = [path.resolve()]
    while pending:
        current = pending.pop(0)
        if current not in found:
            found.append(current)
            for line in logical_lines(current):
                if match := INCLUDE.match(line):
                    pending.append((current.parent / match["path"]).resolve())
    return found


def direct_requirements(path: Path) -> list[Requirement]:
    return [
        Requirement(line)
        for source in compiled_from(path)
        for line in logical_lines(source)
        if not line.startswith("-")
    ]


def stamps(lock: Path) -> dict[str, str]:
    """{input file: sha256} as `make lock` wrote them in the lock's header."""
    header = []
    for line in lock.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    return {match["path"]: match["sha256"] for line in header if (match := STAMP.match(line))}


def pins(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    """{package: (version, hashes)} of a lock."""
    pinned: dict[str, tuple[Version, list[str]]] = {}
    for line in logical_lines(lock):
        requirement, *options = line.split(" --")
        hashes = [option.strip().removeprefix("hash=") for option in options if option.startswith("hash=")]
        parsed = Requirement(requirement)
        assert parsed.marker is None, f"{name(lock)}: {line}: a lock for one platform has no markers"
        (specifier,) = parsed.specifier
        assert specifier.operator == "==", f"{name(lock)}: {parsed} is not pinned"
        pinned[canonicalize_name(parsed.name)] = (Version(specifier.version), hashes)
    return pinned


def test_every_requirements_file_is_compiled_into_a_lock():
    assert LOCKS, "no lock: run `make lock`"
    compiled = {path for lock in LOCKS for path in stamps(lock)}
    missing = [name(path) for path in REQUIREMENTS if name(path) not in compiled]
    assert not missing, f"{missing} compiled into no lock: add them to tools/lock.py's LOCKS, then `make lock`"


@pytest.mark.parametrize("lock", LOCKS, ids=name)
def test_lock_was_compiled_from_the_requirements_as_they_are(lock):
    recorded = stamps(lock)
    assert recorded, f"{name(lock)} records no input: run `make lock`"
    source = ROOT / next(iter(recorded))
    assert list(recorded) == [name(path) for path in compiled_from(source)], "the inputs changed: run `make lock`"
    for path, sha256 in recorded.items():
        now = hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
        assert now == sha256, f"{path} changed since {name(lock)} was compiled: run `make lock`"


@pytest.mark.parametrize("lock", LOCKS, ids=name)
def test_lock_pins_every_requirement_as_required_with_hashes(lock):
    locked = pins(lock)
    assert locked, f"{name(lock)} pins nothing"
    source = ROOT / next(iter(stamps(lock)))
    for requirement in direct_requirements(source):
        if requirement.marker and not requirement.marker.evaluate(TARGET):
            continue
        package: str = canonicalize_name(requirement.name)
        assert package in locked, f"{requirement} is not in {name(lock)}: run `make lock`"
        version = locked[package][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name(lock)} pins {package}=={version}, outside {requirement}: run `make lock`"
        )
    unhashed = [package for package, (_, hashes) in locked.items() if not hashes]
    assert not unhashed, f"{name(lock)} pins {unhashed} without hashes"
    for package, (_, hashes) in locked.items():
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", value) for value in hashes), package


@pytest.mark.parametrize("lock", SAME_AS_DEV, ids=name)
def test_lock_pins_what_the_dev_environment_tests(lock):
    """The layers deploy exactly the versions the tests ran against (and uv is the dev lock's)."""
    dev = {package: version for package, (version, _) in pins(DEV_LOCK).items()}
    for package, (version, _) in pins(lock).items():
        assert package in dev, f"{name(lock)} pins {package}, which the dev environment lacks: run `make lock`"
        assert dev[package] == version, f"{name(lock)} pins {package}=={version}, the dev lock {dev[package]}"


def makefile_lines(makefile: Path) -> list[str]:
    return re.sub(r"\\\n", " ", makefile.read_text()).splitlines()


def test_every_install_is_from_a_lock_with_its_hashes_checked():
    npm_layers = [lock.parent / "Makefile" for lock in ROOT.glob("layers/*/package-lock.json")]
    for makefile in [ROOT / "Makefile", *ROOT.glob("layers/*/Makefile")]:
        if makefile in npm_layers:
            continue
        lines = makefile_lines(makefile)
        installs = [line for line in lines if re.search(r"pip (install|sync) ", line)]
        assert installs, name(makefile)
        for line in installs:
            assert "--require-hashes" in line and re.search(r"-r \S+\.lock|sync .* \S+\.lock$", line), line


@pytest.mark.parametrize("lock", sorted(ROOT.glob("layers/*/package-lock.json")), ids=name)
def test_every_npm_layer_installs_its_lock_with_integrity_checked(lock):
    """`npm ci` installs exactly package-lock.json and checks each package's integrity hash
    (`npm install` may re-resolve); no install script runs at build time."""
    lines = [line for line in makefile_lines(lock.parent / "Makefile") if not line.lstrip().startswith("#")]
    installs = [line for line in lines if re.search(r"\bnpm (ci|install|i|add|update)\b", line)]
    assert installs, name(lock.parent / "Makefile")
    for line in installs:
        assert re.search(r"\bnpm ci\b", line) and "--ignore-scripts" in line, line
    packages = json.loads(lock.read_text())["packages"]
    declared = json.loads((lock.parent / "package.json").read_text())["dependencies"]
    assert packages[""]["dependencies"] == declared, f"{name(lock)} is stale: run npm install there"
    for path, package in packages.items():
        if path:
            assert re.fullmatch(r"sha512-[A-Za-z0-9+/]+=*", package.get("integrity", "")), path
    for dependency, version in declared.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{dependency} is not pinned: {version}"
        assert packages[f"node_modules/{dependency}"]["version"] == version, dependency
