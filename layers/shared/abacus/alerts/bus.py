"""The stack's EventBridge bus (ALERTS_BUS_NAME): every alert is one event, source `abacus`, its
detail-type by kind (messages.DETAIL_TYPES), its detail the alert's document."""

import json
from functools import cache
from typing import Any

import botocore.session

from abacus.alerts.messages import DETAIL_TYPES, SOURCE, AlertDocument
from abacus.core.settings import settings


class NotPublished(Exception):
    """EventBridge refused the event: the follow-up fails, and SQS brings it back."""


@cache
def _client() -> Any:
    # botocore's client, not boto3's: boto3 would add about 30 ms (s3transfer, multiprocessing)
    # to the cold start of every function that imports this module (issue 33).
    return botocore.session.get_session().create_client("events", region_name=settings.region)


def entry(alert: AlertDocument) -> dict[str, Any]:
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPES[alert["kind"]],
        "Detail": json.dumps(alert),
        "EventBusName": settings.alerts_bus_name,
        "Resources": [],
    }


def publish(alert: AlertDocument) -> None:
    answer = _client().put_events(Entries=[entry(alert)])
    if answer.get("FailedEntryCount"):
        failure = answer["Entries"][0]
        raise NotPublished(f"{failure.get('ErrorCode')}: {failure.get('ErrorMessage')}")
