"""ResultsFunction: the nightly job (EventBridge schedule), recomputing one experiment for a past
day (direct invocation), and the results API and report page (admin key, or a signed link)."""

import time
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus import experiments, nightly, report, results
from abacus.api import admin_project, create_app, json_response

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_app()


@app.get("/experiments/<key>/results")
def get_results(key: str, date: Annotated[str | None, Query(max_length=10)] = None):
    return json_response(200, results.snapshot(admin_project(app), key, date))


@app.get("/experiments/<key>/results/history")
def get_history(key: str):
    return json_response(200, results.history(admin_project(app), key))


@app.post("/experiments/<key>/results")
def recompute_results(key: str):
    return json_response(200, results.recompute(admin_project(app), key, now=datetime.now(UTC)))


@app.post("/experiments/<key>/report/link")
def report_link(key: str):
    project_id = admin_project(app)
    experiments.get(project_id, key)
    event = app.current_event
    scheme = event.headers.get("x-forwarded-proto", "https")
    query = urlencode(results.signed_query(project_id, key, datetime.now(UTC)))
    url = f"{scheme}://{event.request_context.domain_name}/experiments/{key}/report?{query}"
    return json_response(201, {"url": url, "expires_in_seconds": int(results.LINK_LIFETIME.total_seconds())})


@app.get("/experiments/<key>/report")
def get_report(key: str):
    event = app.current_event
    if event.headers.get("authorization"):
        project_id = admin_project(app)
    else:
        project_id = results.check_link(key, event.query_string_parameters or {}, datetime.now(UTC))
    item = experiments.get(project_id, key)
    page = report.page(experiments.to_api(item, with_history=False), results.snapshots(project_id, key))
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=page, headers=headers)


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


def recompute_one(event: dict) -> dict:
    """{"project", "experiment", "as_of"?: "YYYY-MM-DD"}: one experiment, for a past day or now."""
    answer = results.recompute(event["project"], event["experiment"], datetime.now(UTC), event.get("as_of"))
    logger.info("recomputed", extra={"experiment": event["experiment"], "date": answer["date"]})
    return answer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    if event.get("source") == "aws.events":
        return run_nightly(event, context)
    if "experiment" in event and "project" in event:
        return recompute_one(event)
    return app.resolve(event, context)
