"""What every table model shares: the region, retries with backoff (botocore's standard mode), and
one botocore session per thread.

The endpoint is botocore's own: AWS_ENDPOINT_URL_DYNAMODB points it at the local stack's moto server.
"""

import json
import threading
import zlib
from collections.abc import Iterable
from typing import Any, cast

import botocore.session
import pynamodb.connection.base
from pynamodb.attributes import Attribute, BinaryAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from abacus.core.settings import settings

# PynamoDB makes a botocore session for each model's connection (per thread, as botocore's
# sessions are not safe to share between threads), and each new session loads DynamoDB's service
# model and endpoint rules again: a request touching five tables made five, about 35 ms each of
# the first request after a cold start (issue 33). Its connection module's get_session is the one
# seam it has: every table's connection takes this thread's one session instead.
_sessions = threading.local()


def _this_threads_session() -> botocore.session.Session:
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = botocore.session.get_session()
    return session


def forget_sessions() -> None:
    """The next connection makes a new session (after a SnapStart restore: new credentials)."""
    global _sessions
    _sessions = threading.local()


pynamodb.connection.base.get_session = _this_threads_session  # type: ignore[attr-defined,assignment]


class TableMeta:
    region = settings.region
    max_retry_attempts = 4
    connect_timeout_seconds = 5
    read_timeout_seconds = 10


def connection() -> Connection:
    """A connection with the tables' settings, for what PynamoDB does outside a model (transactions)."""
    return Connection(
        region=TableMeta.region,
        read_timeout_seconds=TableMeta.read_timeout_seconds,
        connect_timeout_seconds=TableMeta.connect_timeout_seconds,
        max_retry_attempts=TableMeta.max_retry_attempts,
    )


def nullable[T](attribute: Attribute[T]) -> Attribute[T | None]:
    """`attribute`, which may be absent from an item (null=True), typed so: PynamoDB's own types
    say every attribute always has a value."""
    attribute.null = True
    return cast(Attribute[T | None], attribute)


def error_code(error: PynamoDBException) -> str | None:
    """DynamoDB's error code behind a PynamoDB error, or None when there was no answer at all (a
    timeout: PynamoDB's own cause_response_code raises then, the cause having no response)."""
    response = getattr(error.cause, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def condition_failed(error: PynamoDBException) -> bool:
    """Whether a write failed on its condition (a transaction on an item's): the one failure that
    says something about what is stored, rather than about the request."""
    code = error_code(error)
    if code == "ConditionalCheckFailedException":
        return True
    reasons = getattr(error.cause, "cancellation_reasons", None) or []
    return code == "TransactionCanceledException" and any(
        reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons
    )


def error_message(error: PynamoDBException) -> str:
    response = getattr(error.cause, "response", None)
    return response.get("Error", {}).get("Message", "") if isinstance(response, dict) else ""


def delete_each[M: Model](model: type[M], items: Iterable[M]) -> int:
    """Deletes the items, 25 a BatchWriteItem (PynamoDB sends unprocessed ones again); how many."""
    deleted = 0
    with model.batch_write() as batch:
        for item in items:
            batch.delete(item)
            deleted += 1
    return deleted


class CompressedJSONAttribute(Attribute[Any]):
    """JSON, zlib-compressed into a binary attribute. posthog-js sends some forty properties with
    every event (1.8 KB of JSON); compressed, with the event's other attributes, the item stays
    under 1 KB, one write unit, where it would take three."""

    attr_type = BinaryAttribute.attr_type

    def serialize(self, value: Any) -> bytes:
        return zlib.compress(json.dumps(value, separators=(",", ":")).encode())

    def deserialize(self, value: bytes) -> Any:
        return json.loads(zlib.decompress(value))
