"""A corpus of hostile inputs, each sent to the routes it targets: every one gets its 4xx in the one
error shape, and leaves the tables exactly as they were."""

import base64
import gc
import gzip
import json
import tracemalloc

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


PUBLIC_URL = "https://93.184.215.14/abacus"  # an IP literal: read without a DNS lookup

# Webhook URLs that must never be one (SSRF): each a 422 naming `url`. The hosts are IP literals or
# refused before any lookup; names that resolve to private addresses: test_a_webhook_host_resolving...
HOSTILE_WEBHOOK_URLS = {
    "user and password": "https://user:pass@93.184.215.14/abacus",
    "user": "https://admin@93.184.215.14/abacus",
    "a backslash hiding a private host": "https://93.184.215.14\\@10.0.0.1/",
    "file": "file:///etc/passwd",
    "gopher": "gopher://93.184.215.14:70/_SLAVEOF",
    "ftp": "ftp://93.184.215.14/",
    "javascript": "javascript:alert(1)",
    "data": "data:text/plain,hello",
    "http": "http://93.184.215.14/abacus",
    "http metadata": "http://169.254.169.254/latest/meta-data/",
    "https metadata": "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "metadata v6": "https://[fd00:ec2::254]/latest/meta-data/",
    "IPv4-mapped metadata": "https://[::ffff:169.254.169.254]/",
    "10/8": "https://10.0.0.1/",
    "172.16/12": "https://172.16.5.4/",
    "192.168/16": "https://192.168.0.1/",
    "loopback": "https://127.0.0.1/",
    "loopback v6": "https://[::1]/",
    "IPv4-mapped v6": "https://[::ffff:10.0.0.1]/",
    "decimal loopback": "https://2130706433/",
    "hexadecimal loopback": "https://0x7f000001/",
    "octal loopback": "https://0177.0.0.1/",
    "short loopback": "https://127.1/",
    "unspecified": "https://0.0.0.0/",
    "unspecified v6": "https://[::]/",
    "link-local v6": "https://[fe80::1]/",
    "unique local": "https://[fd00::1]/",
    "CGNAT": "https://100.64.0.1/",
    "multicast": "https://224.0.0.1/",
    "broadcast": "https://255.255.255.255/",
    "documentation": "https://192.0.2.1/",
    "localhost": "https://localhost/",
    "local port scan": "https://127.0.0.1:6379/",
    "port 0": "https://93.184.215.14:0/",
    "port out of range": "https://93.184.215.14:65536/",
    "unclosed IPv6": "https://[::1/",
    "no host": "https:///abacus",
    "no scheme": "93.184.215.14/abacus",
    "empty": "",
    "a space": "https://93.184.215.14/a b",
    "a header injection": "https://93.184.215.14/a\r\nX-Injected: 1",
    "a NUL": "https://93.184.215.14/\u0000",
    "non-ASCII": "https://93.184.215.14/café",
    "a lone surrogate": "https://93.184.215.14/\ud800",
    "too long": "https://93.184.215.14/" + "a" * 2100,
    **{f"injection {text!r}": text for text in INJECTIONS if text},
}


# (id, sample event, function, raw body or JSON body, status, field named)
BODIES = [
    ("invalid UTF-8 events", "post_events", "IngestFunction", b'{"token": "\xff\xfe"}', 400, "body"),
    ("invalid UTF-8 experiment", "create_experiment", "ResultsFunction", b"\xc3\x28{", 400, "body"),
    ("invalid UTF-8 capture", "posthog_batch", "IngestFunction", b"\xff\xff\xff", 400, "body"),
    ("10 MB events", "post_events", "IngestFunction", b'{"token": "' + b"a" * TEN_MB + b'"}', 413, "body"),
    ("10 MB capture", "posthog_capture", "IngestFunction", b"[" + b"{}," * (TEN_MB // 3) + b"{}]", 413, "body"),
    ("10 MB assign", "assign", "AssignFunction", b" " * TEN_MB, 413, "body"),
    ("deep nesting events", "post_events", "IngestFunction", deep(100_000).encode(), 400, "body"),
    ("deep nesting capture", "posthog_e", "IngestFunction", deep(100_000).encode(), 400, "body"),
    ("deep nesting experiment", "create_experiment", "ResultsFunction", deep(100_000).encode(), 400, "body"),
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
        "ResultsFunction",
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
        "ResultsFunction",
        experiment(variants=[{"key": "control", "weight": 10**300}, {"key": "b", "weight": 50}]),
        422,
        "variants[0].weight",
    ),
    ("null body", "post_events", "IngestFunction", b"null", 422, "body"),
    ("null token", "post_events", "IngestFunction", {"token": None, "events": [event()]}, 422, "token"),
    ("null events", "post_events", "IngestFunction", {"token": TOKEN, "events": None}, 422, "events"),
    ("null distinct_id", "assign", "AssignFunction", {"token": TOKEN, "distinct_id": None}, 422, "distinct_id"),
    ("null everything", "create_experiment", "ResultsFunction", dict.fromkeys(experiment()), 422, "name"),
    ("null variant", "create_experiment", "ResultsFunction", experiment(variants=[None, None]), 422, "variants[0]"),
    ("null in a patch", "update_experiment", "ResultsFunction", {"name": None}, 422, "name"),
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
        "ResultsFunction",
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
        (f"experiment key {text!r}", "create_experiment", "ResultsFunction", experiment(key=text), 422, "key")
        for text in INJECTIONS
    ],
    # A webhook: its URL never a private or metadata address (SSRF), its kinds a list of known ones.
    *[
        (f"webhook url {name}", "create_webhook", "ResultsFunction", {"url": url}, 422, "url")
        for name, url in HOSTILE_WEBHOOK_URLS.items()
    ],
    ("webhook url 10 MB", "create_webhook", "ResultsFunction", {"url": "https://a/" + "a" * TEN_MB}, 413, "body"),
    ("webhook url a number", "create_webhook", "ResultsFunction", {"url": 42}, 422, "url"),
    ("webhook url null", "create_webhook", "ResultsFunction", {"url": None}, 422, "url"),
    ("webhook url a list", "create_webhook", "ResultsFunction", {"url": [PUBLIC_URL]}, 422, "url"),
    ("webhook url an object", "create_webhook", "ResultsFunction", {"url": {"href": PUBLIC_URL}}, 422, "url"),
    ("webhook url true", "create_webhook", "ResultsFunction", {"url": True}, 422, "url"),
    ("webhook without url", "create_webhook", "ResultsFunction", {"kinds": ["decision"]}, 422, "url"),
    ("webhook kinds a string", "create_webhook", "ResultsFunction", {"url": PUBLIC_URL, "kinds": "srm"}, 422, "kinds"),
    ("webhook kinds an object", "create_webhook", "ResultsFunction", {"url": PUBLIC_URL, "kinds": {}}, 422, "kinds"),
    ("webhook kinds empty", "create_webhook", "ResultsFunction", {"url": PUBLIC_URL, "kinds": []}, 422, "kinds"),
    (
        "webhook kind unknown",
        "create_webhook",
        "ResultsFunction",
        {"url": PUBLIC_URL, "kinds": ["decision", "everything"]},
        422,
        "kinds[1]",
    ),
    ("webhook kind a number", "create_webhook", "ResultsFunction", {"url": PUBLIC_URL, "kinds": [1]}, 422, "kinds[0]"),
    ("webhook kind null", "create_webhook", "ResultsFunction", {"url": PUBLIC_URL, "kinds": [None]}, 422, "kinds[0]"),
    (
        "webhook kinds thousands",
        "create_webhook",
        "ResultsFunction",
        {"url": PUBLIC_URL, "kinds": ["decision"] * 5000},
        422,
        "kinds",
    ),
    (
        "webhook with its own secret",
        "create_webhook",
        "ResultsFunction",
        {"url": PUBLIC_URL, "secret": "whsec_mine"},
        422,
        "secret",
    ),
    ("webhook with an id", "create_webhook", "ResultsFunction", {"url": PUBLIC_URL, "id": "wh_mine"}, 422, "id"),
    ("webhook null", "create_webhook", "ResultsFunction", b"null", 422, "body"),
    ("webhook deep nesting", "create_webhook", "ResultsFunction", deep(100_000).encode(), 400, "body"),
    ("webhook invalid UTF-8", "create_webhook", "ResultsFunction", b'{"url": "https://\xff/"}', 400, "body"),
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
    status, _ = answer(invoke("ResultsFunction", with_body("create_experiment", experiment(key="new-checkout"))))
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


def test_a_json_array_is_no_webhook(draft):
    """Powertools would validate the array's first element as the body (openapi_validation's
    _normalize_field_value) and drop the rest: abacus.http.api refuses an array for a model's body."""
    before = everything_stored()
    status, error = answer(invoke("ResultsFunction", with_body("create_webhook", [{"url": PUBLIC_URL}, {"url": 1}])))
    assert (status, error.get("error", {}).get("field")) == (422, "body"), error
    assert everything_stored() == before


@pytest.mark.parametrize(
    ("name", "function"),
    [("create_experiment", "ResultsFunction"), ("assign", "AssignFunction"), ("launch_experiment", "ResultsFunction")],
)
def test_a_json_array_is_refused_wherever_the_body_is_an_object(draft, name, function):
    before = everything_stored()
    body = json.loads(sample_event(name).get("body") or "{}")
    status, error = answer(invoke(function, with_body(name, [body, body])))
    assert (status, error.get("error", {}).get("field")) == (422, "body"), error
    assert "not an array" in error["error"]["message"]
    assert everything_stored() == before


def test_an_array_without_the_admin_key_is_refused_for_the_key_first(draft):
    event = with_body("create_webhook", [{"url": PUBLIC_URL}])
    event["headers"] = {**event["headers"], "authorization": "Bearer wrong"}
    status, error = answer(invoke("ResultsFunction", event))
    assert status == 401, error


@pytest.mark.parametrize("key", [*INJECTIONS, "%23", "a%2Fb", "x" * 2000])
def test_hostile_experiment_keys_in_paths_are_not_found(draft, key):
    before = everything_stored()
    for name, function in [
        ("get_experiment", "ResultsFunction"),
        ("launch_experiment", "ResultsFunction"),
        ("get_results", "ResultsFunction"),
        ("get_experiment_alerts", "ResultsFunction"),
    ]:
        event = sample_event(name)
        path = event["rawPath"].replace("new-checkout", key)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"key": key}
        status, error = answer(invoke(function, event))
        assert status == 404 and error["error"]["code"] == "not_found", (name, error)
    assert everything_stored() == before


RESOLVED = {
    "internal.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "rebinding.example.com": ["93.184.215.14", "127.0.0.1"],  # one public address is not enough
    "v6-loopback.example.com": ["::1"],
    "mapped.example.com": ["::ffff:192.168.1.10"],
    "link-local.example.com": ["fe80::1%eth0"],
    "cgnat.example.com": ["100.100.100.200"],  # a cloud's metadata service in the shared range
    "ula.example.com": ["fd00:ec2::254"],
}


@pytest.fixture
def dns(monkeypatch):
    """getaddrinfo answering RESOLVED (and hooks.example.com: a public address), refusing any other
    name; IP literals are read as getaddrinfo reads them. Records the names looked up."""
    import socket

    real, looked_up = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        answers = {**RESOLVED, "hooks.example.com": ["93.184.215.14"]}.get(host)
        if answers is None:
            return real(host, port, *args, **(kwargs | {"flags": socket.AI_NUMERICHOST}))
        family = lambda address: socket.AF_INET6 if ":" in address else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


@pytest.mark.parametrize("host", RESOLVED)
def test_a_webhook_host_resolving_to_a_private_address_is_a_422_naming_url(draft, dns, host):
    before = everything_stored()
    status, error = answer(invoke("ResultsFunction", with_body("create_webhook", {"url": f"https://{host}/hook"})))
    assert (status, error["error"]["field"]) == (422, "url"), error
    assert "not a public address" in error["error"]["message"] and host in dns
    assert everything_stored() == before
    # The same URL's host on a public address is taken: the refusal was the address's.
    status, created = answer(
        invoke("ResultsFunction", with_body("create_webhook", {"url": "https://hooks.example.com/hook"}))
    )
    assert status == 201 and created["url"] == "https://hooks.example.com/hook", created


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://internal.example.com/hook"},
        {"url": "https://hooks.example.com/hook"},
        {"url": "https://10.0.0.1/"},
        {"url": "http://169.254.169.254/latest/meta-data/"},
        {"url": 42, "kinds": "all"},
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer abacus_not_a_key", f"Bearer {TOKEN}"])
def test_a_webhook_without_an_admin_key_is_refused_before_its_url_is_looked_at(draft, dns, body, authorization):
    """Credentials come first, as on every admin route: without the admin key nothing is resolved
    (no DNS lookup anyone could trigger) and nothing of the URL is told."""
    before = everything_stored()
    event = with_body("create_webhook", body)
    event["headers"].pop("authorization")
    if authorization:
        event["headers"]["authorization"] = authorization
    status, error = answer(invoke("ResultsFunction", event))
    assert status in (401, 403) and error["error"]["field"] == "Authorization", error
    assert dns == [] and everything_stored() == before


@pytest.mark.parametrize("webhook_id", [*INJECTIONS, "wh_", "webhooks#test", "%23", "a%2Fb", "x" * 2000])
def test_hostile_webhook_ids_in_paths_are_not_found_and_change_nothing(draft, webhook_id):
    status, created = answer(invoke("ResultsFunction", with_body("create_webhook", {"url": PUBLIC_URL})))
    assert status == 201
    before = everything_stored()
    for name in ("delete_webhook", "rotate_webhook_secret"):
        event = sample_event(name)
        path = event["rawPath"].replace("wh_0123456789ab", webhook_id)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"webhook_id": webhook_id}
        status, error = answer(invoke("ResultsFunction", event))
        assert status == 404 and error["error"]["code"] == "not_found", (name, error)
    assert everything_stored() == before
    assert [hook["id"] for hook in answer(invoke("ResultsFunction", sample_event("list_webhooks")))[1]["webhooks"]] == [
        created["id"]
    ]


HOSTILE_CREDENTIALS = [*INJECTIONS, "x" * 20_000, "phs_" + "\u0000" * 10, f"{FLAGS_KEY} {FLAGS_KEY}", FLAGS_KEY.upper()]


@pytest.mark.parametrize("value", HOSTILE_CREDENTIALS, ids=range(len(HOSTILE_CREDENTIALS)))
def test_hostile_flag_definition_requests_are_refused_and_leave_no_trace(draft, value):
    """A hostile flags key, project token or If-None-Match: a 401 or 403 naming the field (or, for
    an If-None-Match, the document), never a 5xx, and nothing stored."""
    before = everything_stored()
    too_long = len(value) > 200  # refused as no key is that long, before any lookup
    for sample in ("posthog_flag_definitions", "posthog_local_evaluation", "posthog_local_evaluation_node"):
        status, error = answer(invoke("AssignFunction", sample_event(sample, authorization=f"Bearer {value}")))
        assert status == (400 if too_long else 401) and error["error"]["field"] == "Authorization", (sample, error)
        event = sample_event(sample)
        event["queryStringParameters"] = {"token": value, "send_cohorts": ""}
        status, error = answer(invoke("AssignFunction", event))
        expected = (200, None) if not value else (400 if too_long else 403, "token")
        assert (status, error.get("error", {}).get("field")) == expected, error
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
        invoke("ResultsFunction", with_body("create_experiment", experiment(key="new-checkout", name=name)))
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
    status, error = answer(invoke("ResultsFunction", event))
    assert status == 422 and error["error"]["field"] == "limt"
    event["headers"].pop("authorization")
    status, error = answer(invoke("ResultsFunction", event))
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
        invoke("ResultsFunction", with_body("create_experiment", experiment(key="new-checkout", overrides=overrides)))
    )
    assert status == 201
    before = everything_stored()
    # The change is recorded with its old and new values: the item would pass 400 KB.
    changed = {user: "control" for user in overrides}
    status, error = answer(invoke("ResultsFunction", with_body("update_experiment", {"overrides": changed})))
    assert status == 413 and error["error"]["field"] == "body", error
    assert everything_stored() == before


def test_a_project_id_cannot_hold_the_key_separator():
    from abacus import projects

    with pytest.raises(ValueError, match="project id"):
        projects.create("Bad", project_id="a#b")


def test_a_project_token_over_its_rate_limit_gets_429_with_retry_after(project, monkeypatch):
    import time

    from abacus.http import api
    from abacus.http.rate_limit import RateLimiter
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
    status, error = answer(invoke("ResultsFunction", event))
    assert status == 422 and error["error"]["field"] == "afer"
    assert [entry["field"] for entry in error["error"]["errors"]] == ["afer", "limt"]


def test_thousands_of_invalid_values_list_the_first_fifty(project):
    overrides = {f"user-{i}": i for i in range(20_000)}  # about 400 KB, every value not a string
    status, error = answer(invoke("ResultsFunction", with_body("create_experiment", experiment(overrides=overrides))))
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


# Issue 28: every route that takes a token or key, with it where the route reads it: (id, function,
# event, the field named).
def _with_token(sample: str, field: str, value: str) -> dict:
    """The sample with its token sent as `field` alone."""
    event = sample_event(sample)
    body = {name: sent for name, sent in json.loads(event["body"]).items() if name not in ("api_key", "token")}
    event["body"] = json.dumps(body | {field: value})
    return event


def _captured_with(sample: str, value: str) -> dict:
    """A capture route's sample with one plain event and its token as `api_key`."""
    event = sample_event(sample)
    event["headers"] = {**event["headers"], "content-type": "application/json"}
    event["headers"].pop("content-encoding", None)
    event["body"] = json.dumps({"api_key": value, "event": "purchase", "distinct_id": "user-42"})
    event["isBase64Encoded"] = False
    return event


def _in_the_path(sample: str, value: str) -> dict:
    event = sample_event(sample)
    event["rawPath"] = event["requestContext"]["http"]["path"] = event["rawPath"].replace(TOKEN, value)
    event["pathParameters"] = {"token": value}
    return event


def _in_the_query(sample: str, value: str) -> dict:
    event = sample_event(sample)
    event["queryStringParameters"] = {**event["queryStringParameters"], "token": value}
    return event


CREDENTIAL_ROUTES = [
    ("assign", "AssignFunction", lambda v: _with_token("assign", "token", v), "token"),
    ("events", "IngestFunction", lambda v: _with_token("post_events", "token", v), "token"),
    ("flags api_key", "AssignFunction", lambda v: _with_token("posthog_flags", "api_key", v), "api_key"),
    ("decide token", "AssignFunction", lambda v: _with_token("posthog_decide", "token", v), "token"),
    *[
        (sample, "IngestFunction", lambda v, sample=sample: _captured_with(sample, v), "api_key")
        for sample in ("posthog_batch", "posthog_capture", "posthog_e", "posthog_i_v0_e")
    ],
    ("config", "AssignFunction", lambda v: _in_the_path("posthog_remote_config", v), "token"),
    ("config.js", "AssignFunction", lambda v: _in_the_path("posthog_remote_config_script", v), "token"),
    (
        "definitions key",
        "AssignFunction",
        lambda v: sample_event("posthog_flag_definitions", authorization=f"Bearer {v}"),
        "Authorization",
    ),
    ("definitions token", "AssignFunction", lambda v: _in_the_query("posthog_flag_definitions", v), "token"),
    (
        "admin key",
        "ResultsFunction",
        lambda v: sample_event("create_experiment", authorization=f"Bearer {v}"),
        "Authorization",
    ),
    (
        "results admin key",
        "ResultsFunction",
        lambda v: sample_event("get_results", authorization=f"Bearer {v}"),
        "Authorization",
    ),
    (
        "webhooks admin key",
        "ResultsFunction",
        lambda v: sample_event("create_webhook", authorization=f"Bearer {v}"),
        "Authorization",
    ),
]


@pytest.mark.parametrize(
    ("function", "request_with", "field"), [c[1:] for c in CREDENTIAL_ROUTES], ids=[c[0] for c in CREDENTIAL_ROUTES]
)
def test_a_credential_longer_than_any_key_is_a_400_naming_its_field_before_any_lookup(
    draft, monkeypatch, function, request_with, field
):
    """No key is longer than 200 characters: a longer one is refused on every route that takes
    one, naming where it was sent, without a lookup (nothing hashed, read or cached for it)."""
    from abacus.storage import credentials

    looked_up: list[str] = []
    original = credentials.key_owner

    def recorded(key: str):
        looked_up.append(key)
        return original(key)

    monkeypatch.setattr(credentials, "key_owner", recorded)
    before = everything_stored()
    status, error = answer(invoke(function, request_with("k" * 201)))
    assert (status, error["error"]["field"]) == (400, field), error
    assert "longer than 200 characters" in error["error"]["message"]
    assert looked_up == [] and everything_stored() == before
    # 200 is not too long: looked up, and unknown (a ?token= not the flags key's project's: 403).
    status, error = answer(invoke(function, request_with("k" * 200)))
    assert status in (401, 403) and "k" * 200 in looked_up, error


@pytest.fixture
def deployed_caches(monkeypatch):
    """The token and key caches with the deployed TTL (the tests run with none), emptied."""
    from abacus.http import api

    for cache in (api._tokens, api._flags_keys, api._unknown_keys):
        cache.clear()
        monkeypatch.setattr(cache, "ttl_seconds", 30.0)
    yield api
    for cache in (api._tokens, api._flags_keys, api._unknown_keys):
        cache.clear()


def traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_unknown_tokens_of_the_longest_length_leave_the_caches_bounded(draft, deployed_caches):
    """Made-up tokens of 200 characters, each new: every one refused, none kept among the known
    tokens, the unknown ones in an LRU that stays at its size; memory held stops growing once it
    is full. (Before issue 28 each was cached until the cache held 10,000.)"""
    api = deployed_caches
    kept = api.UNKNOWN_KEYS_KEPT

    def send(first: int, count: int) -> None:
        for n in range(first, first + count):
            made_up = f"phc_{n:06d}".ljust(200, "x")
            status, _ = answer(invoke("IngestFunction", with_body("post_events", events(event(), token=made_up))))
            assert status == 401

    assert answer(invoke("IngestFunction", sample_event("post_events")))[0] == 200  # the real token, cached
    tracemalloc.start()
    try:
        send(0, kept + 100)  # the LRU fills, everything a request sets up is in place
        full = traced_bytes()
        send(kept + 100, kept + 100)  # as many again, all new
        later = traced_bytes()
    finally:
        tracemalloc.stop()
    assert len(api._tokens) == 1 and len(api._unknown_keys) == kept
    # A made-up token kept costs about 500 bytes: 1,100 more would hold some 550 KB.
    assert later - full < 100_000, f"{later - full} bytes more held after {kept + 100} more made-up tokens"


def gzip_capture(token: str) -> dict:
    body = gzip.compress(json.dumps({"api_key": token, "batch": [event()]}).encode())
    request = sample_event("posthog_batch")
    request["headers"]["content-encoding"] = "gzip"
    request["body"], request["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return request


def test_gzip_bodies_carrying_a_token_of_nearly_a_megabyte_are_400s_and_hold_nothing(draft, deployed_caches):
    """The report's case: about 60 gzip requests, each with its own 0.9 MB token, grew an
    environment by 54 MB. Each is a 400 naming api_key, and nothing of them stays in memory."""
    requests = [gzip_capture(f"phc_{n:02d}".ljust(900_000, "x")) for n in range(61)]
    tracemalloc.start()
    try:
        # The resolver keeps the request it answered last until the next one: one is sent before.
        answers = [answer(invoke("IngestFunction", requests[0]))]
        before = traced_bytes()
        answers += [answer(invoke("IngestFunction", request)) for request in requests[1:]]
        after = traced_bytes()
    finally:
        tracemalloc.stop()
    assert {(status, error["error"]["field"]) for status, error in answers} == {(400, "api_key")}
    assert len(deployed_caches._tokens) == 0 and len(deployed_caches._unknown_keys) == 0
    assert after - before < 1_000_000, f"{after - before} bytes held after 60 requests"


def test_unknown_keys_are_counted_and_limited_together_and_known_ones_never_are(draft, monkeypatch):
    """Issue 28: requests with tokens or flags keys no project owns count in one bucket, all
    projects together (429 past its limit); the project's own requests are unaffected by it."""
    import time

    from abacus.http import api, rate_limit
    from abacus.storage.rate_limits import shard_hits

    now = time.time()
    monkeypatch.setenv("ABACUS_UNKNOWN_KEY_RATE_LIMIT_PER_MINUTE", "3")  # UnknownKeyRateLimitPerMinute
    limiter = rate_limit.unknown_keys_from_environment()
    limiter.share_every_seconds, limiter.shard, limiter._clock = 0, 5, lambda: now
    monkeypatch.setattr(api, "unknown_key_limiter", limiter)
    made_up = [
        ("IngestFunction", with_body("post_events", events(event(), token="phc_made_up"))),
        ("AssignFunction", _in_the_path("posthog_remote_config", "phc_made_up_too")),
        ("AssignFunction", sample_event("posthog_flag_definitions", authorization="Bearer phs_made_up")),
        ("AssignFunction", with_body("assign", {"token": "phc_made_up", "distinct_id": "u"})),
    ]
    answers = [answer(invoke(function, request)) for function, request in made_up]
    assert [status for status, _ in answers] == [401, 401, 401, 429]
    assert answers[3][1]["error"]["field"] == "token" and "unknown keys" in answers[3][1]["error"]["message"]
    assert shard_hits(rate_limit.UNKNOWN_KEYS, int(now // 60)) == {5: 4}
    assert answer(invoke("IngestFunction", sample_event("post_events")))[0] == 200
    assert answer(invoke("AssignFunction", sample_event("posthog_flag_definitions")))[0] == 200


def test_the_remote_config_does_not_spend_the_tokens_budget(draft, monkeypatch):
    """Anyone holding the public token may read the remote config as often as they like: /assign
    and /events keep their whole budget."""
    import time

    from abacus.http import api
    from abacus.http.rate_limit import RateLimiter

    now = time.time()
    monkeypatch.setattr(api, "rate_limiter", RateLimiter(2, share_every_seconds=0, clock=lambda: now))
    for sample in ("posthog_remote_config", "posthog_remote_config_script") * 5:
        response = invoke("AssignFunction", sample_event(sample))
        assert response["statusCode"] == 200 and response["headers"]["Cache-Control"] == "public, max-age=60"
    assert answer(invoke("AssignFunction", sample_event("assign")))[0] == 200
    assert answer(invoke("IngestFunction", sample_event("post_events")))[0] == 200
    assert answer(invoke("AssignFunction", sample_event("assign")))[0] == 429  # the budget, spent by them alone
