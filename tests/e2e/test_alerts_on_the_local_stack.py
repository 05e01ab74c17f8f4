"""Alerts on the local stack, every function in its own process under its IAM policy: a webhook
receiver gets exactly one correctly signed alert per decision, across a rerun of the night, a
recompute and SQS delivering a follow-up twice."""

import json
import random
import time
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from typing import Any

import boto3
import pytest

from abacus.core import hashing
from abacus.storage.local_endpoint import LOCAL_CREDENTIALS
from abacus_local.client import lambda_client
from abacus_local.stack import REGION
from abacus_local.webhook_receiver import WebhookReceiver
from tests.e2e.conftest import AWS_ENDPOINTS, TARGET_URL, invoke_nightly, wait_for_snapshot

pytestmark = pytest.mark.skipif(bool(TARGET_URL), reason="a receiver on this machine: the local stack's only")
KEY = "alerted"
SPLIT = [("control", 50), ("one-page", 50)]


def wait_until_idle(url: str, timeout_s: float = 300) -> None:
    """Until every queue of the stack is empty and nothing is in flight, twice in a row (a worker
    sends its next message before deleting its own: the queue is never empty in between)."""
    sqs = boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=AWS_ENDPOINTS[url],
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    names: list[Any] = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    deadline, idle = time.monotonic() + timeout_s, 0
    while idle < 2:
        assert time.monotonic() < deadline, "the stack's queues still have work"
        counts: list[int] = [
            int(value)
            for queue in sqs.list_queues()["QueueUrls"]
            if not queue.endswith("DeadLetters")
            for value in sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"].values()
        ]
        waiting = sum(counts)
        idle = idle + 1 if waiting == 0 else 0
        time.sleep(0.5)


def a_day_of_a_clear_winner(client, first_day: datetime) -> None:
    rng = random.Random(3)
    events = []
    for n in range(300):
        distinct_id = f"{KEY}-{n}"
        variant = hashing.pick_variant(KEY, distinct_id, SPLIT)
        seen = first_day + timedelta(hours=1, seconds=n * 60)
        events.append(
            {
                "event": "$exposure",
                "distinct_id": distinct_id,
                "uuid": f"x-{distinct_id}",
                "timestamp": seen.isoformat(),
                "properties": {"experiment": KEY, "variant": variant},
            }
        )
        if rng.random() < (0.6 if variant == "one-page" else 0.1):
            events.append({"event": "purchase", "distinct_id": distinct_id, "uuid": f"p-{distinct_id}",
                           "timestamp": (seen + timedelta(minutes=3)).isoformat()})  # fmt: skip
    assert client.send_events(events)["rejected"] == []


def test_one_signed_alert_per_decision_across_reruns_a_recompute_and_a_redelivery(client, stack_url):
    with WebhookReceiver() as receiver:
        webhook = client.call("POST", "/webhooks", {"url": receiver.url, "kinds": ["decision"]}, admin=True)
        client.create_experiment(
            {
                "key": KEY,
                "name": "Alerted",
                "variants": [{"key": k, "weight": w} for k, w in SPLIT],
                "primary_metric": {"event": "purchase"},
                "minimum_detectable_effect": 0.5,
            }
        )
        first_day = datetime.combine(datetime.now(UTC).date() - timedelta(days=2), time_of_day(0), tzinfo=UTC)
        client.launch(KEY, started_at=first_day)
        a_day_of_a_clear_winner(client, first_day)
        night = first_day + timedelta(days=1, hours=3)
        invoke_nightly(stack_url, night, client, KEY)
        wait_until_idle(stack_url)
        assert [body["decision"] for body in receiver.alerts(webhook["secret"])] == ["ship:one-page"]
        invoke_nightly(stack_url, night, client, KEY)  # the night run again
        client.call("POST", f"/experiments/{KEY}/results", admin=True)  # a recompute
        date = (night.date() - timedelta(days=1)).isoformat()
        wait_for_snapshot(client, KEY, date)
        # SQS delivering the night's follow-up again: AutomationFunction invoked with it as Lambda would.
        follow_up = {"type": "snapshot", "project": "local", "experiment": KEY, "generation": 1, "date": date}
        record = {"messageId": "again", "receiptHandle": "again", "body": json.dumps(follow_up),
                  "attributes": {"ApproximateReceiveCount": "2"}, "messageAttributes": {}, "md5OfBody": "",
                  "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:AlertsQueue",
                  "awsRegion": REGION}  # fmt: skip
        answer = lambda_client(stack_url).invoke(
            FunctionName="AutomationFunction", Payload=json.dumps({"Records": [record]})
        )
        assert "FunctionError" not in answer and json.loads(answer["Payload"].read()) == {"batchItemFailures": []}
        wait_until_idle(stack_url)
        signed = receiver.alerts(webhook["secret"])
        assert len(receiver.posts) == len(signed) == 1, receiver.bodies()
    (alert,) = signed
    assert alert["kind"] == "decision" and alert["variant"] == "one-page"
    assert alert["report_url"] == f"{stack_url}/console/experiments/{KEY}"
    listed = client.call("GET", f"/experiments/{KEY}/alerts", admin=True)["alerts"]
    decision = next(a for a in listed if a["kind"] == "decision")
    assert decision["id"] == alert["id"] and decision["deliveries"][0]["status"] == "delivered"
