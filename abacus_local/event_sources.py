"""SQS event source mappings run as Lambda runs them: poll the queue, hand the function batches of
up to BatchSize records (the SQS event's shape), at most MaximumConcurrency invocations at once;
after an invocation, delete the records it did not report as failed (ReportBatchItemFailures), or
none when the invocation itself failed. A record not deleted comes back after the queue's
visibility timeout, and SQS moves it to the dead-letter queue after maxReceiveCount receives."""

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from abacus_local import iam
from abacus_local.queues import queue_arn
from abacus_local.template import QueueMapping

POLL_WAIT_SECONDS = 1  # long polling: SQS answers as soon as a message arrives


def sqs_event(messages: list[dict[str, Any]], region: str, queue_name: str) -> dict[str, Any]:
    """The event Lambda gives a function for these received messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn(region, queue_name),
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class QueuePoller:
    """Polls one queue for one function (`invoke(event)` returns the handler's result or raises
    when the invocation fails), in `maximum_concurrency` threads, until stopped."""

    def __init__(
        self,
        mapping: QueueMapping,
        client: Any,
        queue_url: str,
        region: str,
        invoke: Callable[[dict[str, Any]], Any],
        on_error: Callable[[Exception], None] = lambda error: None,
    ):
        self.mapping = mapping
        self.client = client
        self.queue_url = queue_url
        self.region = region
        self.invoke = invoke
        self.on_error = on_error
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._busy = 0
        self.invocations = 0

    def start(self) -> "QueuePoller":
        for number in range(self.mapping.maximum_concurrency):
            thread = threading.Thread(target=self._poll, name=f"esm-{self.mapping.function}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=POLL_WAIT_SECONDS + 30)

    def __enter__(self) -> "QueuePoller":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(POLL_WAIT_SECONDS)
            except Exception as error:  # noqa: BLE001 - the poller outlives one failed request, as Lambda's does
                self.on_error(error)
                self._stop.wait(0.5)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receives one batch and invokes the function with it; how many records it had."""
        with iam.acting_as(self.mapping.function):  # Lambda polls with the function's execution role
            answer = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.mapping.batch_size),
                WaitTimeSeconds=wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        # Received messages are in flight (not visible) until deleted, so `idle` sees them either way.
        with self._lock:
            self._busy += 1
        try:
            self._deliver(messages)
        finally:
            with self._lock:
                self._busy -= 1
        return len(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, self.region, self.mapping.queue)
        with self._lock:
            self.invocations += 1
        try:
            result = self.invoke(event)
        except Exception as error:  # noqa: BLE001 - a failed invocation: every record comes back
            self.on_error(error)
            return
        failed: set[str] = set()
        if self.mapping.report_batch_item_failures and isinstance(result, dict):
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            with iam.acting_as(self.mapping.function):
                self.client.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )

    def idle(self) -> bool:
        """No message waiting or in flight in the queue, and no batch being worked."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        with self._lock:
            busy = self._busy
        waiting = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
        return waiting == 0 and busy == 0

    def wait_until_idle(self, timeout_s: float) -> None:
        """Waits until the queue is drained (twice idle in a row: a batch's next page is sent
        before its message is deleted, so the queue is never empty between the two)."""
        deadline = time.monotonic() + timeout_s
        idle_in_a_row = 0
        while idle_in_a_row < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.mapping.queue} still has work after {timeout_s:.0f} s")
            idle_in_a_row = idle_in_a_row + 1 if self.idle() else 0
            time.sleep(0.05)
