"""Fault injection: DynamoDB answers a share of requests with throttling, 500s, timeouts (before
the write happened, or after it, with the answer lost) and unprocessed batch items, under every
function. Clients do what the API tells them (send again on a 503). Nothing accepted is lost or
counted twice, no experiment is half-created, and the nightly job finishes on rerun with the
snapshots a run without faults computes."""

import json
import random
import threading
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from pynamodb.exceptions import PynamoDBException

from abacus.experiments import definitions
from abacus.nightly.runs import NightNotPlanned
from tests.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN, answer, invoke, sample_event, template_resources

FAULT_RATE = 0.2
FAULT_KINDS = ("throttling", "500", "timeout before", "timeout after", "unprocessed")
USERS = 40
EXPERIMENT = "new-checkout"


class Faults:
    """Wraps moto's request handler: each DynamoDB request (and each of `services`' requests,
    named by the prefix of their X-Amz-Target) draws a fault, or none."""

    def __init__(self, rate: float, seed: int):
        self.rate, self.random, self.enabled = rate, random.Random(seed), False
        self.services: tuple[str, ...] = ("DynamoDB_",)
        self.by_service: Counter = Counter()  # faults injected, by service (X-Amz-Target's prefix)
        self.injected: Counter = Counter()
        self.lock = threading.Lock()

    def install(self, monkeypatch) -> None:
        original, faults = BotocoreStubber.__call__, self

        def handle(stubber, event_name, request, **kwargs):
            target = request.headers.get("X-Amz-Target", b"")
            target = target.decode() if isinstance(target, bytes) else target
            send = lambda: original(stubber, event_name, request, **kwargs)  # noqa: E731
            if not faults.enabled or not target.startswith(faults.services):
                return send()
            injected = sum(faults.injected.values())
            try:
                return faults.inject(target.split(".")[1], request, send)
            finally:
                if sum(faults.injected.values()) > injected:
                    faults.by_service[target.split(".")[0]] += 1

        monkeypatch.setattr(BotocoreStubber, "__call__", handle)

    def draw(self, kind_weights: dict[str, float]) -> str | None:
        with self.lock:
            roll = self.random.random()
        for kind, weight in kind_weights.items():
            if roll < weight * self.rate:
                with self.lock:
                    self.injected[kind] += 1
                return kind
            roll -= weight * self.rate
        return None

    def inject(self, operation: str, request, send):
        fault = self.draw({"throttling": 0.3, "500": 0.2, "timeout before": 0.2, "timeout after": 0.3})
        if fault == "throttling":
            return error(request, 400, "com.amazonaws.dynamodb.v20120810#ThrottlingException")
        if fault == "500":
            return error(request, 500, "com.amazon.coral.service#InternalServerError")
        if fault == "timeout before":
            raise ReadTimeoutError(endpoint_url=request.url)
        if fault == "timeout after":
            send()  # the write happened; its answer is lost
            raise ReadTimeoutError(endpoint_url=request.url)
        # Half of the batches that met no other fault at 20% come back partly unprocessed.
        if operation in ("BatchWriteItem", "BatchGetItem") and self.draw({"unprocessed": 2.5}):
            return partially(operation, request, send)
        return send()


def json_headers() -> HTTPHeaders:
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    return headers


def error(request, status: int, error_type: str) -> AWSResponse:
    body = json.dumps({"__type": error_type, "message": "injected"})
    return AWSResponse(request.url, status, json_headers(), MockRawResponse(body))


def partially(operation: str, request, send) -> AWSResponse:
    """Processes the first half of a batch and hands the rest back as unprocessed, as DynamoDB may."""
    body = json.loads(request.body)
    kept, rest = {}, {}
    for table, entries in body["RequestItems"].items():
        items = entries if operation == "BatchWriteItem" else entries["Keys"]
        half = len(items) // 2
        if operation == "BatchWriteItem":
            kept[table], rest[table] = items[half:], items[:half]
        else:
            kept[table], rest[table] = {**entries, "Keys": items[half:]}, {**entries, "Keys": items[:half]}
    rest = {table: entries for table, entries in rest.items() if entries and entries != {"Keys": []}}
    request.body = json.dumps({**body, "RequestItems": {t: e for t, e in kept.items() if e}}).encode()
    request.headers["Content-Length"] = str(len(request.body))
    answered = json.loads(send().content)
    answered["UnprocessedItems" if operation == "BatchWriteItem" else "UnprocessedKeys"] = rest
    return AWSResponse(request.url, 200, json_headers(), MockRawResponse(json.dumps(answered)))


class NoWaiting:
    """botocore's retry backoff without the waiting, so that the tests take seconds."""

    @staticmethod
    def sleep(seconds: float) -> None:
        pass


@pytest.fixture
def faults(monkeypatch):
    injector = Faults(FAULT_RATE, seed=20261125)
    injector.install(monkeypatch)
    monkeypatch.setattr("botocore.endpoint.time", NoWaiting)
    return injector


CLIENT_RETRIES: Counter = Counter()  # 503s answered, by function: what clients had to send again


def until_done(function: str, event: dict, done: tuple[int, ...], attempts: int = 60) -> tuple[int, dict, int]:
    """Sends a request as a client following the API would: again after a 503."""
    for attempt in range(attempts):
        status, body = answer(invoke(function, event))
        assert status < 500 or status == 503, (status, body)
        if status == 503:
            CLIENT_RETRIES[function] += 1
        if status in done:
            return status, body, attempt
    raise AssertionError(f"never done: {status} {body}")


def create_and_launch(started_at: datetime | None = None, **fields):
    spec = json.loads(sample_event("create_experiment")["body"]) | fields
    until_done("ResultsFunction", sample_event("create_experiment", body=spec), done=(201, 409))
    launch = {"started_at": started_at.isoformat()} if started_at else None
    until_done("ResultsFunction", sample_event("launch_experiment", body=launch), done=(200, 409))


def exposure_and_purchase_batches(start: datetime) -> list[list[dict]]:
    """Each user is exposed (PostHog's $feature_flag_called) and half of them buy; every batch is
    sent twice, as a client whose first answer was lost would."""
    rng = random.Random(7)
    events = []
    for n in range(USERS):
        user, variant = f"user-{n}", rng.choice(["control", "one-page"])
        at = start + timedelta(seconds=n)
        events.append(
            {
                "uuid": f"exposure-{n}",
                "event": "$feature_flag_called",
                "distinct_id": user,
                "timestamp": at.isoformat(),
                "properties": {"$feature_flag": EXPERIMENT, "$feature_flag_response": variant},
            }
        )
        if rng.random() < 0.5:
            purchase = {"uuid": f"purchase-{n}", "event": "purchase", "distinct_id": user}
            events.append({**purchase, "timestamp": (at + timedelta(seconds=30)).isoformat()})
    batches = [events[i : i + 10] for i in range(0, len(events), 10)]
    return [batch for batch in batches for _ in range(2)]


NIGHTLY_RUNS: list[int] = []  # how many runs each nightly job took to finish


def run_workload(start: datetime, faults: "Faults | None" = None, nightly_fault_rate: float = 0.3) -> dict:
    """Creates and launches the experiment, sends the events, runs the nightly job until it
    finishes (under more faults, so that some runs fail), runs it again, and returns the stored
    snapshot's analysis."""
    create_and_launch(started_at=start)  # running since the exposures began
    for batch in exposure_and_purchase_batches(start):
        until_done("IngestFunction", sample_event("post_events", body={"token": TOKEN, "events": batch}), done=(200,))
    nightly = sample_event("nightly") | {"time": (start + timedelta(days=1)).isoformat()}
    if faults:
        faults.rate = nightly_fault_rate
    runs = 0
    while True:
        runs += 1
        try:
            summary = invoke("ResultsFunction", nightly)
        except (PynamoDBException, NightNotPlanned):  # the invocation failed: Lambda retries it
            continue
        # Planned, and its units all done: a unit failing five times waits in the dead-letter
        # queue instead, and the operator runs the night again.
        if summary["failed"] == 0 and scan("ResultsTable"):
            break
        assert runs < 50, summary
    NIGHTLY_RUNS.append(runs)
    first = stored_snapshot()
    invoke("ResultsFunction", nightly)  # a rerun (EventBridge delivers at least once)
    assert stored_snapshot() == first
    return first


def stored_snapshot() -> dict:
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="ResultsTable")["Items"]
    assert len(items) == 1
    return json.loads(items[0]["analysis"]["S"])


def scan(table: str) -> list[dict]:
    return boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Items"]


@contextmanager
def fresh_stack(template):
    """moto with the template's tables and queues, and the test project."""
    from abacus import projects

    definitions._definitions.clear()
    with mock_aws(), template_resources(template):
        projects.create("Test project", project_id="test", token=TOKEN, admin_key=ADMIN_KEY, flags_key=FLAGS_KEY)
        yield


def test_events_experiments_and_snapshots_survive_storage_faults(template, faults):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with fresh_stack(template):
        expected = run_workload(start)
    with fresh_stack(template):
        faults.enabled = True
        got = run_workload(start, faults)
        faults.enabled = False
        stored_events = scan("EventsTable")
        stored_experiments = scan("ExperimentsTable")
        exposed = [item for item in scan("AssignmentsTable") if "exposed_at" in item]
    assert sum(faults.injected.values()) > 50, faults.injected
    assert set(faults.injected) == set(FAULT_KINDS)
    # Every event once: the same keys as sent, no more.
    sent = {e["uuid"] for batch in exposure_and_purchase_batches(start) for e in batch}
    assert sorted(item["uuid"]["S"] for item in stored_events) == sorted(sent)
    # One experiment, whole: created and launched once each.
    assert len(stored_experiments) == 1
    history = [entry["action"] for entry in json.loads(stored_experiments[0]["history"]["S"])]
    assert history == ["create", "launch"]
    assert len(exposed) == USERS
    # The snapshot is the one computed without faults, number for number.
    assert got == expected


def test_assignments_under_faults_are_sticky_and_each_exposure_is_recorded_once(template, faults):
    with fresh_stack(template):
        create_and_launch()
        faults.enabled = True
        answers: dict[str, set] = {}
        for _ in range(3):
            for n in range(USERS):
                body = {"token": TOKEN, "distinct_id": f"user-{n}", "experiments": [EXPERIMENT]}
                _, got, _ = until_done("AssignFunction", sample_event("assign", body=body), done=(200,))
                answers.setdefault(f"user-{n}", set()).add(got["assignments"][EXPERIMENT])
        faults.enabled = False
        exposed = {item["distinct_id"]["S"]: item for item in scan("AssignmentsTable")}
    assert sum(faults.injected.values()) > 20, faults.injected
    assert all(len(variants) == 1 for variants in answers.values()), "a user saw two variants"
    assert set(exposed) == set(answers)
    for user, item in exposed.items():
        assert item["variant"]["S"] in answers[user] and "exposed_at" in item


def test_experiment_changes_under_faults_are_applied_once(template, faults):
    with fresh_stack(template):
        faults.rate, faults.enabled = 0.4, True
        create_and_launch(rollout_percentage=10)
        for percentage in (20, 40, 60, 80):
            patch = sample_event("update_experiment", body={"rollout_percentage": percentage})
            until_done("ResultsFunction", patch, done=(200, 409))
        _status, experiment, _ = until_done("ResultsFunction", sample_event("get_experiment"), done=(200,))
        faults.enabled = False
    assert faults.injected["timeout after"] >= 1 and sum(faults.injected.values()) >= 5, faults.injected
    assert experiment["rollout_percentage"] == 80
    actions = [entry["action"] for entry in experiment["history"]]
    assert actions == ["create", "launch", "update", "update", "update", "update"]


def test_the_results_api_under_faults_answers_or_asks_to_retry(template, faults):
    with fresh_stack(template):
        create_and_launch()
        invoke("ResultsFunction", sample_event("recompute_results"))
        faults.rate, faults.enabled = 0.6, True
        answers: Counter[int] = Counter()
        for name in ("get_results", "get_results_history", "recompute_results", "create_report_link", "get_report"):
            for _ in range(10):
                status = invoke("ResultsFunction", sample_event(name))["statusCode"]
                answers[status] += 1
                assert status in (200, 201, 503), (name, status)
        faults.enabled = False
    assert answers[503] > 0 and answers[200] > 0, answers


def test_flag_definitions_under_faults_are_the_document_or_ask_to_retry(template, faults):
    """An SDK polling through storage faults gets the definitions, whole, or a 503 to retry
    (keeping the ones it has): never a 5xx of another kind, never a partial document."""
    with fresh_stack(template):
        create_and_launch(targeting=[{"conditions": [{"property": "plan", "operator": "eq", "value": "pro"}]}])
        expected = answer(invoke("AssignFunction", sample_event("posthog_flag_definitions")))
        assert expected[0] == 200 and len(expected[1]["flags"]) == 1
        faults.rate, faults.enabled = 0.5, True
        answers: Counter[int] = Counter()
        for sample in ("posthog_flag_definitions", "posthog_local_evaluation") * 15:
            status, body = answer(invoke("AssignFunction", sample_event(sample)))
            answers[status] += 1
            assert status in (200, 503), (status, body)
            if status == 200:
                assert body == expected[1]
        faults.enabled = False
    assert answers[503] > 0 and answers[200] > 0 and sum(faults.injected.values()) > 0, answers


def test_posthog_js_bundles_are_served_whatever_storage_does(template, faults):
    """PostHog's snippet loads array.js from the API: it reads no table, so storage faults never
    keep the SDK from a page (the flags and captures then retry as above)."""
    with fresh_stack(template):
        faults.rate, faults.enabled = 1.0, True
        for sample in ("posthog_array_js", "posthog_array_full_js", "posthog_array_full_no_external_js"):
            served = invoke("AssignFunction", sample_event(sample))
            assert served["statusCode"] == 200 and served["isBase64Encoded"], sample
        assert answer(invoke("AssignFunction", sample_event("posthog_flags")))[0] == 503  # storage is down
        faults.enabled = False


def until_answered(event: dict, done: tuple[int, ...], attempts: int = 60) -> dict:
    """A console request sent as a browser's user would: again after a 503; each time by an
    environment that has not read the signing secret yet, so that its reads meet faults too."""
    from abacus.results import signing

    for _ in range(attempts):
        signing.forget_secret()
        response = invoke("ResultsFunction", event)
        assert response["statusCode"] in (*done, 503), (response["statusCode"], response["body"][:300])
        if response["statusCode"] in done:
            return response
        CLIENT_RETRIES["ResultsFunction"] += 1
    raise AssertionError(f"never done: {event['rawPath']}")


def test_the_console_under_faults_signs_in_and_out_or_asks_to_retry(template, faults):
    """DynamoDB and Secrets Manager faults under signing in, reading a page and signing out: each
    answers its page or redirect, or a 503 to send again, never another 5xx. A sign-out answered
    with its redirect has ended the session: its cookie opens nothing after, faults or not."""
    import re

    with fresh_stack(template):
        faults.rate, faults.services, faults.enabled = 0.6, ("DynamoDB_", "secretsmanager."), True
        for _ in range(5):
            signed_in = until_answered(sample_event("console_sign_in"), done=(303,))
            cookie = signed_in["cookies"][0].split(";", 1)[0]
            page = until_answered({**sample_event("console_experiments"), "cookies": [cookie]}, done=(200,))
            token = re.search(r'name="csrf_token" value="(\w+)"', page["body"])
            assert token is not None
            sign_out = {**sample_event("console_sign_out"), "cookies": [cookie], "body": f"csrf_token={token.group(1)}"}
            until_answered(sign_out, done=(303,))
            after = until_answered({**sample_event("console_experiments"), "cookies": [cookie]}, done=(200, 303))
            assert after["statusCode"] == 303, "a session signed out under faults still opens the console"
        faults.enabled = False
    assert faults.by_service["secretsmanager"] > 0 and faults.by_service["DynamoDB_20120810"] > 0, faults.by_service
    assert CLIENT_RETRIES["ResultsFunction"] > 0, "no request met more faults than botocore's retries take"


POSTHOG_ROUTES = (
    ("AssignFunction", "posthog_flags"),
    ("AssignFunction", "posthog_decide"),
    ("AssignFunction", "posthog_remote_config"),
    ("AssignFunction", "posthog_remote_config_script"),
    ("IngestFunction", "posthog_batch"),
    ("IngestFunction", "posthog_capture"),
)


def with_unknown_token(function: str, sample: str) -> dict:
    event = sample_event(sample)
    if "pathParameters" in event:
        event["rawPath"] = event["rawPath"].replace(TOKEN, "phc_made_up")
        event["pathParameters"] = {"token": "phc_made_up"}
    else:
        event["body"] = event["body"].replace(TOKEN, "phc_made_up")
    return event


def test_token_routes_under_faults_answer_or_ask_to_retry_and_count_unknown_keys_without_failing(
    template, faults, monkeypatch
):
    """Issue 28: the token lookups (known, unknown and remembered) and both per-minute counters,
    shared at every request, under storage faults: the answer, a 401 for a made-up token, or a
    503 to send again; a counter that cannot be written never refuses a request."""
    from abacus.http import api
    from abacus.http.rate_limit import RateLimiter

    monkeypatch.setattr(api, "rate_limiter", RateLimiter(1_000_000, share_every_seconds=0))
    monkeypatch.setattr(api, "unknown_key_limiter", RateLimiter(1_000_000, share_every_seconds=0))
    with fresh_stack(template):
        create_and_launch()
        faults.rate, faults.enabled = 0.6, True
        answers: Counter[tuple[str, int]] = Counter()
        for _ in range(4):
            for function, sample in POSTHOG_ROUTES:
                for event, kind in ((sample_event(sample), "known"), (with_unknown_token(function, sample), "unknown")):
                    status = invoke(function, event)["statusCode"]
                    answers[(kind, status)] += 1
                    assert status in ((200, 503) if kind == "known" else (401, 503)), (sample, kind, status)
        faults.enabled = False
    assert answers[("known", 200)] and answers[("unknown", 401)] and answers[("known", 503)], answers


WEBHOOK_ROUTES = ("create_webhook", "list_webhooks", "rotate_webhook_secret", "delete_webhook", "get_experiment_alerts")


def aimed_at(name: str, webhook_id: str) -> dict:
    """The sample event of a webhook route, aimed at `webhook_id` where it takes one."""
    event = sample_event(name)
    if "webhook_id" in (event.get("pathParameters") or {}):
        event["rawPath"] = event["requestContext"]["http"]["path"] = event["rawPath"].replace(
            "wh_0123456789ab", webhook_id
        )
        event["pathParameters"] = {"webhook_id": webhook_id}
    return event


def test_webhooks_and_alerts_with_storage_down_ask_to_retry(template, faults):
    """DynamoDB refusing every request: each webhook route and the alerts route answer 503 (send
    again), never a 500, and nothing is written."""
    with fresh_stack(template):
        create_and_launch()
        _status, webhook, _ = until_done("ResultsFunction", sample_event("create_webhook"), done=(201,))
        before = scan("ProjectsTable")
        faults.rate, faults.enabled = 1.0, True
        for name in WEBHOOK_ROUTES:
            status, body = answer(invoke("ResultsFunction", aimed_at(name, webhook["id"])))
            assert (status, body["error"]["code"]) == (503, "storage_unavailable"), (name, body)
        faults.enabled = False
        assert scan("ProjectsTable") == before


def test_webhook_changes_under_faults_are_applied_once(template, faults):
    """A client creating, rotating and deleting webhooks through storage faults, sending again
    after a 503 or a 409 as the API tells it: every answer is its success, a 409 or a 503, and
    in the end the project has exactly the webhooks answered 201 (none twice, none lost), each
    with the secret last answered, and none of those answered 204."""
    from abacus.storage import webhooks

    with fresh_stack(template):
        create_and_launch()
        faults.rate, faults.enabled = 0.4, True
        secrets: dict[str, str] = {}
        for n in range(6):
            body = {"url": f"https://93.184.215.14/hook-{n}", "kinds": ["decision"]}
            _status, created, _ = until_done("ResultsFunction", sample_event("create_webhook", body=body), done=(201,))
            secrets[created["id"]] = created["secret"]
        for webhook_id in list(secrets)[:3]:
            event = aimed_at("rotate_webhook_secret", webhook_id)
            _status, rotated, _ = until_done("ResultsFunction", event, done=(200,))
            secrets[webhook_id] = rotated["secret"]
        deleted = list(secrets)[-2:]
        for webhook_id in deleted:
            until_done("ResultsFunction", aimed_at("delete_webhook", webhook_id), done=(204,))
        _status, listed, _ = until_done("ResultsFunction", sample_event("list_webhooks"), done=(200,))
        _status, alerts, _ = until_done("ResultsFunction", sample_event("get_experiment_alerts"), done=(200,))
        faults.enabled = False
        stored = webhooks.hooks("test")
    assert faults.injected["timeout after"] >= 1 and sum(faults.injected.values()) >= 5, faults.injected
    kept = {webhook_id: secret for webhook_id, secret in secrets.items() if webhook_id not in deleted}
    assert {webhook_id: hook["secret"] for webhook_id, hook in stored.items()} == kept
    assert sorted(hook["id"] for hook in listed["webhooks"]) == sorted(kept)
    assert alerts == {"experiment": EXPERIMENT, "alerts": []}
