"""What a middleware needs to know of the route being served: the query parameters its handler
declares, its OpenAPI extensions, and whether its body is a model's. The one place Abacus reads
Powertools' internals: 3.37 has no public way to know them (`app.request` gives the matched path
and method, not the parameters). tests/unit/http/test_route_query.py pins what this reads, so that
an upgrade that moves it fails there, by name, instead of letting unknown query parameters (or an
array for a model's body) through."""

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Route
from pydantic import BaseModel


class PowertoolsChanged(RuntimeError):
    """Powertools no longer keeps the matched route where this module reads it."""


@dataclass(frozen=True)
class CurrentRoute:
    query_parameters: frozenset[str]  # as sent: a parameter's alias where it has one
    openapi_extensions: Mapping[str, Any]
    object_body: bool = False  # its body is a pydantic model's (a JSON object), not any JSON


def current_route(app: ApiGatewayResolver) -> CurrentRoute:
    """The route matched for the request being resolved (Powertools' own not-found route when none
    matched, which declares no parameter). Call it from a middleware."""
    route = app.context.get("_route")
    if not isinstance(route, Route):
        raise PowertoolsChanged(
            "app.context['_route'] does not hold the matched Route: update abacus/http/route_query.py"
        )
    parameters = frozenset(parameter.alias for parameter in route.dependant.query_params)
    object_body = any(_is_model(parameter.field_info.annotation) for parameter in route.dependant.body_params)
    return CurrentRoute(parameters, route.openapi_extensions or {}, object_body)


def _is_model(annotation: Any) -> bool:
    """A pydantic model, or an optional one (`LaunchRequest | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_model(member) for member in typing.get_args(annotation) if member is not type(None))
    return False
