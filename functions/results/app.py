"""ResultsFunction: the nightly job (EventBridge schedule), recomputing one experiment for a past
day (direct invocation), the results API and report page (routes in abacus.routes.results), and
the OpenAPI document of the whole API (abacus.routes.openapi)."""

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus import invocations, nightly, results
from abacus.api import create_app
from abacus.documents import NightlySummary, ReadyResults
from abacus.routes import openapi
from abacus.routes import results as results_routes
from abacus.storage.experiments import ExperimentItem

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_app()
app.include_router(results_routes.router)
app.include_router(openapi.router)


@metrics.log_metrics
def run_nightly(scheduled: datetime, context: LambdaContext) -> NightlySummary:
    """`scheduled` is when EventBridge fired (the event's `time`); the data's cut-off derives from it."""
    started = time.perf_counter()

    def on_failure(experiment: ExperimentItem, error: Exception) -> None:
        logger.exception("experiment failed", extra={"project": experiment.project_id, "experiment": experiment.key})

    summary = nightly.run(scheduled, now=datetime.now(UTC), on_failure=on_failure)
    metrics.add_metric(name="ExperimentsAnalysed", unit=MetricUnit.Count, value=summary["analysed"])
    metrics.add_metric(name="ExperimentsFailed", unit=MetricUnit.Count, value=summary["failed"])
    metrics.add_metric(name="NightlyDuration", unit=MetricUnit.Seconds, value=time.perf_counter() - started)
    logger.info("nightly results done", extra=summary)
    return summary


def recompute_one(event: dict[str, Any]) -> ReadyResults:
    """{"project", "experiment", "as_of"?: "YYYY-MM-DD"}: one experiment, for a past day or now."""
    request = invocations.recompute_request(event)
    answer = results.recompute(request.project, request.experiment, datetime.now(UTC), request.as_of)
    logger.info("recomputed", extra={"experiment": request.experiment, "date": answer["date"]})
    return answer


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the keys.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, object]:
    invoked_with = invocations.kind(event)  # InvalidInvocation for a payload of none of the kinds
    if invoked_with == invocations.SCHEDULED:
        # Read before the metrics start: a time it cannot read publishes no empty metrics.
        scheduled = invocations.scheduled_time(event)
        summary: NightlySummary = run_nightly(scheduled, context)  # Metrics' log_metrics is not annotated
        return summary
    if invoked_with == invocations.RECOMPUTE_ONE:
        return recompute_one(event)
    return app.resolve(event, context)
