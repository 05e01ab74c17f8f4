"""AlertsQueue (ALERTS_QUEUE_URL): follow-ups and webhook deliveries go in as JSON messages (the
nightly job's sender, abacus.nightly.work_queue); a failed delivery's next attempt is delayed by
setting its message's visibility timeout, which is how SQS backs off one message."""

from functools import cache
from typing import Any

import botocore.session

from abacus.core.settings import settings
from abacus.nightly import work_queue


@cache
def _client() -> Any:
    # botocore's client, not boto3's: boto3 would add about 30 ms (s3transfer, multiprocessing)
    # to the cold start of every function that imports this module (issue 33).
    return botocore.session.get_session().create_client("sqs", region_name=settings.region)


def send(bodies: list[dict[str, Any]]) -> None:
    work_queue.send_to(settings.alerts_queue_url, bodies)


def retry_after(receipt_handle: str, seconds: int) -> None:
    _client().change_message_visibility(
        QueueUrl=settings.alerts_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
    )
