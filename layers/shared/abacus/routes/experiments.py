"""Experiments and their lifecycle (admin key): create, list, read, change, launch, stop, ship, archive."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.experiments import definitions
from abacus.experiments.spec import ExperimentCreate, ExperimentPatch, LaunchRequest, ShipRequest
from abacus.http.api import json_response
from abacus.http.responses import ADMIN_ERRORS, Experiment, ExperimentPage
from abacus.routes.admin import AdminProject, admin_operation

router = APIGatewayHttpRouter()
CHANGE_ERRORS = (*ADMIN_ERRORS, 409)
type RouteHandler = Callable[..., Response[str]]


@router.post(
    "/experiments",
    **admin_operation(
        "experiments", "Create an experiment (a draft)", 201, Experiment, "The experiment created", CHANGE_ERRORS
    ),
)
def create_experiment(project_id: AdminProject, spec: ExperimentCreate) -> Response[str]:
    item = definitions.create(project_id, spec, now=datetime.now(UTC))
    return json_response(201, definitions.to_api(item))


@router.get(
    "/experiments",
    **admin_operation(
        "experiments",
        "List the project's experiments, a page at a time",
        200,
        ExperimentPage,
        "A page of experiments",
        ADMIN_ERRORS,
    ),
)
def list_experiments(
    project_id: AdminProject,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response[str]:
    return json_response(200, definitions.page(project_id, limit, after))


@router.get(
    "/experiments/<key>",
    **admin_operation(
        "experiments",
        "An experiment, with its history of changes and its planning numbers",
        200,
        Experiment,
        "The experiment",
        ADMIN_ERRORS,
    ),
)
def get_experiment(project_id: AdminProject, key: str) -> Response[str]:
    return json_response(200, definitions.to_api(definitions.get(project_id, key)))


@router.patch(
    "/experiments/<key>",
    **admin_operation(
        "experiments",
        "Change some fields (which ones depends on the status)",
        200,
        Experiment,
        "The experiment as changed",
        CHANGE_ERRORS,
    ),
)
def update_experiment(project_id: AdminProject, key: str, patch: ExperimentPatch) -> Response[str]:
    item = definitions.update(project_id, key, patch, now=datetime.now(UTC))
    return json_response(200, definitions.to_api(item))


def _lifecycle(project_id: str, key: str, action: str, variant: str | None = None) -> Response[str]:
    item = definitions.apply(project_id, key, action, now=datetime.now(UTC), variant=variant)
    return json_response(200, definitions.to_api(item))


def _lifecycle_route(action: str, summary: str) -> Callable[[RouteHandler], RouteHandler]:
    return router.post(
        f"/experiments/<key>/{action}",
        **admin_operation("experiments", summary, 200, Experiment, "The experiment in its new status", CHANGE_ERRORS),
    )


@_lifecycle_route("launch", "Launch a draft: assignment starts (from `started_at` when it ran already)")
def launch_experiment(project_id: AdminProject, key: str, request: LaunchRequest | None = None) -> Response[str]:
    started_at = request.started_at if request else None
    item = definitions.apply(project_id, key, "launch", now=datetime.now(UTC), started_at=started_at)
    return json_response(200, definitions.to_api(item))


@_lifecycle_route("stop", "Stop a running experiment: everyone gets control")
def stop_experiment(project_id: AdminProject, key: str) -> Response[str]:
    return _lifecycle(project_id, key, "stop")


@_lifecycle_route("ship", "Ship a variant: everyone gets it")
def ship_experiment(project_id: AdminProject, key: str, request: ShipRequest) -> Response[str]:
    return _lifecycle(project_id, key, "ship", request.variant)


@_lifecycle_route("archive", "Archive a complete experiment")
def archive_experiment(project_id: AdminProject, key: str) -> Response[str]:
    return _lifecycle(project_id, key, "archive")
