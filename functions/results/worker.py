"""NightlyWorkerFunction: the nightly job's units of work, from SQS (its event source mapping).
Each message is one page of one experiment's users (abacus.nightly.computation); a page that fails is
reported as a batch item failure, so only it comes back, and after the queue's maxReceiveCount it
waits in the dead-letter queue for a redrive."""

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from abacus.http import invocations
from abacus.nightly import computation, runs, work_queue
from abacus.storage import nightly_runs

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def work_one(record: SQSRecord) -> None:
    unit = runs.Unit.from_json(json.loads(record.body))
    context = {"experiment": unit.experiment_id, "run": unit.run, "shard": unit.shard, "page": unit.page}
    try:
        step = computation.work(unit)
    except computation.RunFailed as error:
        # Retrying would fail the same way: recorded on the run (a recompute answers with it), not retried.
        nightly_runs.failed(unit.experiment_id, unit.run, str(error))
        logger.error("run failed", extra={**context, "reason": str(error)})
        metrics.add_metric(name="NightlyRunsFailed", unit=MetricUnit.Count, value=1)
        return
    if isinstance(step, runs.Unit):
        # Sent before this message is deleted: a crash in between sends it again, which is harmless.
        work_queue.send([step.to_json()])
    elif step is not None:
        logger.info("snapshot stored", extra={**context, "date": step.date})
        metrics.add_metric(name="ExperimentsAnalysed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="NightlyPagesDone", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    invocations.require_sqs(event)  # InvalidInvocation for anything else, before Powertools reads it
    processor = BatchProcessor(event_type=EventType.SQS)  # its state is one batch's
    return process_partial_response(event=event, record_handler=work_one, processor=processor, context=context)
