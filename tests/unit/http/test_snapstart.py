"""SnapStart's after-restore hook (abacus.http.snapstart), called in-process as Lambda's runtime
calls it: through snapshot_restore_py's registry. A "restored environment" here is the process's
state set back to what it was at the "snapshot" (random's state, objects made before it), then the
hooks run."""

import copy
import importlib
import random
import re
import threading
from pathlib import Path

import pytest
import snapshot_restore_py  # type: ignore[import-untyped]
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from pynamodb.models import Model

import abacus.http.api  # noqa: F401 - registers the hook, as each public handler's import of it does
from abacus.core.cache import TtlCache
from abacus.http import snapstart
from abacus.http.rate_limit import RateLimiter

SHARED_LAYER = Path(__file__).resolve().parents[3] / "layers" / "shared"


def restore() -> None:
    """Runs every after-restore hook registered, in their order, as the runtime does after a restore."""
    for hook, args, kwargs in snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)


def draws() -> list[int]:
    return [random.getrandbits(64) for _ in range(8)]


def test_the_module_that_creates_the_app_registers_the_hook_once():
    hooks = [hook for hook, _, _ in snapshot_restore_py.get_after_restore()]
    assert hooks.count(snapstart.restored) == 1


def test_environments_restored_from_one_snapshot_draw_their_own_random_numbers():
    snapshot = random.getstate()
    # The premise: two environments resuming from one snapshot, left alone, draw the same numbers.
    random.setstate(snapshot)
    first = draws()
    random.setstate(snapshot)
    assert draws() == first

    environments = []
    for _ in range(2):
        random.setstate(snapshot)
        restore()
        environments.append(draws())
    assert environments[0] != environments[1]


def test_environments_restored_from_one_snapshot_pick_their_own_rate_limit_shards():
    """api.py makes its rate limiters at import, before the snapshot: a shard drawn then would be
    every restored environment's, all writing one counter key (the hot key the shards are for)."""
    made_at_import = [RateLimiter(10) for _ in range(32)]
    snapshot = random.getstate()
    environments = []
    for _ in range(2):
        random.setstate(snapshot)
        limiters = [copy.copy(limiter) for limiter in made_at_import]  # each environment's copy of the memory
        restore()
        environments.append([limiter.shard for limiter in limiters])
    assert environments[0] != environments[1]
    assert all(0 <= shard < RateLimiter(10).shards for shard in environments[0])


def test_a_restore_empties_a_cache():
    cache: TtlCache[str, int] = TtlCache(ttl_seconds=60)
    cache.put("definitions", 1)
    restore()
    assert len(cache) == 0 and cache.get("definitions", lambda: 2) == 2


def module_level_caches() -> list[tuple[str, str]]:
    """(module, name) of every module-level `name = TtlCache(...)` of the shared layer, read from its source."""
    found = []
    for path in sorted((SHARED_LAYER / "abacus").rglob("*.py")):
        module = ".".join(path.relative_to(SHARED_LAYER).with_suffix("").parts)
        for match in re.finditer(r"^(\w+)\s*(?::[^=\n]*)?=\s*TtlCache\(", path.read_text(), re.MULTILINE):
            found.append((module, match.group(1)))
    return found


def test_a_restore_empties_every_module_level_cache_of_the_layer(monkeypatch):
    caches = module_level_caches()
    assert ("abacus.http.api", "_tokens") in caches and ("abacus.experiments.definitions", "_definitions") in caches
    for module, name in caches:
        cache = getattr(importlib.import_module(module), name)
        monkeypatch.setattr(cache, "ttl_seconds", 60)  # the tests' ABACUS_CACHE_SECONDS=0 keeps nothing
        cache.put(("kept", "before", "the snapshot"), True)
        assert len(cache) == 1, (module, name)
    restore()
    assert {(module, name): len(getattr(importlib.import_module(module), name)) for module, name in caches} == {
        (module, name): 0 for module, name in caches
    }


def storage_models() -> list[type[Model]]:
    for path in sorted((SHARED_LAYER / "abacus" / "storage").glob("*.py")):
        importlib.import_module(f"abacus.storage.{path.stem}")
    return [model for model in snapstart._subclasses(Model) if model.__module__.startswith("abacus.storage.")]


def test_a_restore_gives_every_table_model_a_new_connection():
    models = storage_models()
    assert len(models) >= 15
    before = {model: model._get_connection() for model in models}
    client = before[models[0]].connection.client  # botocore's, with the credentials it resolved
    restore()
    after = {model: model._get_connection() for model in models}
    assert all(after[model] is not before[model] for model in models)
    assert after[models[0]].connection.client is not client
    # The botocore session the tables share (abacus.storage.base) goes too: it holds the credentials.
    assert after[models[0]].connection.session is not before[models[0]].connection.session


def test_every_table_shares_one_botocore_session_per_thread():
    """PynamoDB would make one per model's connection, each loading DynamoDB's service model anew
    (about 35 ms each of a cold start's first request): abacus.storage.base makes it one per thread."""
    models = storage_models()
    sessions = {id(model._get_connection().connection.session) for model in models}
    assert len(sessions) == 1

    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(id(models[0]._get_connection().connection.session)))
    thread.start()
    thread.join()
    assert other[0] not in sessions  # botocore's sessions are not shared between threads


# What makes an AWS client: boto3's, or botocore's own (the layer's modules use botocore's: boto3
# costs cold starts).
MAKES_A_CLIENT = re.compile(
    r"\bboto3\.(client|resource|Session|session\.Session|setup_default_session)\(|\.create_client\("
)


def client_modules() -> list[str]:
    """The layer's modules whose code (comments aside) makes an AWS client."""
    found = []
    for path in sorted((SHARED_LAYER / "abacus").rglob("*.py")):
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        if MAKES_A_CLIENT.search(code):
            found.append(".".join(path.relative_to(SHARED_LAYER).with_suffix("").parts))
    return found


def test_every_module_of_the_layer_that_makes_a_client_keeps_it_where_a_restore_drops_it():
    modules = client_modules()
    assert "abacus.nightly.work_queue" in modules and "abacus.alerts.queue" in modules
    for name in modules:
        keeper = getattr(importlib.import_module(name), snapstart.CLIENT_FUNCTION, None)
        assert hasattr(keeper, "cache_clear"), f"{name} makes a client: keep it in a functools.cache'd _client()"


def test_a_restore_gives_every_client_of_the_layer_anew():
    modules = [importlib.import_module(name) for name in client_modules()]
    before = [module._client() for module in modules]
    restore()
    after = [module._client() for module in modules]
    assert all(new is not old for new, old in zip(after, before, strict=True))


def test_a_restore_drops_boto3s_default_session():
    import boto3

    boto3.client("sqs")  # makes boto3's default session, and keeps it
    assert boto3.DEFAULT_SESSION is not None
    restore()
    assert boto3.DEFAULT_SESSION is None  # the next boto3.client() makes one


def test_a_restore_drops_powertools_parameter_providers_and_their_values():
    DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider()  # what the first get_secret makes
    restore()
    assert DEFAULT_PROVIDERS == {}


@pytest.fixture(autouse=True)
def _restore_random_state():
    """The hooks reseed the process's `random`: leave it as the test found it."""
    state = random.getstate()
    yield
    random.setstate(state)
