"""Event ingestion (project token), in Abacus's format or as PostHog's SDKs send it."""

from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.http.api import ANY_QUERY_PARAMETERS, json_body, json_response, token_project
from abacus.http.responses import TOKEN_ERRORS, CaptureOutcome, IngestOutcome, documented
from abacus.ingestion import ingest
from abacus.ingestion.spec import EventBatch
from abacus.posthog import capture

router = APIGatewayHttpRouter()
INGEST_ERRORS = (*TOKEN_ERRORS, 503)
# Each event is validated on its own (a bad one is listed in `rejected`, the others are stored),
# so the document describes an event's fields without constraining them.
CAPTURE_EVENT = {
    "type": "object",
    "description": "A PostHog event: event, distinct_id (or properties.distinct_id), uuid, timestamp, properties",
    "properties": {
        "event": {"description": "The event's name"},
        "distinct_id": {"description": "The user"},
        "uuid": {"description": "Deduplicates resends"},
        "timestamp": {"description": "ISO 8601 or epoch milliseconds"},
        "properties": {"description": "The event's properties"},
        "api_key": {"type": "string", "maxLength": 200, "description": "The project token (or `token`)"},
    },
}
CAPTURE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "example": {
                "api_key": "phc_project_token",
                "batch": [{"event": "$pageview", "distinct_id": "user-42", "properties": {"$current_url": "/pricing"}}],
            },
            "schema": {
                "anyOf": [
                    CAPTURE_EVENT,
                    {"type": "array", "items": CAPTURE_EVENT, "maxItems": 1000},
                    {
                        "type": "object",
                        "required": ["batch"],
                        "properties": {
                            "api_key": {"type": "string", "maxLength": 200, "description": "The project token"},
                            "batch": {"type": "array", "items": CAPTURE_EVENT, "maxItems": 1000},
                            "sent_at": {"type": "string", "description": "When the SDK sent it (clock skew)"},
                        },
                    },
                ]
            },
        }
    },
}


@router.post(
    "/events",
    summary="Send events (at most 1,000 a request)",
    tags=["events"],
    responses=documented(200, IngestOutcome, "What was stored, already stored, or refused", INGEST_ERRORS),
)
def post_events(batch: EventBatch, request: Request) -> Response[str]:
    project_id = token_project(batch.token)
    return json_response(200, ingest.ingest(project_id, batch.events, received_at=received_time(request)))


def received_time(request: Request) -> datetime:
    """When API Gateway received the request (`requestContext.timeEpoch`), else now. PostHog's clock
    correction moves an event by (receipt - sent_at): the function's own clock would add its cold
    start and queueing to one batch and not the next, and could put a purchase before the exposure
    the app reported first. Writes happen within the request, far inside the nightly job's
    RECEIPT_MARGIN, so the receipt index misses nothing."""
    now = datetime.now(UTC)
    epoch = (request.resolved_event.get("requestContext") or {}).get("timeEpoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        return now
    try:
        received = datetime.fromtimestamp(epoch / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return now
    return received if now - timedelta(minutes=1) <= received <= now else now


def _capture(request: Request) -> Response[str]:
    received_at = received_time(request)
    token, events = capture.normalize(json_body(request), received_at)
    outcome = ingest.ingest(token_project(token, "api_key"), events, received_at)
    return json_response(200, {"status": 1, **outcome})


# PostHog's capture endpoints, as its SDKs call them; the body is any of PostHog's shapes.
for path in ("/batch/", "/capture/", "/e/", "/i/v0/e/"):
    router.post(
        path,
        summary=f"PostHog SDKs' capture ({path})",
        tags=["posthog"],
        operation_id=f"capture_{path.strip('/').replace('/', '_')}",
        responses=documented(200, CaptureOutcome, "What was stored, already stored, or refused", INGEST_ERRORS),
        openapi_extensions={"requestBody": CAPTURE_BODY, "parameters": [ANY_QUERY_PARAMETERS]},
    )(_capture)
