"""posthog-js's browser bundles (GET /static/array.js and its variants: abacus.posthog.scripts),
which PostHog's HTML snippet loads from its api_host. AssignFunction serves them: the function
of posthog-js's other requests (its remote config, its flags), warm from app traffic, and the only
one with PostHogJsLayer. No credentials: the bundles are public, like npm's."""

import base64

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.http.api import ANY_QUERY_PARAMETERS
from abacus.http.responses import ERROR_DESCRIPTIONS, ErrorBody
from abacus.posthog import scripts

router = APIGatewayHttpRouter()
RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "The bundle (gzip-compressed when the request accepts it), cached a day, with its ETag",
        "content": {"text/javascript": {"schema": {"type": "string"}}},
    },
    304: {"description": "Not modified: the bundle is the one of the ETag sent in If-None-Match"},
    404: {
        "description": "Not in this build (a local checkout without make posthog-js)",
        "content": {"application/json": {"model": ErrorBody}},
    },
    # Every route's, in the one error shape (Powertools documents its own otherwise); these take any query.
    422: {"description": ERROR_DESCRIPTIONS[422], "content": {"application/json": {"model": ErrorBody}}},
}


def _serve(name: str) -> None:
    @router.get(
        f"/static/{name}",
        summary=f"posthog-js's {name}, as PostHog's snippet loads it from the api_host",
        tags=["posthog"],
        responses=RESPONSES,
        # Any query: a page may add its own cache-buster (?v=...), as posthog-js does to its scripts.
        openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
    )
    def bundle(request: Request) -> Response[str]:
        headers = request.resolved_event.headers
        served = scripts.answer(name, headers.get("accept-encoding", ""), headers.get("if-none-match", ""))
        return _binary(served)


def _binary(served: scripts.Answer) -> Response[str]:
    """A binary answer, base64 in the function's result as API Gateway takes it. (Powertools would
    encode a bytes body itself, but its response validation first decodes it as UTF-8.)"""
    response = Response(served.status, None, base64.b64encode(served.body).decode(), served.headers)
    response.base64_encoded = True
    return response


for _name in scripts.BUNDLES:
    _serve(_name)
