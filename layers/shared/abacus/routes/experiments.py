"""Experiments and their lifecycle (admin key): create, list, read, change, launch, stop, ship, archive."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.core.errors import Invalid
from abacus.experiments import definitions
from abacus.experiments.spec import DuplicateRequest, ExperimentCreate, ExperimentPatch, LaunchRequest, ShipRequest
from abacus.http.api import AdminCaller, json_response
from abacus.http.responses import ADMIN_ERRORS, Experiment, ExperimentPage
from abacus.routes.admin import AdminProject, Caller, admin_operation

router = APIGatewayHttpRouter()
CHANGE_ERRORS = (*ADMIN_ERRORS, 409)
type RouteHandler = Callable[..., Response[str]]
type Status = Literal["draft", "running", "complete", "archived"]


@router.post(
    "/experiments",
    **admin_operation(
        "experiments", "Create an experiment (a draft)", 201, Experiment, "The experiment created", CHANGE_ERRORS
    ),
)
def create_experiment(caller: Caller, spec: ExperimentCreate) -> Response[str]:
    item = definitions.create(caller.project_id, spec, now=datetime.now(UTC), by=caller.actor)
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
    status: Annotated[
        Status | None, Query(description="Only the experiments in this status (the console's filter)")
    ] = None,
) -> Response[str]:
    return json_response(200, definitions.page(project_id, limit, after, status))


@router.delete(
    "/experiments/<key>",
    **admin_operation(
        "experiments", "Delete a draft (one that never ran): its key is free again", 204, None, "Deleted", CHANGE_ERRORS
    ),
)
def delete_experiment(project_id: AdminProject, key: str) -> Response[str]:
    definitions.delete_draft(project_id, key)
    return Response(204, body="")


@router.post(
    "/experiments/<key>/duplicate",
    **admin_operation(
        "experiments",
        "Copy an experiment's definition into a new draft under another key (any status: how a frozen one is fixed)",
        201,
        Experiment,
        "The new draft",
        CHANGE_ERRORS,
    ),
)
def duplicate_experiment(caller: Caller, key: str, request: DuplicateRequest) -> Response[str]:
    now = datetime.now(UTC)
    item = definitions.duplicate(caller.project_id, key, request.key, now=now, name=request.name, by=caller.actor)
    return json_response(201, definitions.to_api(item))


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
def update_experiment(caller: Caller, key: str, patch: ExperimentPatch) -> Response[str]:
    item = definitions.update(caller.project_id, key, patch, now=datetime.now(UTC), by=caller.actor)
    return json_response(200, definitions.to_api(item))


def _lifecycle(caller: AdminCaller, key: str, action: str, variant: str | None = None) -> Response[str]:
    item = definitions.apply(caller.project_id, key, action, now=datetime.now(UTC), variant=variant, by=caller.actor)
    return json_response(200, definitions.to_api(item))


def _lifecycle_route(action: str, summary: str) -> Callable[[RouteHandler], RouteHandler]:
    return router.post(
        f"/experiments/<key>/{action}",
        **admin_operation("experiments", summary, 200, Experiment, "The experiment in its new status", CHANGE_ERRORS),
    )


@_lifecycle_route("launch", "Launch a draft: assignment starts (from `started_at` when it ran already)")
def launch_experiment(caller: Caller, key: str, request: LaunchRequest | None = None) -> Response[str]:
    # The body is optional, but a body that is there must be the object: Powertools lets a JSON
    # array (read as no body) through to here.
    if request is None and router.current_event.json_body is not None:
        raise Invalid('body: a JSON object ({"started_at": ...}), or no body', field="body")
    started_at = request.started_at if request else None
    now = datetime.now(UTC)
    item = definitions.apply(caller.project_id, key, "launch", now=now, started_at=started_at, by=caller.actor)
    return json_response(200, definitions.to_api(item))


@_lifecycle_route("stop", "Stop a running experiment: everyone gets control")
def stop_experiment(caller: Caller, key: str) -> Response[str]:
    return _lifecycle(caller, key, "stop")


@_lifecycle_route("ship", "Ship a variant: everyone gets it")
def ship_experiment(caller: Caller, key: str, request: ShipRequest) -> Response[str]:
    return _lifecycle(caller, key, "ship", request.variant)


@_lifecycle_route("archive", "Archive a complete experiment")
def archive_experiment(caller: Caller, key: str) -> Response[str]:
    return _lifecycle(caller, key, "archive")
