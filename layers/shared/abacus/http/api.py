"""What the three API handlers share: the Powertools resolver with request validation and strict
JSON, one error shape ({"error": {"code", "message", "field"?}}) for every 4xx and 503, and
credentials (with the project token's rate limit)."""

import json
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, NamedTuple, NoReturn

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Request, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel
from pynamodb.exceptions import PynamoDBException

import abacus.http.snapstart  # noqa: F401 - registers SnapStart's restore hook: every public handler imports this module
from abacus.core import numbers
from abacus.core.answers import FieldError
from abacus.core.cache import TtlCache
from abacus.core.errors import (
    AbacusError,
    BadRequest,
    Forbidden,
    Invalid,
    StorageUnavailable,
    TooLarge,
    Unauthorized,
    field_errors,
)
from abacus.http import body_encodings, rate_limit
from abacus.http.route_query import current_route
from abacus.storage import credentials

logger = Logger()
type Owner = credentials.KeyOwner  # its project and kind (and an admin key's id and name)
# Keys a project owns, by kind asked for: at most one entry per such key, whatever callers send.
_tokens: TtlCache[str, Owner | None] = TtlCache()
_flags_keys: TtlCache[str, Owner | None] = TtlCache()
# Keys no project owns, remembered a while so that an app still sending a rotated token costs one
# read per environment and CacheSeconds; a small LRU, so that keys made up cannot grow it.
UNKNOWN_KEYS_KEPT = 1_000
_unknown_keys: TtlCache[str, bool] = TtlCache(max_entries=UNKNOWN_KEYS_KEPT)
rate_limiter = rate_limit.from_environment()
unknown_key_limiter = rate_limit.unknown_keys_from_environment()
# No token or key is longer (Abacus's are 47 to 50 characters): a longer one is refused before any lookup.
MAX_CREDENTIAL_LENGTH = 200
# Where validated requests carry a token (Powertools' error locations): /assign, /events, /flags/,
# /decide/, and the remote config's path.
CREDENTIAL_FIELDS = {("body", "token"), ("body", "api_key"), ("path", "token")}
MAX_BODY_BYTES = 1_000_000
LONGEST_INTEGER = 308  # digits: larger integers do not fit a double (DynamoDB numbers take 38)
# Every route under these takes the admin key; the others (assign, events) take the project token.
ADMIN_PATH_PREFIXES = ("/experiments", "/webhooks")


# PostHog's SDKs add query parameters of their own (v, ip, _, ver, compression, ...): the routes
# serving them document this free-form parameter and take any query. Every other route refuses a
# parameter it does not declare, so that a typo (`?limt=10`) is an error rather than ignored.
ANY_QUERY_PARAMETERS = {
    "name": "parameters",
    "in": "query",
    "required": False,
    "style": "form",
    "explode": True,
    "description": "Whatever the SDK adds (v, ip, _, ver, compression...): ignored",
    # Any names and values: the route reads none of them, so no value of any kind is refused.
    "schema": {"type": "object", "additionalProperties": True},
}


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 defines it: NaN and Infinity (which Python's parser takes) and numbers
    beyond a double's range are refused, so that no non-finite number ever reaches storage or
    statistics."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_int_in_range)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text[:20], 0) from None


def _refuse_constant(name: str) -> NoReturn:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError(f"{text[:20]} is out of range", text, 0)
    return value


def _int_in_range(text: str) -> int:
    if len(text.lstrip("-")) > LONGEST_INTEGER:
        raise json.JSONDecodeError(f"{text[:20]}... is out of range", text, 0)
    return int(text)


def json_response(status: int, body: Mapping[str, object], headers: dict[str, str] | None = None) -> Response[str]:
    """A JSON answer, NaN and Infinity written null (a snapshot stored before they were kept out
    may hold them): every body is JSON that any client parses."""
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=numbers.dumps(body), headers=headers
    )


def error_response(error: AbacusError) -> Response[str]:
    return json_response(error.status, error.to_body(), error.headers())


class JsonApiResolver(APIGatewayHttpResolver):
    """Request bodies are JSON whatever their Content-Type says: curl's default
    (application/x-www-form-urlencoded) and text/plain (how browser SDKs send beacons) included.
    Powertools would otherwise parse them as forms or refuse them before any route runs."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        headers = event.get("headers") or {}
        body = event.get("body") or ""
        # Base64 is 4 characters for 3 bytes.
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
        if size > MAX_BODY_BYTES:
            return _raw_error(TooLarge(f"body: larger than {MAX_BODY_BYTES // 1_000_000} MB", field="body"))
        try:
            event = body_encodings.plain_json_event(event, MAX_BODY_BYTES)
        except AbacusError as error:
            return _raw_error(error)
        if body and not headers.get("content-type", "").startswith(content_types.APPLICATION_JSON):
            event = {**event, "headers": {**event["headers"], "content-type": content_types.APPLICATION_JSON}}
        return super().resolve(event, context)


def _raw_error(error: AbacusError) -> dict[str, Any]:
    """An error answered before routing, in API Gateway's payload 2.0 response format."""
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **error.headers()},
        "body": json.dumps(error.to_body()),
        "isBase64Encoded": False,
    }


def json_body(request: Request) -> Any:
    """The request's JSON body, for routes that take any JSON (400 when unreadable)."""
    try:
        return request.resolved_event.json_body
    except json.JSONDecodeError as error:
        raise BadRequest(f"body: not valid JSON ({error.msg})", field="body") from None
    except (UnicodeDecodeError, TypeError):
        raise BadRequest("body: not valid JSON", field="body") from None


def build_validators(*models: type[BaseModel]) -> None:
    """Builds now, at init (so inside SnapStart's snapshot, not in the first request), the
    validators of models that defer their build and that every request of this function uses.
    The experiment spec's models defer theirs (experiments/metrics_spec.py, Strict): the console's
    pages, served by the same function as the API that validates them, mostly never do."""
    for model in models:
        model.model_rebuild()


def create_app() -> APIGatewayHttpResolver:
    """A resolver whose routes validate their pydantic-typed bodies and answer errors in one shape."""
    app = JsonApiResolver(enable_validation=True, json_body_deserializer=strict_json)
    app.use([refuse_unknown_query_parameters, refuse_array_bodies])

    def on_invalid_request(error: RequestValidationError) -> Response[str]:
        return error_response(credentials_error(app) or validation_error(error.errors()))

    def on_unknown_route(_: Exception) -> Response[str]:
        event = app.current_event
        return json_response(
            HTTPStatus.NOT_FOUND,
            {"error": {"code": "not_found", "message": f"no route {event.http_method} {event.path}"}},
        )

    # Registered by calls, not as decorators: Powertools' exception_handler is not annotated.
    app.exception_handler(AbacusError)(error_response)
    app.exception_handler(RequestValidationError)(on_invalid_request)
    app.exception_handler(PynamoDBException)(on_storage_failure)
    app.exception_handler(UnicodeDecodeError)(on_undecodable_body)
    app.not_found(on_unknown_route)
    return app


def refuse_unknown_query_parameters(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """The middleware that answers 422 for a query parameter the route does not declare (after
    the credentials of an admin route), unless the route takes any (ANY_QUERY_PARAMETERS)."""
    query = app.current_event.query_string_parameters
    if not query:
        return next_middleware(app)  # most requests: nothing to look up
    route = current_route(app)
    unknown = sorted(set(query) - route.query_parameters)
    if unknown and "parameters" not in route.openapi_extensions:
        errors: list[FieldError] = [{"field": name, "message": "not a parameter of this route"} for name in unknown]
        return error_response(credentials_error(app) or Invalid.of(errors))
    return next_middleware(app)


def refuse_array_bodies(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """The middleware that answers 422 for a JSON array sent to a route whose body is an object (a
    pydantic model's), after the credentials of an admin route: Powertools would validate the
    array's first element as the body and drop the rest. Routes that take any JSON (PostHog's
    batches among them) take arrays as before."""
    body = app.current_event.decoded_body  # base64 undone, as the validation will read it
    if not body or not body.lstrip().startswith("[") or not current_route(app).object_body:
        return next_middleware(app)  # most requests: no array to look at
    try:
        is_array = isinstance(app.current_event.json_body, list)
    except (ValueError, TypeError):
        return next_middleware(app)  # not JSON: the validation says so
    if is_array:
        errors: list[FieldError] = [{"field": "body", "message": "expected a JSON object, not an array"}]
        return error_response(credentials_error(app) or Invalid.of(errors))
    return next_middleware(app)


def on_storage_failure(error: PynamoDBException) -> Response[str]:
    logger.warning("storage refused after retries", extra={"error": type(error).__name__})
    return error_response(StorageUnavailable("storage is unavailable right now: send the request again"))


def on_undecodable_body(_: UnicodeDecodeError) -> Response[str]:
    return error_response(BadRequest("body: not valid UTF-8", field="body"))


def credentials_error(app: APIGatewayHttpResolver) -> AbacusError | None:
    """Powertools validates a request before the route runs; on admin routes credentials still
    come first, so that a caller without them learns nothing beyond "not allowed"."""
    if not app.current_event.path.startswith(ADMIN_PATH_PREFIXES):
        return None
    try:
        project_of_admin_key(app.current_event.headers)
    except AbacusError as error:
        return error
    return None


def validation_error(errors: Sequence[Mapping[str, Any]]) -> AbacusError:
    """Every validation error as a 422 naming the fields (errors.field_errors); 400 for unreadable JSON."""
    unreadable = next((error for error in errors if error.get("type") == "json_invalid"), None)
    if unreadable is not None:
        reason = unreadable.get("ctx", {}).get("error", "unreadable")
        return BadRequest(f"body: not valid JSON ({reason})", field="body")
    # A credential too long is refused as the routes that read theirs outside a body refuse it.
    for error in errors:
        location = tuple(error.get("loc", ()))
        if error.get("type") == "string_too_long" and location in CREDENTIAL_FIELDS:
            return _too_long(location[-1])
    # Powertools puts where the value came from first (body, query): the field is named as sent.
    located = [{**error, "loc": tuple(error.get("loc", ()))[1:]} if _from_request(error) else error for error in errors]
    return Invalid.of(field_errors(located))


def _from_request(error: Mapping[str, Any]) -> bool:
    location = error.get("loc", ())
    return bool(location) and location[0] in ("body", "query")


def base_url(request: Request) -> str:
    """The API's address as the client called it (scheme and domain), for links and the document."""
    return own_origin(request.resolved_event)


def own_origin(event: object) -> str:
    """The API's origin (scheme and domain) as the client called it, from an HTTP API event."""
    if not isinstance(event, APIGatewayProxyEventV2):
        raise TypeError("the functions serve API Gateway's HTTP API (payload 2.0) events only")
    return f"{event.headers.get('x-forwarded-proto', 'https')}://{event.request_context.domain_name}"


class AdminCaller(NamedTuple):
    """Who calls an admin route: the project their admin key opens, and which key it is, as an
    experiment's history records it (`by`): "Alice (ak_1a2b3c4d)", or "admin key" for the
    project's own."""

    project_id: str
    actor: str


def admin_project(request: Request) -> str:
    """The project whose admin key the request carries: admin routes take it with Depends()."""
    return project_of_admin_key(request.resolved_event.headers)


def admin_caller(request: Request) -> AdminCaller:
    """The project and the admin key of the request: the routes that change something take it
    with Depends(), to record who did."""
    return caller_of_admin_key(request.resolved_event.headers)


def bounded_credential(value: str, field: str) -> str:
    """`value`, a credential; 400 naming `field` when it is longer than any key, so that nothing
    is looked up, hashed or kept for it."""
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise _too_long(field)
    return value


def _too_long(field: str) -> BadRequest:
    return BadRequest(f"{field}: longer than {MAX_CREDENTIAL_LENGTH} characters, which no key is", field=field)


def _bearer(headers: Mapping[str, str]) -> tuple[str, str]:
    """(scheme, key) of the Authorization header, the key bounded."""
    scheme, _, key = (headers.get("authorization") or "").partition(" ")
    return scheme, bounded_credential(key.strip(), "Authorization")


def project_of_admin_key(headers: Mapping[str, str]) -> str:
    """The project whose admin key the headers carry (Authorization: Bearer <admin key>)."""
    return caller_of_admin_key(headers).project_id


def caller_of_admin_key(headers: Mapping[str, str]) -> AdminCaller:
    """The project and the admin key the headers carry (Authorization: Bearer <admin key>): its
    own or a named one; never cached, so that a key revoked or rotated stops at once."""
    scheme, key = _bearer(headers)
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Authorization: send 'Bearer <admin key>'", field="Authorization")
    owner = credentials.key_owner(key)
    if owner is None:
        raise Unauthorized("Authorization: unknown admin key", field="Authorization")
    if owner.kind != credentials.ADMIN:
        raise Forbidden("Authorization: a project token cannot reach admin routes", field="Authorization")
    return AdminCaller(owner.project_id, owner.actor)


def _cached_owner(key: str, known: TtlCache[str, Owner | None], field: str) -> Owner | None:
    """(project id, kind) of a token or flags key, or None: cached for the TTL when a project owns
    it, remembered in the small LRU of unknown keys when none does. A request with an unknown key
    counts in the unknown keys' bucket (429 naming `field` past its limit)."""
    if not _unknown_keys.holds(key):
        owner = known.get(key, lambda: credentials.key_owner(key), keep=lambda found: found is not None)
        if owner is not None:
            return owner
        _unknown_keys.put(key, True)
    unknown_key_limiter.check(rate_limit.UNKNOWN_KEYS, field)
    return None


def token_project(token: str, field: str = "token", counted: bool = True) -> str:
    """The project a public project token belongs to (`field` names where it was sent). Tokens
    are cached for the cache's TTL (the request path reads them on every call); admin keys never
    are, so a rotated one stops at once. `counted`: the request spends the token's per-minute
    budget (TokenRateLimitPerMinute); the remote config's does not."""
    owner = _cached_owner(bounded_credential(token, field), _tokens, field)
    if owner is None:
        raise Unauthorized(f"{field}: unknown project token", field=field)
    project_id, kind = owner.project_id, owner.kind
    if kind != credentials.TOKEN:
        raise Forbidden(f"{field}: that is an admin key; apps send the public project token", field=field)
    if counted:
        rate_limiter.check(project_id, field)
    return project_id


def flags_key_project(request: Request) -> str:
    """The project whose flags key the request carries (Authorization: Bearer <flags key>, which
    PostHog's server SDKs send as their personal or secure API key), checked against the project
    token the SDKs add as `?token=` when there is one. Cached like tokens: SDKs poll every 30 s."""
    scheme, key = _bearer(request.resolved_event.headers)
    token = bounded_credential((request.resolved_event.query_string_parameters or {}).get("token") or "", "token")
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized(
            "Authorization: send 'Bearer <flags key>' (the SDK's personal_api_key)", field="Authorization"
        )
    owner = _cached_owner(key, _flags_keys, "Authorization")
    if owner is None:
        raise Unauthorized("Authorization: unknown flags key", field="Authorization")
    project_id, kind = owner.project_id, owner.kind
    if kind != credentials.FLAGS:
        raise Forbidden(
            f"Authorization: that is the project's {'admin key' if kind == credentials.ADMIN else 'token'}; flag "
            "definitions take its flags key (phs_...), so the admin key never goes to app servers",
            field="Authorization",
        )
    # Checked without the token's rate limit: polls must not use up the apps' requests.
    token_owner = _cached_owner(token, _tokens, "token") if token else None
    if token and (token_owner is None or (token_owner.project_id, token_owner.kind) != (project_id, credentials.TOKEN)):
        raise Forbidden("token: not the project token of the flags key's project", field="token")
    return project_id
