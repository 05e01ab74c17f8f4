"""The nightly job's queue (SQS, NIGHTLY_QUEUE_URL): units of work go in as JSON messages, ten
to a SendMessageBatch; NightlyWorkerFunction takes them through its event source mapping."""

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import boto3

from abacus.settings import settings

BATCH = 10  # SendMessageBatch's most entries
ATTEMPTS = 5


class NotSent(Exception):
    """SQS refused some messages however often they were sent again."""


@cache
def _client() -> Any:
    return boto3.client("sqs", region_name=settings.region)


def send(bodies: Sequence[dict[str, Any]], queue_url: str | None = None) -> None:
    """Sends every body; entries SQS fails are sent again (the whole batch's throttling and 5xx
    are botocore's retries). NotSent when some still fail: the caller's invocation fails, and is
    retried as a whole (a unit sent twice is harmless: abacus.nightly_runs)."""
    url = queue_url or settings.nightly_queue_url
    for start in range(0, len(bodies), BATCH):
        pending = {str(i): json.dumps(body) for i, body in enumerate(bodies[start : start + BATCH])}
        for _ in range(ATTEMPTS):
            entries = [{"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()]
            answer = _client().send_message_batch(QueueUrl=url, Entries=entries)
            pending = {failure["Id"]: pending[failure["Id"]] for failure in answer.get("Failed", [])}
            if not pending:
                break
        if pending:
            raise NotSent(f"{len(pending)} units of the nightly job could not be queued")
