"""Alerts end to end on moto, the functions run as Lambda runs them (their IAM enforced): a
decision found by the nightly job is put once on the stack's bus (an EventBridge rule with an SQS
target receives it) and POSTed once, signed, to each webhook, whatever reruns, recomputes and
redeliveries follow; a receiver that fails three times still gets it, one that always fails ends
in the dead-letter queue."""

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from abacus.alerts import signing
from abacus.core import hashing
from abacus.core.settings import settings
from abacus_local.webhook_receiver import WebhookReceiver
from tests.conftest import answer, invoke, sample_event
from tests.integration.test_console import get as console_get
from tests.integration.test_console import session_cookie

KEY = "alerting"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
LAUNCHED = TODAY - timedelta(days=3)
NIGHT = TODAY  # the nightly job as it fires at midnight: yesterday's snapshot
SNAPSHOT_DATE = (TODAY - timedelta(days=1)).date().isoformat()


@contextmanager
def receiving(failures: int = 0) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(failures) as receiver:
        yield receiver


@pytest.fixture
def local_webhooks() -> Iterator[None]:
    """As the local stack allows: http://127.0.0.1 receivers (settings are frozen: set for the test)."""
    object.__setattr__(settings, "allow_local_webhooks", True)
    yield
    object.__setattr__(settings, "allow_local_webhooks", False)


def create_webhook(url: str, kinds: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url} | ({"kinds": kinds} if kinds else {})
    status, created = answer(invoke("ResultsFunction", sample_event("create_webhook", body=body)))
    assert status == 201, created
    return created


def a_winning_experiment(
    users: int = 200,
    rates: tuple[float, float] = (0.1, 0.6),
    launched: datetime = LAUNCHED,
    automation: dict[str, Any] | None = None,
) -> None:
    """An experiment launched `launched` whose treatment converts far more, its users exposed the
    day before NIGHT: the first night ships it."""
    body = json.loads(sample_event("create_experiment")["body"]) | {"key": KEY, "minimum_detectable_effect": 0.5}
    if automation is not None:
        body["automation"] = automation
    assert invoke("ResultsFunction", sample_event("create_experiment", body=body))["statusCode"] == 201
    launch = sample_event(
        "launch_experiment", body={"started_at": launched.isoformat()}, path=f"/experiments/{KEY}/launch"
    )
    launch["pathParameters"] = {"key": KEY}
    assert invoke("ResultsFunction", launch)["statusCode"] == 200
    rng = random.Random(7)
    events = []
    for n in range(users):
        distinct_id = f"u{n}"
        variant = hashing.pick_variant(KEY, distinct_id, [("control", 50), ("one-page", 50)])
        seen = NIGHT - timedelta(days=1) + timedelta(minutes=n)
        events.append(
            {
                "uuid": f"x-{n}",
                "event": "$exposure",
                "distinct_id": distinct_id,
                "timestamp": seen.isoformat(),
                "properties": {"experiment": KEY, "variant": variant},
            }
        )
        if rng.random() < rates[variant == "one-page"]:
            events.append({"uuid": f"p-{n}", "event": "purchase", "distinct_id": distinct_id,
                           "timestamp": (seen + timedelta(minutes=5)).isoformat()})  # fmt: skip
    for start in range(0, len(events), 500):
        sent = sample_event("post_events", body={"token": "phc_local_dev", "events": events[start : start + 500]})
        status, outcome = answer(invoke("IngestFunction", sent))
        assert status == 200 and outcome["rejected"] == [], outcome


def nightly(at: datetime = NIGHT) -> dict[str, Any]:
    scheduled = json.loads((sample_event.__globals__["EVENTS_DIR"] / "nightly.json").read_text())
    return invoke("ResultsFunction", scheduled | {"time": at.isoformat().replace("+00:00", "Z")})


def alerts_of(key: str = KEY) -> list[dict[str, Any]]:
    event = sample_event("get_experiment_alerts", path=f"/experiments/{key}/alerts")
    event["pathParameters"] = {"key": key}
    status, body = answer(invoke("ResultsFunction", event))
    assert status == 200, body
    return body["alerts"]


def rule_to_queue(kinds_detail_type: str) -> str:
    """An EventBridge rule on the alerts bus with an SQS target, as a user routes alerts; its queue's URL."""
    events, sqs = boto3.client("events", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="decisions-routed")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["abacus"], "detail-type": [kinds_detail_type]}
    events.put_rule(Name="decisions", EventBusName="AlertsBus", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="decisions", EventBusName="AlertsBus", Targets=[{"Id": "queue", "Arn": arn}])
    return url


def routed(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_a_decision_is_sent_once_to_the_bus_and_each_webhook_across_reruns_recomputes_and_redeliveries(
    project, local_webhooks
):
    decisions = rule_to_queue("Experiment decision reached")
    with receiving() as receiver:
        webhook = create_webhook(receiver.url, ["decision"])
        a_winning_experiment()
        nightly()
        nightly()  # the night run again
        recompute = sample_event("recompute_results", path=f"/experiments/{KEY}/results")
        recompute["pathParameters"] = {"key": KEY}
        assert invoke("ResultsFunction", recompute)["statusCode"] in (200, 202)
        # SQS delivers the last follow-up again.
        follow_up = {"type": "snapshot", "project": "test", "experiment": KEY, "generation": 1, "date": SNAPSHOT_DATE}
        boto3.client("sqs", region_name="us-east-1").send_message(
            QueueUrl=settings.alerts_queue_url, MessageBody=json.dumps(follow_up)
        )
        nightly()  # runs the queues again
        posts = [body for body in receiver.bodies() if body["kind"] == "decision"]
    assert len(posts) == 1, posts
    (alert,) = posts
    assert alert["decision"] == "ship:one-page" and alert["variant"] == "one-page"
    assert alert["experiment"] == KEY and alert["numbers"][1]["lift"] > 0 and "text" in alert
    headers, raw = receiver.posts[0]
    assert signing.verify(
        webhook["secret"], raw, headers[signing.SIGNATURE_HEADER], int(headers[signing.TIMESTAMP_HEADER]),
        now=alert["timestamp"],
    )  # fmt: skip
    assert not signing.verify(
        "whsec_wrong", raw, headers[signing.SIGNATURE_HEADER], alert["timestamp"], alert["timestamp"]
    )
    assert alert["timestamp"] == int(headers[signing.TIMESTAMP_HEADER])
    # The bus had it once too: a rule with an SQS target received it.
    received = routed(decisions)
    assert [event["detail"]["decision"] for event in received] == ["ship:one-page"]
    assert received[0]["detail"]["id"] == alert["id"]
    # The API lists it with its delivery.
    listed = [a for a in alerts_of() if a["kind"] == "decision"]
    assert len(listed) == 1 and listed[0]["published"] is True
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in listed[0]["deliveries"]] == [
        ("delivered", 1, 204)
    ]
    # ...and the console's Results page shows it, with its delivery.
    page = console_get(
        "console_experiment", session_cookie(), rawPath=f"/console/experiments/{KEY}", pathParameters={"key": KEY}
    )
    assert page["statusCode"] == 200
    alerts_section = page["body"].split('<ol id="alerts">', 1)[1].split("</ol>", 1)[0]
    assert "decision</strong> ship:one-page" in alerts_section
    assert "delivered</strong> after 1 attempt (last answer 204)" in alerts_section


def test_a_receiver_that_fails_three_times_still_gets_its_alert(project, local_webhooks):
    with receiving(failures=3) as receiver:
        create_webhook(receiver.url, ["decision"])
        a_winning_experiment()
        nightly()  # the deliveries' retries come back after their backoff (a second here), within the night's wait
        bodies = receiver.bodies()
    assert len(bodies) == 4 and len({body["id"] for body in bodies}) == 1
    assert len({body["timestamp"] for body in bodies}) >= 1  # each attempt signed anew
    (delivery,) = next(a for a in alerts_of() if a["kind"] == "decision")["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4


@pytest.mark.access_denied  # none expected; the marker only lets the test read the list itself
def test_a_receiver_that_always_fails_ends_in_the_dead_letter_queue(project, local_webhooks, iam_denials):
    from abacus.alerts.follow_up import MAX_ATTEMPTS

    with receiving(failures=10_000) as receiver:
        create_webhook(receiver.url, ["decision"])
        a_winning_experiment()
        nightly()
        attempts = len(receiver.posts)
    assert attempts == MAX_ATTEMPTS
    sqs = boto3.client("sqs", region_name="us-east-1")
    dead = sqs.get_queue_url(QueueName="AlertsDeadLetters")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(message["Body"])["type"] == "delivery"
    (delivery,) = next(a for a in alerts_of() if a["kind"] == "decision")["deliveries"]
    assert delivery["status"] == "failed" and delivery["attempts"] == MAX_ATTEMPTS
    assert "answered 500" in delivery["last_error"]
    assert delivery["last_status_code"] == 500
    assert iam_denials == []


def experiment() -> dict[str, Any]:
    event = sample_event("get_experiment", path=f"/experiments/{KEY}")
    event["pathParameters"] = {"key": KEY}
    return answer(invoke("ResultsFunction", event))[1]


def test_automatic_ship_waits_for_the_minimum_runtime_and_says_so_in_the_alert(project, local_webhooks):
    with receiving() as receiver:
        create_webhook(receiver.url)
        a_winning_experiment(automation={"ship": True})  # launched 3 days before the night: under 7
        nightly()
        alerts = {body["kind"]: body for body in receiver.bodies()}
    assert experiment()["status"] == "running"
    assert "automation" not in alerts
    decided = alerts["decision"]
    assert decided["automation"]["action"] is None
    assert "automation waiting for minimum runtime (3 of 7 days) to ship 'one-page'" in decided["text"]


def test_automatic_ship_after_the_minimum_runtime_is_recorded_and_alerted(project, local_webhooks):
    with receiving() as receiver:
        create_webhook(receiver.url)
        a_winning_experiment(launched=TODAY - timedelta(days=9), automation={"ship": True})
        nightly()
        alerts = {body["kind"]: body for body in receiver.bodies()}
    shipped = experiment()
    assert shipped["status"] == "complete" and shipped["shipped_variant"] == "one-page"
    entry = shipped["history"][-1]
    assert entry["action"] == "ship" and entry["by"] == "automation"
    assert entry["changes"]["rule"] == "ship" and entry["changes"]["snapshot"] == SNAPSHOT_DATE
    assert alerts["automation"]["decision"] == "ship:one-page"
    assert "shipped 'one-page' automatically" in alerts["automation"]["summary"]
    assert alerts["decision"]["automation"]["action"]["variant"] == "one-page"


def test_the_same_url_and_kinds_twice_is_refused_naming_the_webhook_there_is(project):
    first = create_webhook("https://93.184.215.14/hook", ["decision"])
    again = sample_event("create_webhook", body={"url": "https://93.184.215.14/hook", "kinds": ["decision"]})
    status, body = answer(invoke("ResultsFunction", again))
    assert status == 409 and body["error"]["field"] == "url" and first["id"] in body["error"]["message"]
    other_kinds = create_webhook("https://93.184.215.14/hook", ["srm"])  # the same URL for other alerts: allowed
    assert other_kinds["id"] != first["id"]
