"""The import contracts of pyproject.toml's [tool.importlinter] (make lint runs them with
lint-imports): each is a test here, and each is shown to break when an import it forbids appears."""

import copy
import re
import tomllib
from functools import cache
from pathlib import Path

import grimp
import pytest
from importlinter.configuration import configure
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract

configure()  # import-linter's own settings (its timer, its readers), as lint-imports sets them

ROOT = Path(__file__).resolve().parents[2]
TYPES: dict[str, type[Contract]] = {
    "layers": LayersContract,
    "forbidden": ForbiddenContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}
# Per contract, an import it must refuse: (importer, imported), both real modules.
BREAKING = {
    "floors": ("abacus.experiments.lifecycle", "abacus.nightly.runs"),
    "core": ("abacus.core.keys", "abacus.storage.base"),
    "stats": ("abacus.stats.srm", "abacus.experiments.spec"),
    "storage": ("abacus.storage.events", "abacus.ingestion.attribution"),
    "domain": ("abacus.nightly.runs", "abacus.http.api"),
    "pure": ("abacus.nightly.sums", "abacus.storage.assignments"),
    "acyclic": ("abacus.core.documents", "abacus.core.errors"),  # errors imports documents
}


def _settings() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["tool"]["importlinter"]


@cache
def _graph() -> grimp.ImportGraph:
    settings = _settings()
    return grimp.build_graph(*settings["root_packages"], include_external_packages=False)


def _contract(contract: dict) -> Contract:
    options = {key: value for key, value in contract.items() if key not in ("id", "name", "type")}
    session = {"root_packages": _settings()["root_packages"]}
    return TYPES[contract["type"]](name=contract["name"], session_options=session, contract_options=options)


CONTRACTS = {contract["id"]: contract for contract in _settings()["contracts"]}


def test_every_contract_has_an_import_that_breaks_it():
    assert set(BREAKING) == set(CONTRACTS)


@pytest.mark.parametrize("contract_id", sorted(CONTRACTS))
def test_the_contract_is_kept(contract_id):
    check = _contract(CONTRACTS[contract_id]).check(_graph(), verbose=False)
    assert check.kept, f"{CONTRACTS[contract_id]['name']}: broken, run lint-imports for the imports that break it"


@pytest.mark.parametrize("contract_id", sorted(CONTRACTS))
def test_the_contract_breaks_when_a_forbidden_import_appears(contract_id):
    importer, imported = BREAKING[contract_id]
    graph = copy.deepcopy(_graph())
    assert importer in graph.modules and imported in graph.modules
    assert not graph.direct_import_exists(importer=importer, imported=imported)
    graph.add_import(importer=importer, imported=imported)
    assert not _contract(CONTRACTS[contract_id]).check(graph, verbose=False).kept


def test_every_package_init_holds_only_its_docstring():
    """Importing a package imports nothing else (cold starts), and says what it owns and may import."""
    for init in sorted((ROOT / "layers").glob("*/abacus/**/__init__.py")):
        source = init.read_text()
        assert source.lstrip().startswith('"""'), f"{init}: no docstring"
        assert "import " not in source.split('"""', 2)[2], f"{init}: holds more than its docstring"
        assert "May import" in source, f"{init}: does not say which packages it may import"


PACKAGES = [
    "core",
    "http",
    "experiments",
    "assignment",
    "identity",
    "ingestion",
    "posthog",
    "nightly",
    "results",
    "alerts",
    "console",
    "storage",
]


@pytest.mark.parametrize("package", [*PACKAGES, "stats"])
def test_a_package_imports_only_what_its_docstring_says_it_may(package):
    """The docstring's "May import: ..." (up to its first full stop) names every package of Abacus
    the package imports, so that what a newcomer reads there is true."""
    (init,) = (ROOT / "layers").glob(f"*/abacus/{package}/__init__.py")
    said = init.read_text().split("May import:", 1)[1].split(".", 1)[0]
    allowed = {name for name in [*PACKAGES, "stats", "routes", "projects"] if re.search(rf"\b{name}\b", said)}
    graph = _graph()
    imported = {
        found.split(".")[1]
        for module in graph.find_descendants(f"abacus.{package}") | {f"abacus.{package}"}
        for found in graph.find_modules_directly_imported_by(module)
    } - {package}
    assert imported <= allowed, (
        f"abacus.{package} imports {sorted(imported - allowed)}, which its docstring does not name"
    )
