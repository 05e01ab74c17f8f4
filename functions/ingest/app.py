"""IngestFunction: events from apps (project token), in Abacus's format or PostHog's.
The routes are in the shared layer (abacus.routes.events)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus.experiments.spec import ExperimentFields
from abacus.http import invocations
from abacus.http.api import build_validators, create_app
from abacus.ingestion.spec import EventBatch, EventSpec
from abacus.routes import events

logger = Logger()
# No Powertools Tracer on the request path: importing the X-Ray SDK costs about 100 ms of every
# cold start. Lambda's active tracing (template.yaml) still traces each invocation.
app = create_app()
app.include_router(events.router)
# Every batch is validated (EventBatch; PostHog's events one by one, EventSpec) against the project's
# experiments (ExperimentFields).
build_validators(ExperimentFields, EventBatch, EventSpec)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the keys.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(invocations.require_http(event), context)
