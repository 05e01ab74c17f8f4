"""IngestFunction: batches of events from apps (project token)."""

from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus import ingestion
from abacus.api import create_app, json_response, token_project
from abacus.schemas import EventBatch

logger = Logger()
# No Powertools Tracer on the request path: importing the X-Ray SDK costs about 100 ms of every
# cold start. Lambda's active tracing (template.yaml) still traces each invocation.
app = create_app()


@app.post("/events")
def post_events(batch: EventBatch):
    project_id = token_project(batch.token)
    outcome = ingestion.ingest(project_id, batch.events, received_at=datetime.now(UTC))
    return json_response(200, outcome)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
