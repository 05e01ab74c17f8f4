"""AssignFunction: variant assignment and PostHog's flags (project token), local evaluation's
definitions (flags key), posthog-js's browser bundles (/static/: PostHogJsLayer). It serves no
admin route (ResultsFunction does), so the role behind /assign can write no experiment. The routes
are in the shared layer (abacus.routes), where the OpenAPI document is built from them."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus.assignment.spec import AssignRequest
from abacus.experiments.spec import ExperimentFields
from abacus.http import invocations
from abacus.http.api import build_validators, create_app
from abacus.routes import assignment, posthog_scripts

logger = Logger()
# No Powertools Tracer on the request path: importing the X-Ray SDK costs about 100 ms of every
# cold start. Lambda's active tracing (template.yaml) still traces each invocation.
app = create_app()
app.include_router(assignment.router)
app.include_router(posthog_scripts.router)
# Every /flags/ and /assign reads the project's experiments (ExperimentFields) and /assign its body.
build_validators(ExperimentFields, AssignRequest)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the keys.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(invocations.require_http(event), context)
