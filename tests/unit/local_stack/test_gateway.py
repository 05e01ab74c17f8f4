"""The local gateway's translation between HTTP and API Gateway HTTP API payload 2.0."""

import base64
import json

from abacus_local.gateway import http_api_event, http_response
from abacus_local.template import CorsPolicy, Template


def route_for(path: str, method: str = "POST"):
    route = next(r for r in Template().routes() if r.method == method and r.pattern.match(path))
    return route, route.pattern.match(path)


def test_json_request_becomes_a_payload_2_event():
    route, match = route_for("/experiments/new-checkout/launch")
    headers = {"Content-Type": "application/json", "X-Multi": "a", "Cookie": "a=1; b=2"}
    event = http_api_event(route, "POST", "/experiments/new-checkout/launch", "x=1&x=2", headers, b'{"a": 1}', match)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /experiments/{key}/launch"
    assert event["pathParameters"] == {"key": "new-checkout"}
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["headers"]["content-type"] == "application/json"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"


def test_binary_or_compressed_body_is_base64():
    route, match = route_for("/events")
    gzip_bytes = b"\x1f\x8b\x08\x00binary"
    event = http_api_event(route, "POST", "/events", "", {"content-encoding": "gzip"}, gzip_bytes, match)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == gzip_bytes


def test_routes_prefer_the_most_specific_path():
    route, _ = route_for("/experiments/abc/results", "GET")
    assert route.path == "/experiments/{key}/results"
    route, _ = route_for("/experiments/abc", "GET")
    assert route.path == "/experiments/{key}"


def test_function_results_become_http_responses():
    status, headers, cookies, body = http_response(
        {
            "statusCode": 201,
            "headers": {"X-A": "1"},
            "cookies": ["c=1"],
            "body": base64.b64encode(b"\x00").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (status, headers, cookies, body) == (201, {"x-a": "1"}, ["c=1"], b"\x00")
    # A bare value is, as API Gateway treats it, a 200 JSON body.
    assert http_response({"ok": True}) == (
        200,
        {"content-type": "application/json"},
        [],
        json.dumps({"ok": True}).encode(),
    )


def _raw_exchange(server, request: bytes) -> tuple[bytes, float]:
    """Sends raw bytes, reads the answer until the server closes; returns it and the seconds taken."""
    import socket
    import time

    started = time.monotonic()
    with socket.create_connection(server.server_address, timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


def test_a_malformed_content_length_or_a_short_body_gets_400_not_a_dropped_connection():
    import threading

    from abacus_local.gateway import Gateway

    server = Gateway(("127.0.0.1", 0), Template().routes(), {})
    server.body_timeout_s = 0.5
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for length in (b":", b"z3&l)lj", b"-4"):
            answer, _ = _raw_exchange(
                server, b"GET /experiments HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
            )
            assert answer.startswith(b"HTTP/1.1 400") and answer.endswith(b'{"message":"Bad Request"}'), answer
        # A body announced and never sent: answered once the wait is over, the connection closed.
        answer, seconds = _raw_exchange(
            server, b"GET /experiments/x/results/history HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400") and 0.4 < seconds < 5, (answer, seconds)
    finally:
        server.shutdown()
        server.server_close()


def cors_policy(allowed_origins: str | None = None) -> CorsPolicy:
    policy = Template().cors(allowed_origins)
    assert policy is not None, "template.yaml's HttpApi has a CorsConfiguration"
    return policy


def test_the_local_gateway_takes_its_cors_policy_from_the_template():
    policy = cors_policy()
    assert policy.allow_origins == ("*",)  # the AllowedOrigins parameter's default
    assert "authorization" not in policy.allow_headers and "content-type" in policy.allow_headers
    assert cors_policy("https://shop.example.com").allow_origins == ("https://shop.example.com",)


def test_preflights_are_answered_as_api_gateway_answers_them():
    from abacus_local import cors

    policy = cors_policy("https://shop.example.com")
    asked = {"origin": "https://shop.example.com", "access-control-request-method": "POST"}
    assert cors.is_preflight("OPTIONS", asked) and not cors.is_preflight("OPTIONS", {"origin": "x"})
    allowed = cors.preflight_headers(policy, asked | {"access-control-request-headers": "content-type"})
    assert allowed["access-control-allow-origin"] == "https://shop.example.com"
    assert allowed["access-control-allow-methods"] == "GET,POST"
    assert allowed["access-control-allow-headers"] == "content-type"
    assert allowed["access-control-max-age"] == "600"
    # Another origin gets no CORS header at all: its browser refuses the request.
    assert cors.preflight_headers(policy, asked | {"origin": "https://evil.example"}) == {}


def test_answers_carry_the_configured_cors_headers_not_the_functions():
    from abacus_local import cors

    policy = cors_policy()
    own = {"content-type": "application/json", "access-control-allow-origin": "https://function.example"}
    headers = cors.with_cors(policy, "https://shop.example.com", own)
    assert headers == {
        "content-type": "application/json",
        "access-control-allow-origin": "*",
        "access-control-expose-headers": "retry-after",
    }
    assert cors.with_cors(policy, "", own) == {"content-type": "application/json"}  # no Origin, no CORS
