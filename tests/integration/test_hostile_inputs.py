"""A corpus of hostile inputs, each sent to the routes it targets: every one gets its 4xx in the one
error shape, and leaves the tables exactly as they were."""

import base64
import json

import boto3
import pytest

from tests.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN, answer, invoke, sample_event

TEN_MB = 10 * 1024 * 1024
INJECTIONS = [
    "'; DROP TABLE experiments; --",
    '" OR 1=1 --',
    "{{7*7}}",
    "${jndi:ldap://example.com/a}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "a#b",
    "project#other",
    "é-ü",
    "\u202eevil",
    "",
]


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def experiment(**fields) -> dict:
    spec = {
        "key": "checkout",
        "name": "Checkout",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase"},
    }
    return {**spec, **fields}


def events(*batch, token=TOKEN) -> dict:
    return {"token": token, "events": list(batch)}


def event(**fields) -> dict:
    return {"event": "purchase", "distinct_id": "user-1", **fields}


# (id, sample event, function, raw body or JSON body, status, field named)
BODIES = [
    ("invalid UTF-8 events", "post_events", "IngestFunction", b'{"token": "\xff\xfe"}', 400, "body"),
    ("invalid UTF-8 experiment", "create_experiment", "AssignFunction", b"\xc3\x28{", 400, "body"),
    ("invalid UTF-8 capture", "posthog_batch", "IngestFunction", b"\xff\xff\xff", 400, "body"),
    ("10 MB events", "post_events", "IngestFunction", b'{"token": "' + b"a" * TEN_MB + b'"}', 413, "body"),
    ("10 MB capture", "posthog_capture", "IngestFunction", b"[" + b"{}," * (TEN_MB // 3) + b"{}]", 413, "body"),
    ("10 MB assign", "assign", "AssignFunction", b" " * TEN_MB, 413, "body"),
    ("deep nesting events", "post_events", "IngestFunction", deep(100_000).encode(), 400, "body"),
    ("deep nesting capture", "posthog_e", "IngestFunction", deep(100_000).encode(), 400, "body"),
    ("deep nesting experiment", "create_experiment", "AssignFunction", deep(100_000).encode(), 400, "body"),
    (
        "deep properties",
        "post_events",
        "IngestFunction",
        json.dumps(events(event(properties={"a": json.loads(deep(600))}))).encode(),
        200,
        None,
    ),
    ("NaN", "post_events", "IngestFunction", b'{"token": "t", "events": [{"properties": {"v": NaN}}]}', 400, "body"),
    (
        "Infinity",
        "assign",
        "AssignFunction",
        b'{"token": "t", "distinct_id": "u", "properties": {"x": -Infinity}}',
        400,
        "body",
    ),
    (
        "huge float",
        "create_experiment",
        "AssignFunction",
        json.dumps(experiment()).replace("50", "1e999", 1).encode(),
        400,
        "body",
    ),
    (
        "huge integer",
        "posthog_batch",
        "IngestFunction",
        b'{"api_key": "t", "batch": [{"offset": 1' + b"0" * 5000 + b"}]}",
        400,
        "body",
    ),
    (
        "integer weight overflow",
        "create_experiment",
        "AssignFunction",
        experiment(variants=[{"key": "control", "weight": 10**300}, {"key": "b", "weight": 50}]),
        422,
        "variants[0].weight",
    ),
    ("null body", "post_events", "IngestFunction", b"null", 422, "body"),
    ("null token", "post_events", "IngestFunction", {"token": None, "events": [event()]}, 422, "token"),
    ("null events", "post_events", "IngestFunction", {"token": TOKEN, "events": None}, 422, "events"),
    ("null distinct_id", "assign", "AssignFunction", {"token": TOKEN, "distinct_id": None}, 422, "distinct_id"),
    ("null everything", "create_experiment", "AssignFunction", dict.fromkeys(experiment()), 422, "name"),
    ("null variant", "create_experiment", "AssignFunction", experiment(variants=[None, None]), 422, "variants[0]"),
    ("null in a patch", "update_experiment", "AssignFunction", {"name": None}, 422, "name"),
    ("null capture", "posthog_capture", "IngestFunction", b"null", 400, "body"),
    ("null batch", "posthog_batch", "IngestFunction", {"api_key": TOKEN, "batch": None}, 400, "batch"),
    ("a list as capture properties", "posthog_capture", "IngestFunction", [{"properties": [1, 2]}], 401, "api_key"),
    ("number as body", "assign", "AssignFunction", b"42", 422, "body"),
    (
        "oversized offset",
        "posthog_capture",
        "IngestFunction",
        {"api_key": TOKEN, "event": "e", "distinct_id": "u", "offset": 10**20},
        200,
        None,
    ),
    (
        "huge targeting list",
        "create_experiment",
        "AssignFunction",
        experiment(targeting=[{"conditions": [{"property": "p", "operator": "in", "value": list(range(5000))}]}]),
        422,
        "targeting[0].conditions[0].value",
    ),
    (
        "event properties over 64 KB",
        "post_events",
        "IngestFunction",
        events(event(properties={"blob": "x" * 70_000})),
        200,
        None,
    ),
    *[
        (f"experiment key {text!r}", "create_experiment", "AssignFunction", experiment(key=text), 422, "key")
        for text in INJECTIONS
    ],
    *[
        (f"token {text!r}", "post_events", "IngestFunction", events(event(), token=text), 401 if text else 422, "token")
        for text in INJECTIONS
    ],
    *[
        (
            f"assign experiments [{text!r}]",
            "assign",
            "AssignFunction",
            {"token": TOKEN, "distinct_id": "u", "experiments": [text]},
            422,
            "experiments[0]",
        )
        for text in INJECTIONS
    ],
]


def everything_stored() -> dict[str, list]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    stored = {}
    for table in client.list_tables()["TableNames"]:
        items = client.scan(TableName=table)["Items"]
        stored[table] = sorted(json.dumps(item, sort_keys=True) for item in items)
    return stored


def with_body(name: str, body) -> dict:
    event = sample_event(name)
    if isinstance(body, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = json.dumps(body), False
    return event


@pytest.fixture
def draft(project):
    status, _ = answer(invoke("AssignFunction", with_body("create_experiment", experiment(key="new-checkout"))))
    assert status == 201


@pytest.mark.parametrize(
    ("sample", "function", "body", "status", "field"), [case[1:] for case in BODIES], ids=[case[0] for case in BODIES]
)
def test_hostile_body_gets_its_4xx_and_leaves_no_trace(draft, sample, function, body, status, field):
    before = everything_stored()
    got, error = answer(invoke(function, with_body(sample, body)))
    assert got == status, error
    if status >= 400:
        assert set(error) == {"error"} and {"code", "message"} <= set(error["error"])
        assert error["error"].get("field") == field, error
        assert everything_stored() == before
    else:  # accepted as a request, but the hostile event in it is refused on its own
        assert error["accepted"] == 0 and len(error["rejected"]) == 1, error
        assert everything_stored() == before


@pytest.mark.parametrize("key", [*INJECTIONS, "%23", "a%2Fb", "x" * 2000])
def test_hostile_experiment_keys_in_paths_are_not_found(draft, key):
    before = everything_stored()
    for name, function in [
        ("get_experiment", "AssignFunction"),
        ("launch_experiment", "AssignFunction"),
        ("get_results", "ResultsFunction"),
    ]:
        event = sample_event(name)
        path = event["rawPath"].replace("new-checkout", key)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"key": key}
        status, error = answer(invoke(function, event))
        assert status == 404 and error["error"]["code"] == "not_found", (name, error)
    assert everything_stored() == before


HOSTILE_CREDENTIALS = [*INJECTIONS, "x" * 20_000, "phs_" + "\u0000" * 10, f"{FLAGS_KEY} {FLAGS_KEY}", FLAGS_KEY.upper()]


@pytest.mark.parametrize("value", HOSTILE_CREDENTIALS, ids=range(len(HOSTILE_CREDENTIALS)))
def test_hostile_flag_definition_requests_are_refused_and_leave_no_trace(draft, value):
    """A hostile flags key, project token or If-None-Match: a 401 or 403 naming the field (or, for
    an If-None-Match, the document), never a 5xx, and nothing stored."""
    before = everything_stored()
    for sample in ("posthog_flag_definitions", "posthog_local_evaluation", "posthog_local_evaluation_node"):
        status, error = answer(invoke("AssignFunction", sample_event(sample, authorization=f"Bearer {value}")))
        assert status == 401 and error["error"]["field"] == "Authorization", (sample, error)
        event = sample_event(sample)
        event["queryStringParameters"] = {"token": value, "send_cohorts": ""}
        status, error = answer(invoke("AssignFunction", event))
        assert (status, error.get("error", {}).get("field")) == ((200, None) if not value else (403, "token")), error
        got = invoke("AssignFunction", sample_event(sample, **{"if-none-match": value}))
        assert got["statusCode"] == (304 if value.strip() == "*" else 200)
    assert everything_stored() == before


@pytest.mark.parametrize("distinct_id", ["user#1", "test#user#2", "用户", "'; DROP TABLE assignments; --", "{{7*7}}"])
def test_unusual_distinct_ids_are_stored_as_they_are_and_never_collide(project, distinct_id):
    """Any string is a valid distinct_id (PostHog's are): it is kept verbatim, scoped by project."""
    from abacus import projects

    other = projects.create("Other", project_id="test2", token="phc_other", admin_key="abacus_other")
    for token in (TOKEN, other["token"]):
        status, body = answer(
            invoke("IngestFunction", with_body("post_events", events(event(distinct_id=distinct_id), token=token)))
        )
        assert (status, body["accepted"]) == (200, 1)
    users = {
        item["distinct_id"]["S"]
        for item in boto3.client("dynamodb", region_name="us-east-1").scan(TableName="EventsTable")["Items"]
    }
    assert users == {distinct_id}
    stored = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="EventsTable")["Items"]
    assert len({item["user_id"]["S"] for item in stored}) == 2


def test_an_injection_in_a_name_is_stored_verbatim_and_escaped_in_the_report(project):
    name = "<script>alert(1)</script> {{7*7}} '; DROP TABLE x; --"
    status, created = answer(
        invoke("AssignFunction", with_body("create_experiment", experiment(key="new-checkout", name=name)))
    )
    assert status == 201 and created["name"] == name
    event = sample_event("get_report")
    response = invoke("ResultsFunction", event)
    assert response["statusCode"] == 200
    assert "<script>alert(1)</script>" not in response["body"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}}" in response["body"]


def test_unknown_query_parameters_are_refused_naming_them(project):
    event = sample_event("list_experiments")
    event["queryStringParameters"] = {"limt": "10"}
    status, error = answer(invoke("AssignFunction", event))
    assert status == 422 and error["error"]["field"] == "limt"
    event["headers"].pop("authorization")
    status, error = answer(invoke("AssignFunction", event))
    assert status == 401, "credentials are checked first"


def test_posthog_routes_take_whatever_query_the_sdks_add(project):
    event = sample_event("posthog_e")
    event["queryStringParameters"] = {"ip": "1", "_": "1795608000000", "ver": "1.200.0", "compression": "none"}
    status, body = answer(invoke("IngestFunction", event))
    assert status == 200, body


def test_admin_key_is_not_accepted_where_a_token_belongs(project):
    status, error = answer(invoke("IngestFunction", with_body("post_events", events(event(), token=ADMIN_KEY))))
    assert status == 403 and error["error"]["field"] == "token"


def test_an_experiment_over_dynamodbs_item_limit_is_a_413_and_stays_as_it_was(project):
    overrides = {f"{'u' * 190}{n:04d}": "b" for n in range(900)}  # about 180 KB
    status, _ = answer(
        invoke("AssignFunction", with_body("create_experiment", experiment(key="new-checkout", overrides=overrides)))
    )
    assert status == 201
    before = everything_stored()
    # The change is recorded with its old and new values: the item would pass 400 KB.
    changed = {user: "control" for user in overrides}
    status, error = answer(invoke("AssignFunction", with_body("update_experiment", {"overrides": changed})))
    assert status == 413 and error["error"]["field"] == "body", error
    assert everything_stored() == before


def test_a_project_id_cannot_hold_the_key_separator():
    from abacus import projects

    with pytest.raises(ValueError, match="project id"):
        projects.create("Bad", project_id="a#b")


def test_a_project_token_over_its_rate_limit_gets_429_with_retry_after(project, monkeypatch):
    import time

    from abacus import api
    from abacus.rate_limit import RateLimiter
    from abacus.storage.rate_limits import RateWindowItem, counter_key, shard_hits

    now = time.time()
    minute = int(now // 60)
    environments = [RateLimiter(3, share_every_seconds=0, shard=shard, clock=lambda: now) for shard in (2, 9)]
    monkeypatch.setattr(api, "rate_limiter", environments[0])
    statuses = [invoke("IngestFunction", sample_event("post_events"))["statusCode"] for _ in range(2)]
    monkeypatch.setattr(api, "rate_limiter", environments[1])  # another environment, another shard
    statuses.append(invoke("IngestFunction", sample_event("post_events"))["statusCode"])
    refused = invoke("AssignFunction", sample_event("assign"))
    assert statuses == [200, 200, 200] and refused["statusCode"] == 429
    assert 1 <= int(refused["headers"]["Retry-After"]) <= 60
    assert json.loads(refused["body"])["error"]["code"] == "too_many_requests"
    assert shard_hits("test", minute) == {2: 2, 9: 2}
    assert RateWindowItem.get(counter_key("test", minute, 9)).expires_at > now


def test_every_unknown_query_parameter_is_named(project):
    event = sample_event("list_experiments")
    event["queryStringParameters"] = {"limt": "10", "afer": "x"}
    status, error = answer(invoke("AssignFunction", event))
    assert status == 422 and error["error"]["field"] == "afer"
    assert [entry["field"] for entry in error["error"]["errors"]] == ["afer", "limt"]


def test_thousands_of_invalid_values_list_the_first_fifty(project):
    overrides = {f"user-{i}": i for i in range(20_000)}  # about 400 KB, every value not a string
    status, error = answer(invoke("AssignFunction", with_body("create_experiment", experiment(overrides=overrides))))
    assert status == 422 and len(error["error"]["errors"]) == 50, error["error"]["message"][:200]
    assert error["error"]["field"] == "overrides.user-0"
    assert error["error"]["message"].endswith("; and 19950 more")


HOSTILE_BUNDLE_HEADERS = [
    {"accept-encoding": "gzip;q=" + "9" * 10_000},
    {"accept-encoding": ",;=" * 5_000},
    {"if-none-match": '"' + "a" * 50_000 + '"'},
    {"if-none-match": "W/" * 10_000},
    *({"if-none-match": value, "accept-encoding": value} for value in INJECTIONS),
]


@pytest.mark.parametrize("headers", HOSTILE_BUNDLE_HEADERS, ids=range(len(HOSTILE_BUNDLE_HEADERS)))
def test_hostile_headers_to_posthog_js_bundles_get_the_bundle_or_a_304(draft, headers):
    """posthog-js's bundles (GET /static/array*.js) take no credentials and read no table: whatever
    Accept-Encoding or If-None-Match they are sent, the bundle or a 304, never another answer."""
    before = everything_stored()
    for sample in ("posthog_array_js", "posthog_array_full_js", "posthog_array_full_es5_js"):
        event = sample_event(sample)
        event["headers"] |= headers
        assert invoke("AssignFunction", event)["statusCode"] in (200, 304), sample
    assert everything_stored() == before


@pytest.mark.parametrize("run", [*INJECTIONS, "2026-11-24#" + "9" * 60, "2026-11-24", "x" * 2000])
def test_a_hostile_run_on_the_results_page_is_a_422_naming_it(draft, run):
    """The console's Results page follows a recompute's run (`?run=date#started`): anything else
    is refused naming the field, before any table is read."""
    from tests.integration.test_console import session_cookie

    event = sample_event("console_experiment")
    event["cookies"] = [session_cookie()]
    event["queryStringParameters"] = {"run": run}
    status, error = answer(invoke("ResultsFunction", event))
    assert status == 422 and error["error"]["field"] == "run", error
