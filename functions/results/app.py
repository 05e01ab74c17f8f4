"""ResultsFunction: the nightly job (EventBridge schedule) and the results API (admin key)."""

import time
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus import experiments, keys, nightly
from abacus.api import admin_project, create_app, json_response
from abacus.storage import results as result_store

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_app()


@app.get("/experiments/<key>/results")
def get_results(key: str):
    project_id = admin_project(app)
    experiment = experiments.get(project_id, key)
    snapshot = result_store.latest(keys.experiment_id(project_id, key))
    if snapshot is None:
        return json_response(
            200,
            {
                "experiment": key,
                "status": "pending",
                "message": "no results yet: the nightly job computes the first snapshot after the experiment's first "
                "full day running" + (" (it is not running yet)" if experiment.status == "draft" else ""),
            },
        )
    return json_response(200, {"status": "ready", **nightly.snapshot_to_api(snapshot, key)})


@metrics.log_metrics
def run_nightly(event: dict, context: LambdaContext) -> dict:
    """The scheduled event's `time` is when EventBridge fired; the data's cut-off derives from it."""
    scheduled = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    started = time.perf_counter()

    def on_failure(experiment, error: Exception) -> None:
        logger.exception("experiment failed", extra={"project": experiment.project_id, "experiment": experiment.key})

    summary = nightly.run(scheduled, now=datetime.now(UTC), on_failure=on_failure)
    metrics.add_metric(name="ExperimentsAnalysed", unit=MetricUnit.Count, value=summary["analysed"])
    metrics.add_metric(name="ExperimentsFailed", unit=MetricUnit.Count, value=summary["failed"])
    metrics.add_metric(name="NightlyDuration", unit=MetricUnit.Seconds, value=time.perf_counter() - started)
    logger.info("nightly results done", extra=summary)
    return summary


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    if event.get("source") == "aws.events":
        return run_nightly(event, context)
    return app.resolve(event, context)
