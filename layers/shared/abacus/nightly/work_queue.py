"""The nightly job's queue (SQS, NIGHTLY_QUEUE_URL): units of work go in as JSON messages, ten
to a SendMessageBatch; NightlyWorkerFunction takes them through its event source mapping."""

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from abacus.core.errors import StorageUnavailable
from abacus.core.settings import settings

BATCH = 10  # SendMessageBatch's most entries
ATTEMPTS = 5


class NotSent(StorageUnavailable):
    """SQS refused some messages however often they were sent again (or refused the requests
    after botocore's retries). A recompute answers it as 503: nothing was lost, send it again."""


@cache
def _client() -> Any:
    # botocore's client, not boto3's: boto3 would add about 30 ms (s3transfer, multiprocessing)
    # to the cold start of every function that imports this module (issue 33).
    return botocore.session.get_session().create_client("sqs", region_name=settings.region)


def follow_up(body: dict[str, Any]) -> None:
    """Sends a stored snapshot's follow-up to AlertsQueue (ALERTS_QUEUE_URL): abacus.alerts takes it."""
    send_to(settings.alerts_queue_url, [body])


def send(bodies: Sequence[dict[str, Any]], queue_url: str | None = None) -> None:
    """Sends units of work to the nightly job's queue (or `queue_url`): send_to."""
    send_to(queue_url or settings.nightly_queue_url, bodies)


def send_to(url: str, bodies: Sequence[dict[str, Any]]) -> None:
    """Sends every body to the queue at `url`; entries SQS fails are sent again (the whole
    batch's throttling and 5xx are botocore's retries). NotSent when some still fail, and then
    some bodies may have been sent and others not: the caller sends them all again later (a unit sent twice is harmless:
    abacus.nightly.runs). The planner fails its invocation once every experiment was tried, and
    Lambda's retry carries on its runs; a worker fails its record, which SQS delivers again."""
    for start in range(0, len(bodies), BATCH):
        pending = {str(i): json.dumps(body) for i, body in enumerate(bodies[start : start + BATCH])}
        for _ in range(ATTEMPTS):
            entries = [{"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()]
            try:
                answer = _client().send_message_batch(QueueUrl=url, Entries=entries)
            except (BotoCoreError, ClientError) as error:
                if not _unavailable(error):
                    raise  # a request SQS would refuse again (access denied, no such queue): a bug
                raise NotSent(f"the nightly job's queue refused its units ({type(error).__name__})") from error
            pending = {failure["Id"]: pending[failure["Id"]] for failure in answer.get("Failed", [])}
            if not pending:
                break
        if pending:
            raise NotSent(f"{len(pending)} units of the nightly job could not be queued: send the request again")


def _unavailable(error: BotoCoreError | ClientError) -> bool:
    """Whether SQS was unavailable (no answer, throttling or a 5xx) once botocore's retries were spent."""
    if isinstance(error, BotoCoreError):
        return True
    answer = error.response
    throttled = answer.get("Error", {}).get("Code", "") in ("ThrottlingException", "RequestThrottled")
    return throttled or answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
