"""Variant assignment for apps (project token): Abacus's /assign and PostHog's /flags/ and /decide/."""

from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus import assignment, posthog_flags
from abacus.api import ANY_QUERY_PARAMETERS, json_response, token_project
from abacus.responses import TOKEN_ERRORS, Assignments, DecideAnswer, FlagsAnswer, documented
from abacus.schemas import AssignRequest

router = APIGatewayHttpRouter()
TAGS = ["assignment"]


@router.post(
    "/assign",
    summary="The variants a user sees, recording their exposure",
    tags=TAGS,
    responses=documented(200, Assignments, "Each experiment's variant for the user", (*TOKEN_ERRORS, 404)),
)
def assign(request: AssignRequest) -> Response[str]:
    variants = assignment.assign(token_project(request.token), request, now=datetime.now(UTC))
    return json_response(200, {"assignments": variants})


@router.post(
    "/flags/",
    summary="PostHog SDKs' flag evaluation (v4 answer)",
    tags=["posthog"],
    responses=documented(200, FlagsAnswer, "Each experiment as a multivariate flag", TOKEN_ERRORS),
    openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
)
def flags_for_posthog_sdks(request: posthog_flags.FlagsRequest) -> Response[str]:
    project_id = token_project(request.project_token or "")
    values = posthog_flags.evaluate(project_id, request, now=datetime.now(UTC))
    versions = {key: item.version for key, item in assignment.project_experiments(project_id).items()}
    return json_response(200, posthog_flags.flags_v4(values, versions))


@router.post(
    "/decide/",
    summary="Older PostHog SDKs' flag evaluation",
    tags=["posthog"],
    responses=documented(200, DecideAnswer, "Each experiment's variant, or false", TOKEN_ERRORS),
    openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
)
def decide_for_older_posthog_sdks(request: posthog_flags.FlagsRequest) -> Response[str]:
    project_id = token_project(request.project_token or "")
    return json_response(200, posthog_flags.decide(posthog_flags.evaluate(project_id, request, now=datetime.now(UTC))))
