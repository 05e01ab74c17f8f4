"""AssignFunction: experiments (admin key) and variant assignment (project token)."""

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus import assignment, experiments
from abacus.api import admin_project, create_app, json_response, token_project
from abacus.schemas import AssignRequest, ExperimentCreate

logger = Logger()
tracer = Tracer()
app = create_app()


@app.post("/experiments")
def create_experiment(spec: ExperimentCreate):
    project_id = admin_project(app)
    item = experiments.create(project_id, spec, now=datetime.now(UTC))
    return json_response(201, experiments.to_api(item))


@app.get("/experiments/<key>")
def get_experiment(key: str):
    return json_response(200, experiments.to_api(experiments.get(admin_project(app), key)))


@app.post("/experiments/<key>/launch")
def launch_experiment(key: str):
    item = experiments.apply(admin_project(app), key, "launch", now=datetime.now(UTC))
    return json_response(200, experiments.to_api(item))


@app.post("/experiments/<key>/stop")
def stop_experiment(key: str):
    item = experiments.apply(admin_project(app), key, "stop", now=datetime.now(UTC))
    return json_response(200, experiments.to_api(item))


@app.post("/assign")
def assign(request: AssignRequest):
    project_id = token_project(request.token)
    variants = assignment.assign(project_id, request, now=datetime.now(UTC))
    return json_response(200, {"assignments": variants})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
