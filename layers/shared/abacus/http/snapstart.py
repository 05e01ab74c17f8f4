"""Lambda SnapStart (template parameter SnapStart): what an execution environment restored from a
snapshot redoes before its first request.

With SnapStart, Lambda imports a function's handler once per published version, snapshots that
environment's memory, and resumes every new environment of the version from the snapshot. Whatever
the import left in memory is then shared by all of them, and dates from when the version was
published (docs/operations.md, "SnapStart and provisioned concurrency"). After each restore,
`restored` (registered with the runtime's snapshot_restore_py when this module is imported, which
abacus.http.api does for every public handler) therefore:

- reseeds `random` from the operating system's entropy: the environments would otherwise draw the
  same sequence (the rate limit's shard, the live counters' shards, backoff jitter), each writing
  the same DynamoDB keys at once. uuid4 and secrets read the kernel's generator at each call, and
  the import draws nothing (tests/integration/test_snapstart.py checks it);
- empties every TtlCache (abacus.core.cache): entries kept before the snapshot are as old as it;
- drops the AWS connections and clients made before the snapshot (PynamoDB models' connections, the
  clients the layer's modules keep in their `_client()`, boto3's default session, Powertools'
  parameter providers and the values they keep), so that the first request makes them anew, with
  this environment's credentials and network. A module that was never imported made nothing to
  drop: each is looked up in sys.modules, never imported here, which would add its cost to every
  cold start.

No before-snapshot hook: warming anything further (a DynamoDB client) would need credentials or the
network, which a snapshot must not keep. Without SnapStart (the worker, the automation function,
the local stack) Lambda never calls `restored`.
"""

import random
import sys
from typing import Any

from snapshot_restore_py import register_after_restore  # type: ignore[import-untyped]

from abacus.core.cache import clear_every_cache

# Where a module of the layer keeps its AWS client: a functools.cache'd function of this name
# (tests/unit/http/test_snapstart.py fails for a module that makes a client and keeps it elsewhere).
CLIENT_FUNCTION = "_client"


def restored() -> None:
    """Makes this environment its own after a restore (the module's docstring says what and why)."""
    random.seed()  # from os.urandom, read now: each restored environment gets its own
    clear_every_cache()
    drop_connections()


def drop_connections() -> None:
    """Every AWS connection, client and session made so far goes; the next use makes a new one."""
    if (models := _loaded("pynamodb.models")) is not None:
        for model in _subclasses(models.Model):
            model._connection = None  # PynamoDB's cache of the model's TableConnection
    if (tables := _loaded("abacus.storage.base")) is not None:
        tables.forget_sessions()  # the botocore session every table's connection shares
    for name, module in list(sys.modules.items()):
        client: Any = getattr(module, CLIENT_FUNCTION, None) if name.startswith("abacus.") else None
        if hasattr(client, "cache_clear"):
            client.cache_clear()
    if (boto3 := _loaded("boto3")) is not None:
        boto3.DEFAULT_SESSION = None  # boto3.client() makes the next one (setup_default_session)
    if (parameters := _loaded("aws_lambda_powertools.utilities.parameters")) is not None:
        parameters.clear_caches()  # the providers (their clients) and the values they keep


def _loaded(name: str) -> Any:
    """The module `name` if something imported it, else None (never importing it)."""
    return sys.modules.get(name)


def _subclasses(root: Any) -> list[Any]:
    """`root` and every class derived from it, however indirectly."""
    found, pending = [], [root]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


register_after_restore(restored)  # once: this module's import
