"""IngestFunction: events from apps (project token), in Abacus's format or PostHog's."""

from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus import ingestion, posthog_capture
from abacus.api import create_app, json_body, json_response, token_project
from abacus.schemas import EventBatch

logger = Logger()
# No Powertools Tracer on the request path: importing the X-Ray SDK costs about 100 ms of every
# cold start. Lambda's active tracing (template.yaml) still traces each invocation.
app = create_app()


@app.post("/events")
def post_events(batch: EventBatch):
    project_id = token_project(batch.token)
    return json_response(200, ingestion.ingest(project_id, batch.events, received_at=datetime.now(UTC)))


def _capture():
    received_at = datetime.now(UTC)
    token, events = posthog_capture.normalize(json_body(app), received_at)
    outcome = ingestion.ingest(token_project(token), events, received_at)
    return json_response(200, {"status": 1, **outcome})


# PostHog's capture endpoints, as its SDKs call them.
for path in ("/batch/", "/capture/", "/e/", "/i/v0/e/"):
    app.post(path)(_capture)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
