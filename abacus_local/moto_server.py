"""The local stack's DynamoDB: moto's server, with two of its costs that grow with the data or the
request count taken out, and nothing else changed.

- moto answers a Query on a table by sorting every item of the table, then keeping the
  partition asked for: a Query's cost grows with the whole table (the nightly job's, with every
  event of every user). DynamoDB reads the one partition; so does this, by giving moto's own
  query code a view of the table that holds only that partition. Index queries are left as they
  are (their partitions are not stored apart).
- moto lists its own package's folders on disk for every request, to route it; the list is
  read once.

And one thing DynamoDB guarantees and moto does not: a request sees an item whole. moto's
UpdateItem changes the stored item in place while another thread's GetItem may be reading it
("dictionary keys changed during iteration", a 500 that DynamoDB never gives). `one_request_at_a_time`
runs moto's DynamoDB requests one after another, here and in the tests' in-process moto (tests/conftest.py).

tests/integration/test_moto_server.py checks that patched and unpatched Queries answer the same.

Run: python -m abacus_local.moto_server -H 127.0.0.1 -p PORT (moto.server's arguments)
"""

import copy
import functools
import inspect
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from moto import backends
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main as moto_main

_original_query = Table.query
_original_modules = backends.list_of_moto_modules
_QUERY_SIGNATURE = inspect.signature(_original_query)
_original_call_action = DynamoHandler.call_action
_dynamodb_requests = threading.RLock()


@functools.wraps(_original_query)
def query_one_partition(self: Table, *args: Any, **kwargs: Any) -> Any:
    arguments = _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
    hash_key = arguments.get("hash_key")
    if arguments.get("index_name") is not None or hash_key is None:
        return _original_query(self, *args, **kwargs)
    partition = copy.copy(self)  # shares everything but `items`, which it narrows
    partition.items = defaultdict(dict)
    if hash_key in self.items:
        partition.items[hash_key] = self.items[hash_key]
    return _original_query(partition, *args, **kwargs)


@functools.cache
def moto_modules_once() -> Iterable[str]:
    return tuple(_original_modules())


@functools.wraps(_original_call_action)
def call_action_alone(self: DynamoHandler) -> Any:
    with _dynamodb_requests:
        return _original_call_action(self)


def one_request_at_a_time() -> None:
    """Makes this process's moto answer one DynamoDB request at a time (for good: it only removes a race)."""
    DynamoHandler.call_action = call_action_alone  # type: ignore[method-assign]


def install() -> Callable[[], None]:
    """Patches moto in this process; returns what undoes it."""
    Table.query = query_one_partition  # type: ignore[method-assign]
    backends.list_of_moto_modules = moto_modules_once

    def uninstall() -> None:
        Table.query = _original_query  # type: ignore[method-assign]
        backends.list_of_moto_modules = _original_modules

    return uninstall


if __name__ == "__main__":
    install()
    one_request_at_a_time()
    moto_main(sys.argv[1:])
