"""A local API Gateway: HTTP requests in, API Gateway HTTP API (payload 2.0) events to the functions,
their answers back out as HTTP responses. Also Lambda's Invoke API (as `sam local start-lambda`
offers), so that scheduled functions can be invoked with the event EventBridge would send."""

import base64
import json
import re
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

from abacus_local import cors
from abacus_local.lambdas import ACCOUNT_ID, FunctionError, LocalFunction
from abacus_local.template import CorsPolicy, Route

DOCS_PATH, OPENAPI_PATH = "/docs", "/openapi.json"
_SWAGGER_DIR = Path(swagger_ui.__file__).parent
_SWAGGER_JS = (_SWAGGER_DIR / "swagger-ui-bundle.min.js").read_text()
_SWAGGER_CSS = (_SWAGGER_DIR / "swagger-ui.min.css").read_text()
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))")


def http_api_event(route: Route, method: str, raw_path: str, query: str, headers: dict, body: bytes, match) -> dict:
    """The API Gateway HTTP API payload 2.0 event for one request (as documented by AWS)."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    lowered.setdefault("x-forwarded-proto", "http")  # API Gateway sets it; locally it is plain HTTP
    now = datetime.now(UTC)
    event = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if "cookie" in lowered:
        event["cookies"] = [c.strip() for c in lowered.pop("cookie").split(";")]
    if query:
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if match.groupdict():
        event["pathParameters"] = {name: unquote(value) for name, value in match.groupdict().items()}
    if body:
        content_type = lowered.get("content-type", "")
        text = _as_text(body) if _TEXT_TYPES.match(content_type) and "content-encoding" not in lowered else None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = text
    return event


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def http_response(result) -> tuple[int, dict[str, str], list[str], bytes]:
    """A payload 2.0 function result as (status, headers, cookies, body). A result without a
    statusCode is, as API Gateway treats it, a 200 JSON body."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return 200, {"content-type": "application/json"}, [], json.dumps(result).encode()
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ",".join(str(v) for v in values)
    return int(result["statusCode"]), headers, list(result.get("cookies") or []), raw


class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections under concurrent clients; API
    # Gateway queues them.
    request_queue_size = 256
    # How long a request's announced body may take to arrive.
    body_timeout_s = 10.0

    def __init__(
        self,
        address: tuple[str, int],
        routes: list[Route],
        functions: dict[str, LocalFunction],
        cors_policy: CorsPolicy | None = None,
    ):
        super().__init__(address, _RequestHandler)
        self.routes = routes
        self.functions = functions
        self.cors_policy = cors_policy

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"


class _RequestHandler(BaseHTTPRequestHandler):
    server: Gateway
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as API Gateway answers: with Nagle's algorithm the body, written after the
    # headers, waited for the client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet: the functions log what matters."""

    def log_error(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        traceback.print_exc()
        super().log_message(format, *args)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        if body is None:
            # A front end's answer to a malformed request: it never reaches a function.
            self.close_connection = True
            self._send(400, {"content-type": "application/json"}, [], b'{"message":"Bad Request"}')
            return
        policy = self.server.cors_policy
        headers = {name.lower(): value for name, value in self.headers.items()}
        if policy is not None and cors.is_preflight(self.command, headers):
            self._send(204, cors.preflight_headers(policy, headers), [], b"", preflight=True)
            return
        invoke = INVOKE_PATH.match(parts.path)
        if invoke and self.command == "POST":
            self._invoke(invoke.group("name"), body)
            return
        if parts.path == DOCS_PATH and self.command == "GET":
            self._swagger_ui()
            return
        for route in self.server.routes:
            match = route.pattern.match(parts.path)
            if match and route.method == self.command:
                self._send(*self._call(route, parts.path, parts.query, body, match))
                return
        # API Gateway's own answer for a request that matches no route.
        self._send(404, {"content-type": "application/json"}, [], b'{"message":"Not Found"}')

    def _body(self) -> bytes | None:
        """The request's body; None when its Content-Length is not a length or the body sent is
        shorter (waiting BODY_TIMEOUT_S for the rest, as a front end does before giving up)."""
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            return None
        if length < 0:
            return None
        if length == 0:
            return b""
        self.connection.settimeout(self.server.body_timeout_s)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            return None
        finally:
            self.connection.settimeout(None)
        return body if len(body) == length else None

    def _call(self, route: Route, path: str, query: str, body: bytes, match) -> tuple:
        event = http_api_event(route, self.command, path, query, dict(self.headers), body, match)
        try:
            return http_response(self.server.functions[route.function].invoke(event))
        except FunctionError as error:  # API Gateway's answer when the function itself fails
            BaseHTTPRequestHandler.log_message(self, "%s %s: the function failed: %s", self.command, path, error)
            return 500, {"content-type": "application/json"}, [], b'{"message":"Internal Server Error"}'

    def _swagger_ui(self) -> None:
        """Swagger UI (Powertools' own page, scripts inlined: no internet needed) over the
        document the API serves at /openapi.json."""
        route = next(r for r in self.server.routes if r.path == OPENAPI_PATH and r.method == "GET")
        status, headers, cookies, document = self._call(route, OPENAPI_PATH, "", b"", route.pattern.match(OPENAPI_PATH))
        if status != 200:
            self._send(status, headers, cookies, document)
            return
        page = generate_swagger_html(document.decode(), _SWAGGER_JS, _SWAGGER_CSS, "", None)
        self._send(200, {"content-type": "text/html; charset=utf-8"}, [], page.encode())

    def _invoke(self, name: str, payload: bytes) -> None:
        function = self.server.functions.get(name)
        if function is None:
            message = {"Type": "User", "message": f"Function not found: {name}"}
            self._send(404, {"content-type": "application/json"}, [], json.dumps(message).encode())
            return
        try:
            event = json.loads(payload or b"{}")
        except ValueError:
            message = {"Type": "User", "message": "Could not parse request body into json"}
            self._send(400, {"content-type": "application/json"}, [], json.dumps(message).encode())
            return
        try:
            result = function.invoke(event)
        except FunctionError as error:  # reported to the caller as Lambda reports it
            headers = {"content-type": "application/json", "x-amz-function-error": "Unhandled"}
            self._send(200, headers, [], json.dumps(error.payload).encode())
            return
        self._send(200, {"content-type": "application/json"}, [], json.dumps(result).encode())

    def _send(
        self, status: int, headers: dict[str, str], cookies: list[str], body: bytes, preflight: bool = False
    ) -> None:
        if not preflight:
            headers = cors.with_cors(self.server.cors_policy, self.headers.get("origin", ""), headers)
        self.send_response(status)
        for name, value in headers.items():
            if name not in ("content-length", "connection"):
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of the body it leaves out
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # The client left before the answer (a browser's beacon as its page closed): as
                # API Gateway does, the request was served all the same.
                self.close_connection = True

    def __getattr__(self, name: str) -> Callable[[], None]:
        """Every method is routed (http.server would answer one it has no do_METHOD for with 501):
        API Gateway answers a method no route has, TRACE or PROPFIND as much as DELETE, with 404."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)
