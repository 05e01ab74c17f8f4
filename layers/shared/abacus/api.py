"""What the three API handlers share: the Powertools resolver with request validation, one JSON
error shape ({"error": {"code", "message", "field"?}}) for every 4xx, and credentials."""

import base64
import json
import zlib
from http import HTTPStatus

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from abacus.cache import TtlCache
from abacus.errors import AbacusError, BadRequest, Forbidden, Invalid, TooLarge, Unauthorized
from abacus.storage import projects

_tokens = TtlCache()
MAX_BODY_BYTES = 1_000_000
# Every route under it takes the admin key; the others (assign, events) take the project token.
ADMIN_PATH_PREFIX = "/experiments"


def json_response(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def error_response(error: AbacusError) -> Response:
    return json_response(error.status, error.to_body())


class JsonApiResolver(APIGatewayHttpResolver):
    """Request bodies are JSON whatever their Content-Type says: curl's default
    (application/x-www-form-urlencoded) and text/plain (how browser SDKs send beacons) included.
    Powertools would otherwise parse them as forms or refuse them before any route runs."""

    def resolve(self, event: dict, context) -> dict:
        headers = event.get("headers") or {}
        body = event.get("body") or ""
        # Base64 is 4 characters for 3 bytes.
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
        if size > MAX_BODY_BYTES:
            return _raw_error(TooLarge(f"body: larger than {MAX_BODY_BYTES // 1_000_000} MB", field="body"))
        if body and headers.get("content-encoding", "").lower() == "gzip":
            try:
                event = _gunzipped(event)
            except TooLarge as error:
                return _raw_error(error)
            except (OSError, EOFError, ValueError, zlib.error):
                return _raw_error(BadRequest("body: not valid gzip", field="body"))
        if body and not headers.get("content-type", "").startswith(content_types.APPLICATION_JSON):
            event = {**event, "headers": {**event["headers"], "content-type": content_types.APPLICATION_JSON}}
        return super().resolve(event, context)


def _raw_error(error: AbacusError) -> dict:
    """An error answered before routing, in API Gateway's payload 2.0 response format."""
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error.to_body()),
        "isBase64Encoded": False,
    }


def _gunzipped(event: dict) -> dict:
    """The event with its gzip-compressed body (as PostHog's SDKs send it) decompressed, refusing
    one that inflates past the size limit (a compression bomb)."""
    raw = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode("latin-1")
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    data = inflater.decompress(raw, MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise TooLarge(f"body: larger than {MAX_BODY_BYTES // 1_000_000} MB once decompressed", field="body")
    if not inflater.eof:
        raise ValueError("truncated gzip")
    headers = {k: v for k, v in event["headers"].items() if k != "content-encoding"}
    return {**event, "body": data.decode("utf-8"), "isBase64Encoded": False, "headers": headers}


def json_body(app: APIGatewayHttpResolver):
    """The request's JSON body, for routes that take any JSON (400 when unreadable)."""
    try:
        return app.current_event.json_body
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
        raise BadRequest("body: not valid JSON", field="body") from None


def create_app() -> APIGatewayHttpResolver:
    """A resolver whose routes validate their pydantic-typed bodies and answer errors in one shape."""
    app = JsonApiResolver(enable_validation=True)

    @app.exception_handler(AbacusError)
    def on_abacus_error(error: AbacusError) -> Response:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def on_invalid_request(error: RequestValidationError) -> Response:
        # Powertools validates the body before the route runs; credentials still come first, so
        # that a caller without them learns nothing about the request beyond "not allowed".
        if app.current_event.path.startswith(ADMIN_PATH_PREFIX):
            try:
                admin_project(app)
            except AbacusError as auth_error:
                return error_response(auth_error)
        return error_response(validation_error(error.errors()))

    @app.exception_handler(UnicodeDecodeError)
    def on_undecodable_body(_: UnicodeDecodeError) -> Response:
        return error_response(BadRequest("body: not valid UTF-8", field="body"))

    @app.not_found
    def on_unknown_route(_: Exception) -> Response:
        event = app.current_event
        return json_response(
            HTTPStatus.NOT_FOUND,
            {"error": {"code": "not_found", "message": f"no route {event.http_method} {event.path}"}},
        )

    return app


def validation_error(errors: list[dict]) -> AbacusError:
    """The first validation error as a 400 (unreadable JSON) or 422 naming the field."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        return BadRequest("body: not valid JSON", field="body")
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = _field_path(location) or "body"
    message = first.get("msg", "invalid")
    if first.get("type") == "missing":
        message = "is required"
    return Invalid(f"{field}: {message}", field=field)


def _field_path(location: list[str]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path


def admin_project(app: APIGatewayHttpResolver) -> str:
    """The project whose admin key the request carries (Authorization: Bearer <admin key>)."""
    header = app.current_event.headers.get("authorization") or ""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Authorization: send 'Bearer <admin key>'", field="Authorization")
    owner = projects.key_owner(key.strip())
    if owner is None:
        raise Unauthorized("Authorization: unknown admin key", field="Authorization")
    project_id, kind = owner
    if kind != projects.ADMIN:
        raise Forbidden("Authorization: a project token cannot reach admin routes", field="Authorization")
    return project_id


def token_project(token: str) -> str:
    """The project a public project token belongs to. Tokens are cached for the cache's TTL (the
    request path reads them on every call); admin keys never are, so a rotated one stops at once."""
    owner = _tokens.get(token, lambda: projects.key_owner(token))
    if owner is None:
        raise Unauthorized("token: unknown project token", field="token")
    project_id, kind = owner
    if kind != projects.TOKEN:
        raise Forbidden("token: that is an admin key; apps send the public project token", field="token")
    return project_id
