"""AssignFunction: experiments and their lifecycle (admin key), variant assignment (project token)."""

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus import assignment, experiments, posthog_flags
from abacus.api import admin_project, create_app, json_response, token_project
from abacus.schemas import AssignRequest, ExperimentCreate, ExperimentPatch, ShipRequest

logger = Logger()
# No Powertools Tracer on the request path: importing the X-Ray SDK costs about 100 ms of every
# cold start. Lambda's active tracing (template.yaml) still traces each invocation.
app = create_app()


@app.post("/experiments")
def create_experiment(spec: ExperimentCreate):
    item = experiments.create(admin_project(app), spec, now=datetime.now(UTC))
    return json_response(201, experiments.to_api(item))


@app.get("/experiments")
def list_experiments(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after: Annotated[str | None, Query(max_length=64)] = None,
):
    return json_response(200, experiments.page(admin_project(app), limit, after))


@app.get("/experiments/<key>")
def get_experiment(key: str):
    return json_response(200, experiments.to_api(experiments.get(admin_project(app), key)))


@app.patch("/experiments/<key>")
def update_experiment(key: str, patch: ExperimentPatch):
    item = experiments.update(admin_project(app), key, patch, now=datetime.now(UTC))
    return json_response(200, experiments.to_api(item))


@app.post("/experiments/<key>/launch")
def launch_experiment(key: str):
    return _lifecycle(key, "launch")


@app.post("/experiments/<key>/stop")
def stop_experiment(key: str):
    return _lifecycle(key, "stop")


@app.post("/experiments/<key>/ship")
def ship_experiment(key: str, request: ShipRequest):
    return _lifecycle(key, "ship", request.variant)


@app.post("/experiments/<key>/archive")
def archive_experiment(key: str):
    return _lifecycle(key, "archive")


def _lifecycle(key: str, action: str, variant: str | None = None):
    item = experiments.apply(admin_project(app), key, action, now=datetime.now(UTC), variant=variant)
    return json_response(200, experiments.to_api(item))


@app.post("/assign")
def assign(request: AssignRequest):
    variants = assignment.assign(token_project(request.token), request, now=datetime.now(UTC))
    return json_response(200, {"assignments": variants})


@app.post("/flags/")
def flags_for_posthog_sdks(request: posthog_flags.FlagsRequest):
    project_id = token_project(request.project_token or "")
    values = posthog_flags.evaluate(project_id, request, now=datetime.now(UTC))
    versions = {key: item.version for key, item in assignment.project_experiments(project_id).items()}
    return json_response(200, posthog_flags.flags_v4(values, versions))


@app.post("/decide/")
def decide_for_older_posthog_sdks(request: posthog_flags.FlagsRequest):
    project_id = token_project(request.project_token or "")
    return json_response(200, posthog_flags.decide(posthog_flags.evaluate(project_id, request, now=datetime.now(UTC))))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
