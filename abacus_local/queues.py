"""The template's SQS queues, created on moto (the local stack's, or moto's in-process mock in the
tests) with their attributes as written: visibility timeout, retention, encryption and the
redrive policy to their dead-letter queue."""

import json
from typing import Any

from abacus_local.template import Template

ACCOUNT_ID = "123456789012"  # moto's account


def queue_arn(region: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"


def create_queues(
    template: Template, client: Any, region: str, visibility_timeout: int | None = None
) -> dict[str, str]:
    """Creates every AWS::SQS::Queue (dead-letter queues first); {logical id: queue URL}. Named by
    logical id, as the tables are. `visibility_timeout` overrides the template's (tests that
    watch a failed message come back)."""
    queues = template.of_type("AWS::SQS::Queue")
    targets = {
        _reference(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    urls: dict[str, str] = {}
    for name in sorted(queues, key=lambda n: n not in targets):
        properties = queues[name].get("Properties", {})
        attributes: dict[str, str] = {}
        for key, value in properties.items():
            if key == "RedrivePolicy":
                policy = {
                    "deadLetterTargetArn": queue_arn(region, _reference(value["deadLetterTargetArn"])),
                    "maxReceiveCount": int(value["maxReceiveCount"]),
                }
                attributes[key] = json.dumps(policy)
            elif key in {"VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled", "DelaySeconds"}:
                attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
        if visibility_timeout is not None:
            attributes["VisibilityTimeout"] = str(visibility_timeout)
        urls[name] = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return urls


def _reference(value: Any) -> str:
    """The logical id a `!GetAtt Name.Arn` points at."""
    return str(value["Fn::GetAtt"][0])


def redrive(client: Any, dead_letter_url: str, source_url: str) -> int:
    """Moves every message of a dead-letter queue back to its source queue, as SQS's redrive
    (`aws sqs start-message-move-task`, which moto lacks) does; how many were moved."""
    moved = 0
    while True:
        messages = client.receive_message(QueueUrl=dead_letter_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            client.send_message(QueueUrl=source_url, MessageBody=message["Body"])
            client.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
