"""What a middleware needs to know of the route being served: the query parameters its handler
declares, and its OpenAPI extensions. The one place Abacus reads Powertools' internals: 3.37 has
no public way to know them (`app.request` gives the matched path and method, not the parameters).
tests/unit/http/test_route_query.py pins what this reads, so that an upgrade that moves it fails there,
by name, instead of letting unknown query parameters through."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Route


class PowertoolsChanged(RuntimeError):
    """Powertools no longer keeps the matched route where this module reads it."""


@dataclass(frozen=True)
class CurrentRoute:
    query_parameters: frozenset[str]  # as sent: a parameter's alias where it has one
    openapi_extensions: Mapping[str, Any]


def current_route(app: ApiGatewayResolver) -> CurrentRoute:
    """The route matched for the request being resolved (Powertools' own not-found route when none
    matched, which declares no parameter). Call it from a middleware."""
    route = app.context.get("_route")
    if not isinstance(route, Route):
        raise PowertoolsChanged(
            "app.context['_route'] does not hold the matched Route: update abacus/http/route_query.py"
        )
    parameters = frozenset(parameter.alias for parameter in route.dependant.query_params)
    return CurrentRoute(parameters, route.openapi_extensions or {})
