"""ResultsFunction: the nightly job's planner (EventBridge schedule: its units of work go to the
queue NightlyWorkerFunction takes, worker.py), recomputing one experiment for a past day (direct
invocation, through the same queue), the admin routes of experiments and their lifecycle
(abacus.routes.experiments), the results API and report page (abacus.routes.results), the console
(abacus.routes.console), and the OpenAPI document of the whole API (abacus.routes.openapi)."""

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus.core.documents import NightlyPlan, Results
from abacus.http import invocations
from abacus.http.api import create_app
from abacus.nightly import runs, work_queue
from abacus.results import snapshots
from abacus.routes import console, experiments, openapi, results, webhooks
from abacus.storage.experiments import ExperimentItem

logger = Logger()
# No Powertools Tracer: this function serves the console's pages, and importing the X-Ray SDK
# costs about 100 ms of every cold start (issue 33). Lambda's active tracing (template.yaml)
# still traces each invocation, and the worker, which computes, keeps its Tracer.
metrics = Metrics()
app = create_app()
app.include_router(experiments.router)
app.include_router(results.router)
app.include_router(webhooks.router)
app.include_router(openapi.router)
app.include_router(console.router)


@metrics.log_metrics
def plan_nightly(scheduled: datetime, context: LambdaContext) -> NightlyPlan:
    """`scheduled` is when EventBridge fired (the event's `time`); the data's cut-off derives from
    it. Plans each experiment's run and queues its first units: NightlyWorkerFunction does them.
    Fails (NightNotPlanned) when some experiment was not planned, once the others were: Lambda
    retries the invocation, with the same request id, and the retry carries on (plan_night)."""
    started = time.perf_counter()

    def on_failure(experiment: ExperimentItem, error: Exception) -> None:
        logger.exception(
            "experiment not planned", extra={"project": experiment.project_id, "experiment": experiment.key}
        )

    summary = runs.plan_night(scheduled, datetime.now(UTC), work_queue.send, on_failure, context.aws_request_id)
    metrics.add_metric(name="ExperimentsPlanned", unit=MetricUnit.Count, value=summary["planned"])
    metrics.add_metric(name="NightlyUnitsQueued", unit=MetricUnit.Count, value=summary["units"])
    metrics.add_metric(name="ExperimentsFailed", unit=MetricUnit.Count, value=summary["failed"])
    metrics.add_metric(name="NightlyPlanDuration", unit=MetricUnit.Seconds, value=time.perf_counter() - started)
    logger.info("nightly runs planned", extra=summary)
    if summary["failed"]:
        raise runs.NightNotPlanned(
            f"{summary['failed']} experiments not planned or not all their units queued (see the log): "
            "Lambda's retry of this invocation carries on where it stopped"
        )
    return summary


def recompute_one(event: dict[str, Any]) -> Results:
    """{"project", "experiment", "as_of"?: "YYYY-MM-DD"}: one experiment, for a past day or now,
    through the queue as the nightly job (pending if it takes longer than RECOMPUTE_WAIT_SECONDS)."""
    request = invocations.recompute_request(event)
    answer = snapshots.recompute(request.project, request.experiment, datetime.now(UTC), request.as_of)
    logger.info("recompute", extra={"experiment": request.experiment, "status": answer["status"]})
    return answer


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the keys.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, object]:
    invoked_with = invocations.kind(event)  # InvalidInvocation for a payload of none of the kinds
    if invoked_with == invocations.SCHEDULED:
        # Read before the metrics start: a time it cannot read publishes no empty metrics.
        scheduled = invocations.scheduled_time(event)
        summary: NightlyPlan = plan_nightly(scheduled, context)  # Metrics' log_metrics is not annotated
        return summary
    if invoked_with == invocations.RECOMPUTE_ONE:
        return recompute_one(event)
    return app.resolve(event, context)
