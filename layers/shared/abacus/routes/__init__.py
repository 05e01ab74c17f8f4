"""The API's routes, one Powertools router per part: each function includes the routers it serves
(template.yaml sends it their paths), and the OpenAPI document is generated from all of them.

Handlers take what they need by injection (Depends(admin_project), Request) rather than from the
router's current event, so a router can also be included in the resolver that builds the document.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Depends

from abacus.api import admin_project
from abacus.responses import ADMIN_ERRORS, documented

ADMIN_SECURITY = [{"adminKey": []}]
# An admin route's parameter: the project whose admin key the request carries.
AdminProject = Annotated[str, Depends(admin_project)]


def admin_operation(tag: str, summary: str, status: int, model, description: str, errors=ADMIN_ERRORS) -> dict:
    """The keywords of an admin route's decorator: its summary and tag for the OpenAPI document,
    the admin key it takes, and its answers (success and errors)."""
    return {
        "summary": summary,
        "tags": [tag],
        "security": ADMIN_SECURITY,
        "responses": documented(status, model, description, errors),
    }
