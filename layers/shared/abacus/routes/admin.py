"""What every admin route shares: the admin key it takes (by injection) and the keywords that
document it in the OpenAPI document."""

from typing import Annotated, TypedDict

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from abacus.http.api import AdminCaller, admin_caller, admin_project
from abacus.http.responses import ADMIN_ERRORS, documented

ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminKey": []}]
# An admin route's parameter: the project whose admin key the request carries.
AdminProject = Annotated[str, Depends(admin_project)]
# A route that changes something: the project and the admin key, whose label the history records.
Caller = Annotated[AdminCaller, Depends(admin_caller)]


class RouteDocumentation(TypedDict):
    """The keywords a route decorator takes for the OpenAPI document and the admin key."""

    summary: str
    tags: list[str]
    security: list[dict[str, list[str]]]
    responses: dict[int, OpenAPIResponse]


def admin_operation(
    tag: str,
    summary: str,
    status: int,
    model: type[BaseModel] | None,
    description: str,
    errors: tuple[int, ...] = ADMIN_ERRORS,
) -> RouteDocumentation:
    """The keywords of an admin route's decorator: its summary and tag for the OpenAPI document,
    the admin key it takes, and its answers (success and errors)."""
    return {
        "summary": summary,
        "tags": [tag],
        "security": ADMIN_SECURITY,
        "responses": documented(status, model, description, errors),
    }
