"""The stack's EventBridge bus (ALERTS_BUS_NAME): every alert is one event, source `abacus`, its
detail-type by kind (messages.DETAIL_TYPES), its detail the alert's document."""

import json
from functools import cache
from typing import Any

import boto3

from abacus.alerts.messages import DETAIL_TYPES, SOURCE, AlertDocument
from abacus.core.settings import settings


class NotPublished(Exception):
    """EventBridge refused the event: the follow-up fails, and SQS brings it back."""


@cache
def _client() -> Any:
    return boto3.client("events", region_name=settings.region)


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
