"""Results (admin key): the latest or a dated snapshot, the daily history, recomputing now, and the
report page, which a signed link opens without the key."""

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseContentSchema,
    OpenAPIResponseHeader,
)
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.experiments import definitions
from abacus.http import downloads
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
from abacus.results import csv_export, snapshots
from abacus.results.report import html_page
from abacus.routes.admin import ADMIN_SECURITY, AdminProject, RouteDocumentation, admin_operation

router = APIGatewayHttpRouter()


# `format`, or else the Accept header, asks for CSV: one row per day, metric and variant
# (results/csv_export.py). Errors stay JSON, in the API's one error shape.
Format = Annotated[
    Literal["json", "csv"] | None, Query(alias="format", description="csv: the rows as CSV; json (the default)")
]
# The answer depends on the Accept header: a cache must keep the two apart.
VARY = {"Vary": "Accept"}


def _with_csv(documentation: RouteDocumentation, rows: str, filename: str) -> RouteDocumentation:
    """A route's documentation with its 200 in CSV too, and the name a CSV answer saves as."""
    ok = documentation["responses"][200]
    as_csv: OpenAPIResponseContentSchema = {"schema": {"type": "string", "description": rows}}
    content = {**ok.get("content", {}), "text/csv": as_csv}
    disposition: OpenAPIResponseHeader = {
        "description": f'The CSV answer\'s: attachment; filename="{filename}"',
        "schema": {"type": "string"},
    }
    vary: OpenAPIResponseHeader = {"description": "Accept: it chooses JSON or CSV", "schema": {"type": "string"}}
    headers = {"Content-Disposition": disposition, "Vary": vary}
    documentation["responses"][200] = {**ok, "content": content, "headers": headers}
    return documentation


def _wants_csv(request: Request, format_: str | None) -> bool:
    if format_ is not None:
        return format_ == "csv"
    return downloads.prefers_csv(request.resolved_event.headers.get("accept"))


@router.get(
    "/experiments/<key>/results",
    **_with_csv(
        admin_operation(
            "results",
            "The latest snapshot, or the one of `date` (JSON, or CSV: `format=csv` or `Accept: text/csv`)",
            200,
            Results,
            "The snapshot, or pending before the first",
            ADMIN_ERRORS,
        ),
        "The day's rows, one per metric and variant, under a header row (the header alone while pending)",
        "<key>-results-<date>.csv (<key>-results.csv while pending)",
    ),
)
def get_results(
    project_id: AdminProject,
    key: str,
    request: Request,
    date: Annotated[str | None, Query(max_length=10)] = None,
    format_: Format = None,
) -> Response[str]:
    answer = snapshots.snapshot(project_id, key, date)
    if not _wants_csv(request, format_):
        return json_response(200, answer, VARY)
    if answer["status"] == "pending":  # a table of no rows yet; the JSON says when it will have some
        return downloads.csv_response(csv_export.to_csv([]), f"{key}-results.csv", VARY)
    return downloads.csv_response(csv_export.to_csv([answer]), f"{key}-results-{answer['date']}.csv", VARY)


@router.get(
    "/experiments/<key>/results/history",
    **_with_csv(
        admin_operation(
            "results",
            "The daily series of snapshots (JSON, or CSV: `format=csv` or `Accept: text/csv`)",
            200,
            ResultsHistory,
            "One entry per day",
            ADMIN_ERRORS,
        ),
        "Every day's rows, oldest first, one per day, metric and variant, under a header row",
        "<key>-results-history.csv",
    ),
)
def get_history(
    project_id: AdminProject,
    key: str,
    request: Request,
    format_: Format = None,
) -> Response[str]:
    if not _wants_csv(request, format_):
        return json_response(200, snapshots.history(project_id, key), VARY)
    every_day = snapshots.snapshots(project_id, key)
    return downloads.csv_response(csv_export.to_csv(every_day), f"{key}-results-history.csv", VARY)


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
