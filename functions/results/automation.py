"""AutomationFunction: AlertsQueue's messages (abacus.alerts.follow_up: a stored snapshot's
alerts and automatic actions, and each webhook delivery, retried with backoff), and every minute
the schedule (abacus.experiments.schedules: the experiments whose starts_at or ends_at has come,
launched or stopped with a manual launch's and stop's checks; then the running bandits whose
recompute is due, abacus.nightly.bandit_runs)."""

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus.alerts import follow_up, queue
from abacus.experiments import schedules
from abacus.http import invocations
from abacus.nightly import bandit_runs, work_queue

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def follow_one(record: SQSRecord) -> None:
    message = invocations.alerts_message(record.body)
    now = datetime.now(UTC)
    if message["type"] == "snapshot":
        sent = follow_up.after_snapshot(message, now, queue.send)
        logger.info("snapshot followed up", extra={"experiment": message["experiment"], "alerts": sent})
        metrics.add_metric(name="AlertsSent", unit=MetricUnit.Count, value=len(sent))
        return
    attempt = int(record.attributes.approximate_receive_count)
    try:
        status = follow_up.deliver(message, attempt, now)
    except follow_up.DeliveryFailed as failed:
        # Delayed before it is reported failed: SQS makes it visible again after the backoff.
        queue.retry_after(record.receipt_handle, failed.retry_after)
        logger.warning("webhook delivery failed", extra={"attempt": attempt, "reason": str(failed)})
        metrics.add_metric(name="WebhookDeliveriesFailed", unit=MetricUnit.Count, value=1)
        raise
    logger.info("webhook delivery", extra={"webhook": message["webhook"], "status": status, "attempt": attempt})


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if invocations.is_scheduled(event):
        invocations.scheduled_time(event)  # InvalidInvocation for a malformed one
        now = datetime.now(UTC)
        summary = schedules.run_due(now)
        logger.info("schedules", extra={"summary": json.loads(json.dumps(summary, default=str))})
        recomputed = bandit_runs.start_due(now, work_queue.send)
        if recomputed:
            logger.info("bandits recomputed", extra={"experiments": recomputed})
        return {**summary, "bandits_recomputed": recomputed}
    invocations.require_sqs(event)
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=follow_one, processor=processor, context=context)
