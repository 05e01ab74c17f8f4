"""CORS as API Gateway applies an HttpApi's CorsConfiguration: it answers every preflight itself,
whatever the routes, and puts the configured headers on every answer to a request from an allowed
origin, ignoring any CORS headers a function returns."""

from abacus_local.template import CorsPolicy

_ALLOW_ORIGIN = "access-control-allow-origin"


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    """A browser's preflight: OPTIONS with Origin and Access-Control-Request-Method."""
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def preflight_headers(policy: CorsPolicy, headers: dict[str, str]) -> dict[str, str]:
    """The headers of the 204 answering a preflight: none for an origin not allowed. The methods
    and headers are the configured ones, whatever was asked: the browser compares them."""
    answer = response_headers(policy, headers.get("origin", ""))
    if not answer:
        return {}
    answer["access-control-allow-methods"] = ",".join(policy.allow_methods)
    if policy.allow_headers:
        answer["access-control-allow-headers"] = ",".join(policy.allow_headers)
    if policy.max_age is not None:
        answer["access-control-max-age"] = str(policy.max_age)
    return answer


def response_headers(policy: CorsPolicy, origin: str) -> dict[str, str]:
    """The CORS headers of an answer to a request from `origin` (none when it is not allowed)."""
    if not origin or not policy.allows_origin(origin):
        return {}
    answer = {_ALLOW_ORIGIN: "*" if "*" in policy.allow_origins and not policy.allow_credentials else origin}
    if policy.allow_credentials:
        answer["access-control-allow-credentials"] = "true"
    if policy.expose_headers:
        answer["access-control-expose-headers"] = ",".join(policy.expose_headers)
    return answer


def with_cors(policy: CorsPolicy | None, origin: str, headers: dict[str, str]) -> dict[str, str]:
    """A function's answer headers, its own CORS headers replaced by the configuration's."""
    if policy is None:
        return headers
    kept = {name: value for name, value in headers.items() if not name.startswith("access-control-")}
    return kept | response_headers(policy, origin)
