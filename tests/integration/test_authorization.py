"""Authorization: every admin route refuses a missing, malformed, wrong or other project's key, a
project token cannot reach admin routes, and no key or token ever appears in the logs."""

import io
import json
import logging
import zlib

import boto3
import pytest

from tests.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN, answer, invoke, sample_event

OTHER_TOKEN, OTHER_ADMIN = "phc_other_project_token", "abacus_other_project_admin"
WRONG = "abacus_not_a_key_at_all"


ADMIN_PATHS = ("/experiments", "/webhooks")


def admin_routes(template) -> list:
    return [route for route in template.routes() if route.path.startswith(ADMIN_PATHS)]


# The id of project "test"'s webhook (two_projects): the sample events' webhook id is replaced by
# it, so that a refused request would have reached a real webhook.
SAMPLE_WEBHOOK_ID = "wh_0123456789ab"
webhook_of_test: dict[str, str] = {}


def sample_for(route) -> dict:
    """The sample event of a route (events/<name>.json names its routeKey), aimed at project
    "test"'s webhook where it names one."""
    for path in sorted((__import__("tests.conftest").conftest.EVENTS_DIR).glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("routeKey") == f"{route.method} {route.path}":
            if "webhook_id" in (event.get("pathParameters") or {}) and webhook_of_test:
                real = webhook_of_test["id"]
                event["pathParameters"]["webhook_id"] = real
                event["rawPath"] = event["requestContext"]["http"]["path"] = event["rawPath"].replace(
                    SAMPLE_WEBHOOK_ID, real
                )
            return event
    raise AssertionError(f"no sample event for {route.method} {route.path}")


@pytest.fixture
def two_projects(project):
    """Projects "test" (an experiment launched, with results, a webhook and an alert sent) and "other"."""
    from datetime import UTC, datetime

    from abacus import projects
    from abacus.experiments import definitions
    from abacus.storage import alerts

    projects.create("Other", project_id="other", token=OTHER_TOKEN, admin_key=OTHER_ADMIN)
    assert answer(invoke("ResultsFunction", sample_event("create_experiment")))[0] == 201
    assert answer(invoke("ResultsFunction", sample_event("launch_experiment")))[0] == 200
    assert invoke("ResultsFunction", sample_event("recompute_results"))["statusCode"] == 200
    status, webhook = answer(invoke("ResultsFunction", sample_event("create_webhook")))
    assert status == 201, webhook
    experiment_id = definitions.get("test", "new-checkout").experiment_id
    part = alerts.alert_part("decision", "ship:one-page")
    assert alerts.mark(experiment_id, part, {"kind": "decision", "decision": "ship:one-page"}, datetime.now(UTC))
    webhook_of_test.update(webhook)
    yield
    webhook_of_test.clear()


def stored_experiment() -> dict:
    """What an admin route could change or show of project "test": its experiment, its webhooks
    (secrets included) and the experiment's alerts."""
    from abacus.storage import webhooks

    experiment = answer(invoke("ResultsFunction", sample_event("get_experiment")))[1]
    status, alerts = answer(invoke("ResultsFunction", sample_event("get_experiment_alerts")))
    assert status == 200 and [alert["kind"] for alert in alerts["alerts"]] == ["decision"], alerts
    hooks = webhooks.hooks("test")
    assert list(hooks) == [webhook_of_test["id"]]
    return {"experiment": experiment, "webhooks": hooks, "alerts": alerts}


CREDENTIALS = {
    "missing": (None, 401),
    "not bearer": (f"Basic {ADMIN_KEY}", 401),
    "empty bearer": ("Bearer ", 401),
    "wrong key": (f"Bearer {WRONG}", 401),
    "project token": (f"Bearer {TOKEN}", 403),
    "other project's token": (f"Bearer {OTHER_TOKEN}", 403),
}


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_every_admin_route_refuses_bad_credentials(template, two_projects, credential):
    header, status = CREDENTIALS[credential]
    before = stored_experiment()
    for route in admin_routes(template):
        event = sample_for(route)
        event["headers"].pop("authorization", None)
        if header is not None:
            event["headers"]["authorization"] = header
        if route.path.endswith("/report"):
            event["rawQueryString"], event["queryStringParameters"] = "", {}
        got, body = (
            answer(invoke(route.function, event))
            if not route.path.endswith("/report")
            else (
                invoke(route.function, event)["statusCode"],
                json.loads(invoke(route.function, event)["body"]),
            )
        )
        assert got == status, (route.method, route.path, body)
        assert body["error"]["code"] in ("unauthorized", "forbidden") and body["error"]["field"] == "Authorization"
    assert stored_experiment() == before


def test_a_revoked_named_key_reaches_no_admin_route(template, two_projects):
    """Issue 31: a named admin key opens every admin route until it is revoked, then none (401,
    at once: admin keys are never cached), and changes nothing."""
    from abacus import projects

    alice = projects.create_admin_key("test", "Alice")
    opened = sample_event("get_experiment", authorization=f"Bearer {alice['admin_key']}")
    assert answer(invoke("ResultsFunction", opened))[0] == 200
    projects.revoke_admin_key("test", alice["key_id"])
    before = stored_experiment()
    for route in admin_routes(template):
        event = sample_for(route)
        event["headers"]["authorization"] = f"Bearer {alice['admin_key']}"
        response = invoke(route.function, event)
        body = json.loads(response["body"])
        assert response["statusCode"] == 401, (route.method, route.path, body)
        assert body["error"] == {
            "code": "unauthorized",
            "message": "Authorization: unknown admin key",
            "field": "Authorization",
        }, (route.method, route.path)
    assert stored_experiment() == before


def test_a_named_admin_key_is_neither_a_token_nor_a_flags_key(two_projects):
    from abacus import projects

    alice = projects.create_admin_key("test", "Alice")["admin_key"]
    body = json.loads(sample_event("assign")["body"]) | {"token": alice}
    status, error = answer(invoke("AssignFunction", sample_event("assign", body=body)))
    assert status == 403 and error["error"]["field"] == "token"
    status, error = answer(
        invoke("AssignFunction", sample_event("posthog_flag_definitions", authorization=f"Bearer {alice}"))
    )
    assert status == 403 and "that is the project's admin key" in error["error"]["message"]


def test_another_projects_admin_key_reaches_nothing_of_this_project(template, two_projects):
    before = stored_experiment()
    for route in admin_routes(template):
        event = sample_for(route)
        event["headers"]["authorization"] = f"Bearer {OTHER_ADMIN}"
        if route.method == "POST" and route.path == "/experiments":
            event["body"] = json.dumps(json.loads(event["body"]) | {"key": "others-own"})
        status, body = (
            answer(invoke(route.function, event))
            if "report" not in route.path or route.method == "POST"
            else (
                invoke(route.function, event)["statusCode"],
                json.loads(invoke(route.function, event)["body"] or "{}"),
            )
        )
        if route.path == "/experiments" and route.method == "GET":
            assert status == 200 and "new-checkout" not in [e["key"] for e in body["experiments"]]
        elif route.path == "/webhooks" and route.method == "GET":
            # The other project's own (the one it created above), never this project's.
            assert status == 200 and webhook_of_test["id"] not in [hook["id"] for hook in body["webhooks"]], body
        elif route.path in ("/experiments", "/webhooks") and route.method == "POST":
            assert status == 201  # created in the other project, under its own key
        else:
            assert status == 404 and body["error"]["code"] == "not_found", (route.method, route.path, body)
    assert stored_experiment() == before
    from abacus.storage import webhooks

    assert len(webhooks.hooks("other")) == 1  # the one it created, in its own project


def test_a_signed_link_opens_only_its_own_projects_report(two_projects):
    from datetime import UTC, datetime

    from abacus.results import snapshots

    query = snapshots.signed_query("other", "new-checkout", datetime.now(UTC))
    event = sample_event("get_report", authorization=None)
    event["queryStringParameters"] = query
    assert invoke("ResultsFunction", event)["statusCode"] == 404  # project "other" has no such experiment
    forged = {**snapshots.signed_query("test", "new-checkout", datetime.now(UTC)), "project": "other"}
    event["queryStringParameters"] = forged
    assert invoke("ResultsFunction", event)["statusCode"] == 401


def test_a_signed_link_is_refused_when_forged_from_the_tables_or_dated_beyond_its_lifetime(two_projects):
    """Issue 28: a link signed with the admin key's hash, which the projects table holds (as links
    were before, or as they are now but without the secret), opens nothing; one dated 2100,
    signed with the project's real key, neither."""
    import hashlib
    import hmac
    from datetime import UTC, datetime

    from abacus.results import signing, snapshots

    event = sample_event("get_report", authorization=None)
    event["queryStringParameters"] = snapshots.signed_query("test", "new-checkout", datetime.now(UTC))
    assert invoke("ResultsFunction", event)["statusCode"] == 200
    expires = event["queryStringParameters"]["expires"]
    admin_key_hash = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    message = f"test\nnew-checkout\n{expires}".encode()
    old_style = hmac.new(admin_key_hash.encode(), message, hashlib.sha256).hexdigest()
    by_hash = signing.mac(admin_key_hash.encode(), "report", "test", "new-checkout", expires)
    for signature in (old_style, by_hash):
        event["queryStringParameters"] = {"project": "test", "expires": expires, "signature": signature}
        assert answer(invoke("ResultsFunction", event))[0] == 401
    key = signing.project_key("test")
    assert key is not None
    in_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
    signature = signing.mac(key, "report", "test", "new-checkout", in_2100)
    event["queryStringParameters"] = {"project": "test", "expires": str(in_2100), "signature": signature}
    assert answer(invoke("ResultsFunction", event)) == (
        401,
        {"error": {"code": "unauthorized", "message": "this link is not valid", "field": "signature"}},
    )


@pytest.mark.parametrize(
    ("function", "sample", "field"),
    [("AssignFunction", "assign", "token"), ("IngestFunction", "post_events", "token")],
)
def test_an_admin_key_is_not_a_project_token(two_projects, function, sample, field):
    event = sample_event(sample)
    body = json.loads(event["body"]) | {"token": ADMIN_KEY}
    status, error = answer(invoke(function, sample_event(sample, body=body)))
    assert status == 403 and error["error"]["field"] == field


def test_no_key_or_token_ever_reaches_the_logs_or_the_tables(template, two_projects, monkeypatch):
    """Every route with good and bad credentials, every logger at DEBUG (botocore's requests
    included) and the event logging switch on: none of the secrets may be written."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    written = io.StringIO()
    capture = logging.StreamHandler(written)
    service = logging.getLogger("abacus")  # Powertools' logger: its own JSON formatter, no propagation
    capture.setFormatter(service.handlers[0].formatter)
    loggers = [logging.getLogger(), service]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    logged_by_abacus = io.StringIO()  # the service's own logs, without botocore's
    service_capture = logging.StreamHandler(logged_by_abacus)
    service_capture.setFormatter(service.handlers[0].formatter)
    service.addHandler(service_capture)
    try:
        for route in template.routes():
            for header in (
                f"Bearer {ADMIN_KEY}",
                f"Bearer {WRONG}",
                f"Bearer {TOKEN}",
                f"Bearer {OTHER_ADMIN}",
                f"Bearer {FLAGS_KEY}",
            ):
                event = sample_for(route)
                if "authorization" in event["headers"]:
                    event["headers"]["authorization"] = header
                invoke(route.function, event)
        for token in (TOKEN, WRONG, ADMIN_KEY):
            invoke("IngestFunction", sample_event("post_events", body={"token": token, "events": [{"event": "e"}]}))
        invoke("ResultsFunction", sample_event("nightly"))
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(capture)
            logger.setLevel(level)
        service.removeHandler(service_capture)
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = [client.scan(TableName=table)["Items"] for table in client.list_tables()["TableNames"]]
    # The project token is public (every app ships it): its project's item alone keeps it readable.
    readable = {
        item["pk"]["S"]: item.pop("public_token")["S"] for table in items for item in table if "public_token" in item
    }
    assert readable == {"project#test": TOKEN, "project#other": OTHER_TOKEN}
    # Binary attributes (events' compressed properties) are searched as what they hold.
    stored = json.dumps(items, default=lambda raw: zlib.decompress(raw).decode())
    assert '"pz": {"B": "{' in stored, "no compressed properties were searched"
    printed = written.getvalue() + stored  # nor are they stored elsewhere: the tables hold their hashes
    assert '"message":"nightly runs planned"' in printed and "botocore" in printed, "the logs were not captured"
    for secret in (ADMIN_KEY, TOKEN, FLAGS_KEY, OTHER_ADMIN, OTHER_TOKEN, WRONG):
        at = printed.find(secret)
        assert at < 0, f"{secret} was logged: ...{printed[max(0, at - 300) : at + 100]}"
    no_webhook_secret_in(logged_by_abacus.getvalue())


def no_webhook_secret_in(logged: str) -> None:
    """The webhooks' signing secrets are stored as they are (each delivery is signed with them):
    only botocore's DEBUG log of a read shows them; Abacus's own logs never do (events included)."""
    from abacus.storage import webhooks

    created = [hook["secret"] for project in ("test", "other") for hook in webhooks.hooks(project).values()]
    assert created, "no webhook was created with the good key"
    assert '"message":"nightly runs planned"' in logged, "the service's logs were not captured"
    for secret in (webhook_of_test["secret"], *created):
        at = logged.find(secret)
        assert at < 0, f"a webhook's secret was logged: ...{logged[max(0, at - 300) : at + 100]}"
