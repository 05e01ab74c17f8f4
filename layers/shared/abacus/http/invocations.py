"""What the functions are invoked with: API Gateway's HTTP API events, and for the results function
also EventBridge's scheduled event (the nightly job) and an operator's direct invocation (one
experiment recomputed); for the nightly job's worker, SQS events. A payload that is none of them,
or one with a field that is wrong, is refused with InvalidInvocation naming what was expected,
before any handler reads it."""

import re
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Final, Literal, TypeGuard, cast

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictStr, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from abacus.core.documents import DeliveryDue, SnapshotStored
from abacus.core.errors import InvalidInvocation
from abacus.http.api import validation_error

HTTP_EVENT = "an API Gateway HTTP API event (payload format 2.0)"
SCHEDULED_EVENT = "EventBridge's Scheduled Event (as events/nightly.json)"
RECOMPUTE = '{"project", "experiment", "as_of"?}'
Kind = Literal["http", "scheduled", "recompute"]
HTTP: Final = "http"
SCHEDULED: Final = "scheduled"
RECOMPUTE_ONE: Final = "recompute"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _shown(value: object) -> str:
    return repr(value)[:40]


def _eventbridge_time(value: object) -> datetime:
    """An ISO 8601 time with its zone, as EventBridge writes `time`."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise PydanticCustomError(
        "eventbridge_time",
        "expected when the schedule fired, in ISO 8601 with its zone as EventBridge sends it "
        "(2026-11-25T03:00:00Z), not {value}",
        {"value": _shown(value)},
    )


def _day(value: object) -> str:
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:  # no such day: 2026-02-30
            pass
    raise PydanticCustomError("day", "expected a day as YYYY-MM-DD (2026-11-20), not {value}", {"value": _shown(value)})


# The invocations' models are built when first used, not at import: AssignFunction and
# IngestFunction take HTTP events only, and the models cost milliseconds of every cold start.
class ScheduledEvent(BaseModel):
    """EventBridge's scheduled event: `time`, when the rule fired, fixes the nightly job's cut-off."""

    model_config = ConfigDict(defer_build=True)
    source: Literal["aws.events"]
    time: Annotated[datetime, PlainValidator(_eventbridge_time)]


class RecomputeRequest(BaseModel):
    """An operator's direct invocation: one experiment, for the past day `as_of` or now."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    project: Annotated[StrictStr, Field(min_length=1)]
    experiment: Annotated[StrictStr, Field(min_length=1)]
    as_of: Annotated[str, PlainValidator(_day)] | None = None


def is_http(event: object) -> TypeGuard[dict[str, Any]]:
    """Whether `event` is an HTTP API's (payload 2.0), as far as the resolver reads it blindly."""
    if not isinstance(event, dict) or event.get("version") != "2.0" or not isinstance(event.get("rawPath"), str):
        return False
    context = event.get("requestContext")
    return isinstance(context, dict) and isinstance(context.get("http"), dict)


def require_http(event: object) -> dict[str, Any]:
    """The event, when it is API Gateway's: assign and ingest serve the API only."""
    if not is_http(event):
        raise InvalidInvocation(f"expected {HTTP_EVENT}: this function serves the API only")
    return event


SQS_EVENT = 'an SQS event from its event source mapping ({"Records": [{"eventSource": "aws:sqs", ...}]})'


def require_sqs(event: object) -> dict[str, Any]:
    """The event, when it is an SQS event source mapping's: the nightly job's worker takes only those."""
    records = event.get("Records") if isinstance(event, dict) else None
    if (
        not isinstance(records, list)
        or not records
        or not all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    ):
        raise InvalidInvocation(f"expected {SQS_EVENT}: this function works its queue")
    return cast(dict[str, Any], event)


def kind(event: object) -> Kind:
    """Which of the results function's invocations `event` is."""
    if is_http(event):
        return HTTP
    if isinstance(event, dict):
        if event.get("source") == "aws.events":
            return SCHEDULED
        if event.keys() & RecomputeRequest.model_fields.keys():
            return RECOMPUTE_ONE
    raise InvalidInvocation(f"expected {HTTP_EVENT}, {SCHEDULED_EVENT} or a recompute, {RECOMPUTE}")


def scheduled_time(event: dict[str, Any]) -> datetime:
    return _parse(ScheduledEvent, event).time


def recompute_request(event: dict[str, Any]) -> RecomputeRequest:
    return _parse(RecomputeRequest, event)


def _parse[M: BaseModel](model: type[M], event: dict[str, Any]) -> M:
    try:
        return model.model_validate(event)
    except ValidationError as error:
        invalid = validation_error(error.errors())
        raise InvalidInvocation(invalid.message, field=invalid.field) from None


def is_scheduled(event: object) -> bool:
    """Whether `event` is EventBridge's (a schedule firing), as far as its source says."""
    return isinstance(event, dict) and event.get("source") == "aws.events"


@cache
def _alerts_message() -> TypeAdapter[SnapshotStored | DeliveryDue]:
    return TypeAdapter(Annotated[SnapshotStored | DeliveryDue, Field(discriminator="type")])


def alerts_message(body: str) -> SnapshotStored | DeliveryDue:
    """An AlertsQueue message: a stored snapshot to follow up, or a webhook delivery due.
    InvalidInvocation naming the field that is wrong (the message then goes to the dead letters)."""
    try:
        return _alerts_message().validate_json(body)
    except ValidationError as error:
        invalid = validation_error(error.errors())
        raise InvalidInvocation(invalid.message, field=invalid.field) from None
