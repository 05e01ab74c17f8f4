"""Results (admin key): the latest or a dated snapshot, the daily history, recomputing now, and the
report page, which a signed link opens without the key."""

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.experiments import definitions
from abacus.http.api import admin_project, base_url, json_response
from abacus.http.page_headers import html_response
from abacus.http.responses import (
    ADMIN_ERRORS,
    ERROR_DESCRIPTIONS,
    ErrorBody,
    ReportLink,
    Results,
    ResultsHistory,
)
from abacus.results import snapshots
from abacus.results.report import html_page
from abacus.routes.admin import ADMIN_SECURITY, AdminProject, admin_operation

router = APIGatewayHttpRouter()


@router.get(
    "/experiments/<key>/results",
    **admin_operation(
        "results",
        "The latest snapshot, or the one of `date`",
        200,
        Results,
        "The snapshot, or pending before the first",
        ADMIN_ERRORS,
    ),
)
def get_results(
    project_id: AdminProject, key: str, date: Annotated[str | None, Query(max_length=10)] = None
) -> Response[str]:
    return json_response(200, snapshots.snapshot(project_id, key, date))


@router.get(
    "/experiments/<key>/results/history",
    **admin_operation(
        "results", "The daily series of snapshots", 200, ResultsHistory, "One entry per day", ADMIN_ERRORS
    ),
)
def get_history(project_id: AdminProject, key: str) -> Response[str]:
    return json_response(200, snapshots.history(project_id, key))


RECOMPUTE_DOCUMENTATION = admin_operation(
    "results", "Compute and store a snapshot now", 200, Results, "The snapshot computed", (*ADMIN_ERRORS, 409)
)
# A run bigger than a request's time goes on through the queue; its snapshot is read later.
RECOMPUTE_DOCUMENTATION["responses"][202] = {
    "description": "Still computing (a large experiment): status pending, and where to read the snapshot",
    "content": {"application/json": {"model": Results}},
}


@router.post("/experiments/<key>/results", **RECOMPUTE_DOCUMENTATION)
def recompute_results(project_id: AdminProject, key: str) -> Response[str]:
    answer = snapshots.recompute(project_id, key, now=datetime.now(UTC))
    return json_response(200 if answer["status"] == "ready" else 202, answer)


@router.post(
    "/experiments/<key>/report/link",
    **admin_operation(
        "results",
        "A link to the report page that works for 15 minutes without the key",
        201,
        ReportLink,
        "The signed link",
        ADMIN_ERRORS,
    ),
)
def report_link(project_id: AdminProject, key: str, request: Request) -> Response[str]:
    definitions.get(project_id, key)
    query = urlencode(snapshots.signed_query(project_id, key, datetime.now(UTC)))
    url = f"{base_url(request)}/experiments/{key}/report?{query}"
    return json_response(201, {"url": url, "expires_in_seconds": int(snapshots.LINK_LIFETIME.total_seconds())})


REPORT_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {"description": "The report page", "content": {"text/html": {"schema": {"type": "string"}}}},
    **{
        code: {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"model": ErrorBody}}}
        for code in (401, 403, 404, 422, 503)
    },
}


@router.get(
    "/experiments/<key>/report",
    summary="The report page (HTML): with the admin key, or the query of a signed link",
    tags=["results"],
    security=[*ADMIN_SECURITY, {}],
    responses=REPORT_RESPONSES,
)
def get_report(
    key: str,
    request: Request,
    project: Annotated[str | None, Query(max_length=200)] = None,
    expires: Annotated[str | None, Query(max_length=20)] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response[str]:
    event = request.resolved_event
    if event.headers.get("authorization"):
        project_id = admin_project(request)
    else:
        link = {"project": project, "expires": expires, "signature": signature}
        project_id = snapshots.check_link(key, {k: v for k, v in link.items() if v is not None}, datetime.now(UTC))
    item = definitions.get(project_id, key)
    page = html_page.page(definitions.to_api(item, with_history=False), snapshots.snapshots(project_id, key))
    return html_response(200, page)
