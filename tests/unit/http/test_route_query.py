"""abacus.http.route_query reads Powertools' internals (no public API tells a middleware the matched
route's query parameters): these tests pin what it reads, so that a Powertools upgrade that moves
it fails here, by name, rather than letting unknown query parameters through."""

import json
from importlib.metadata import version
from typing import Annotated

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from abacus.http.route_query import CurrentRoute, PowertoolsChanged, current_route
from tests.conftest import sample_event

UPGRADE_BROKE_IT = (
    f"aws-lambda-powertools {version('aws-lambda-powertools')} no longer keeps the matched route's query "
    "parameters where abacus/http/route_query.py reads them: update it (and this test) before upgrading"
)


class Named(BaseModel):
    name: str


def resolver_seeing_routes() -> tuple[APIGatewayHttpResolver, list[CurrentRoute]]:
    """A resolver with three kinds of route, whose middleware records what current_route() saw."""
    app = APIGatewayHttpResolver(enable_validation=True)
    seen: list[CurrentRoute] = []

    def record(app: APIGatewayHttpResolver, next_middleware):
        seen.append(current_route(app))
        return next_middleware(app)

    app.use([record])

    @app.get("/declared")
    def declared(limit: Annotated[int, Query(ge=1)] = 1, after: Annotated[str | None, Query(alias="from")] = None):
        return {"limit": limit, "after": after}

    @app.get("/free", openapi_extensions={"parameters": [{"name": "parameters", "in": "query"}]})
    def free():
        return {}

    @app.post("/<key>/none")
    def none(key: str):
        return Response(200, "application/json", json.dumps({"key": key}))

    @app.post("/model")
    def model(body: Named):
        return {"name": body.name}

    @app.post("/optional-model")
    def optional_model(body: Named | None = None):
        return {}

    return app, seen


def request(
    app: APIGatewayHttpResolver, method: str, path: str, query: dict[str, str] | None = None, body: str | None = None
) -> int:
    event = sample_event("get_openapi_document", path=path)
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = f"{method} {path}"
    event["queryStringParameters"] = query
    event["body"] = body
    try:
        return app.resolve(event, LambdaContext())["statusCode"]
    except Exception as error:  # noqa: BLE001 - whatever broke, say what it means
        pytest.fail(f"{UPGRADE_BROKE_IT}: {error!r}")


def test_the_query_parameters_a_route_declares_are_found_by_the_names_sent():
    app, seen = resolver_seeing_routes()
    assert request(app, "GET", "/declared", {"limit": "2", "from": "a"}) == 200
    assert seen == [CurrentRoute(frozenset({"limit", "from"}), {})], UPGRADE_BROKE_IT


def test_a_route_without_query_parameters_declares_none():
    app, seen = resolver_seeing_routes()
    assert request(app, "POST", "/some-key/none") == 200
    assert seen == [CurrentRoute(frozenset(), {})], UPGRADE_BROKE_IT


def test_a_route_openapi_extensions_are_found():
    app, seen = resolver_seeing_routes()
    assert request(app, "GET", "/free", {"v": "4"}) == 200
    assert seen[0].query_parameters == frozenset(), UPGRADE_BROKE_IT
    assert "parameters" in seen[0].openapi_extensions, UPGRADE_BROKE_IT


def test_no_route_is_powertools_not_found_route_which_declares_nothing():
    app, seen = resolver_seeing_routes()
    assert request(app, "GET", "/nowhere", {"x": "1"}) == 404
    assert seen == [CurrentRoute(frozenset(), {})], UPGRADE_BROKE_IT


def test_outside_a_request_it_says_what_changed():
    app, _ = resolver_seeing_routes()
    with pytest.raises(PowertoolsChanged, match=r"route_query\.py"):
        current_route(app)


def test_a_route_whose_body_is_a_model_is_told_from_one_without_a_body():
    app, seen = resolver_seeing_routes()
    assert request(app, "POST", "/model", body='{"name": "a"}') == 200
    assert request(app, "POST", "/optional-model", body='{"name": "b"}') == 200
    assert request(app, "POST", "/some-key/none") == 200
    assert [route.object_body for route in seen] == [True, True, False], UPGRADE_BROKE_IT
