"""Variant assignment for apps (project token): Abacus's /assign and PostHog's /flags/ and /decide/."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.assignment import sticky
from abacus.assignment.spec import AssignRequest
from abacus.experiments import definitions
from abacus.http.api import ANY_QUERY_PARAMETERS, MAX_CREDENTIAL_LENGTH, flags_key_project, json_response, token_project
from abacus.http.responses import (
    TOKEN_ERRORS,
    Assignments,
    DecideAnswer,
    FlagDefinitions,
    FlagsAnswer,
    RemoteConfig,
    documented,
)
from abacus.posthog import config, flags, local_evaluation
from abacus.storage import persons

router = APIGatewayHttpRouter()
TAGS = ["assignment"]


@router.post(
    "/assign",
    summary="The variants a user sees, recording their exposure",
    tags=TAGS,
    responses=documented(200, Assignments, "Each experiment's variant for the user", (*TOKEN_ERRORS, 404)),
)
def assign(request: AssignRequest) -> Response[str]:
    project_id = token_project(request.token)
    variants = sticky.assign(project_id, request, now=datetime.now(UTC))
    if request.payloads:
        return json_response(200, {"assignments": variants, "payloads": sticky.payloads(project_id, variants)})
    return json_response(200, {"assignments": variants})


@router.post(
    "/flags/",
    summary="PostHog SDKs' flag evaluation (v4 answer)",
    tags=["posthog"],
    responses=documented(200, FlagsAnswer, "Each experiment as a multivariate flag", TOKEN_ERRORS),
    openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
)
def flags_for_posthog_sdks(request: flags.FlagsRequest) -> Response[str]:
    project_id = token_project(request.project_token or "", request.token_field)
    values = flags.evaluate(project_id, request, now=datetime.now(UTC))
    known = definitions.project_experiments(project_id)
    versions = {key: item.version for key, item in known.items()}
    return json_response(200, flags.flags_v4(values, versions, sticky.payloads(project_id, values)))


@router.post(
    "/decide/",
    summary="Older PostHog SDKs' flag evaluation",
    tags=["posthog"],
    responses=documented(200, DecideAnswer, "Each experiment's variant, or false", TOKEN_ERRORS),
    openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
)
def decide_for_older_posthog_sdks(request: flags.FlagsRequest) -> Response[str]:
    project_id = token_project(request.project_token or "", request.token_field)
    values = flags.evaluate(project_id, request, now=datetime.now(UTC))
    return json_response(200, flags.decide(values, sticky.payloads(project_id, values)))


# The SDK reads it at every page load: cached a minute by the browser (and by any CDN in front).
# It does not spend the token's per-minute budget, which anyone holding the public token could
# then use up for /assign and /events: it costs no DynamoDB read in steady state (the token and
# the experiments are cached per environment) and API Gateway throttles its route.
REMOTE_CONFIG_CACHE = {"Cache-Control": "public, max-age=60"}
# The project token in the path: no token is longer (a longer one is a 400 naming `token`).
PathToken = Annotated[str, Path(max_length=MAX_CREDENTIAL_LENGTH)]


@router.get(
    "/array/<token>/config",
    summary="posthog-js's remote config: what this server offers",
    tags=["posthog"],
    responses=documented(200, RemoteConfig, "Compressions, whether there are flags, products off", TOKEN_ERRORS),
    openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
)
def remote_config_for_posthog_js(token: PathToken) -> Response[str]:
    return json_response(200, _remote_config(token), REMOTE_CONFIG_CACHE)


@router.get(
    "/array/<token>/config.js",
    summary="posthog-js's remote config, as the script it loads first",
    tags=["posthog"],
    responses={
        200: {"description": "A script storing the config", "content": {"application/javascript": {}}},
        **{code: answer for code, answer in documented(200, RemoteConfig, "", TOKEN_ERRORS).items() if code != 200},
    },
    openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
)
def remote_config_script_for_posthog_js(token: PathToken) -> Response[str]:
    script = config.remote_config_script(_remote_config(token))
    return Response(200, "application/javascript", script, REMOTE_CONFIG_CACHE)


def _remote_config(token: str) -> dict[str, Any]:
    """The project's remote config: whether it has flags is whether it has experiments."""
    project_id = token_project(token, counted=False)
    return config.remote_config(token, has_flags=bool(definitions.project_experiments(project_id)))


# PostHog's server SDKs poll it every 30 s with the last ETag: most polls are answered 304.
DEFINITIONS_RESPONSES: dict[int, OpenAPIResponse] = {
    **documented(200, FlagDefinitions, "The project's running and complete experiments as flags", TOKEN_ERRORS),
    304: {"description": "Not modified: the definitions are those of the ETag sent in If-None-Match"},
}
FLAGS_SECURITY: list[dict[str, list[str]]] = [{"flagsKey": []}]
Handler = Callable[[Request], Response[str]]
DEFINITIONS_SUMMARY = "PostHog server SDKs' flag definitions, for local evaluation (flags key)"


def _definitions_route(path: str, summary: str = DEFINITIONS_SUMMARY) -> Callable[[Handler], Handler]:
    """The decorator of a path the SDKs poll for flag definitions: each takes the flags key."""
    return router.get(
        path,
        summary=summary,
        tags=["posthog"],
        responses=DEFINITIONS_RESPONSES,
        security=FLAGS_SECURITY,
        openapi_extensions={"parameters": [ANY_QUERY_PARAMETERS]},
    )


@_definitions_route("/flags/definitions")
def flag_definitions(request: Request) -> Response[str]:
    project_id = flags_key_project(request)
    experiments = definitions.project_experiments(project_id).values()
    document = local_evaluation.definitions(experiments, persons_joined=persons.joined_any(project_id))
    tag = local_evaluation.etag(document)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if local_evaluation.not_modified(request.resolved_event.headers.get("if-none-match"), tag):
        return Response(304, None, "", headers)
    return json_response(200, document, headers)


@_definitions_route("/api/feature_flag/local_evaluation", DEFINITIONS_SUMMARY + ", as older SDKs ask")
def flag_definitions_for_older_sdks(request: Request) -> Response[str]:
    return flag_definitions(request)


# API Gateway routes a path with a trailing slash apart: the SDKs have sent both.
@_definitions_route("/api/feature_flag/local_evaluation/", DEFINITIONS_SUMMARY + ", as older SDKs ask")
def flag_definitions_with_a_slash(request: Request) -> Response[str]:
    return flag_definitions(request)
