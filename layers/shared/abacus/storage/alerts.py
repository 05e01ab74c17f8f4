"""The alerts table: per experiment (its experiment_id), the alerts sent and their webhook deliveries.

- `alert#<kind>#<decision>`: written once, conditionally, when the alert is first found: the mark
  that sends each alert once per experiment, kind and decision, whatever reruns, recomputes and
  redeliveries happen. It keeps the alert's document and when it was put on the bus and fanned
  out to the webhooks (a follow-up that failed in between carries on from the mark).
- `delivery#<kind>#<decision>#<webhook id>`: one webhook's delivery of one alert: attempts, the
  last status code or error, when it was delivered. Expires 90 days after its last attempt.

One Query of an experiment's key reads them all (the console's alerts panel): a few per experiment,
written a few times a night at most, far under a key's limits.
"""

from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, delete_each, nullable

DELIVERY_KEPT = timedelta(days=90)


class AlertItem(Model):
    class Meta(TableMeta):
        table_name = settings.alerts_table

    experiment_id = UnicodeAttribute(hash_key=True)
    part = UnicodeAttribute(range_key=True)
    created_at = UTCDateTimeAttribute()
    document = JSONAttribute()  # the alert as sent (abacus.alerts.messages.AlertDocument)
    published_at = nullable(UTCDateTimeAttribute())  # put on the EventBridge bus
    fanned_out_at = nullable(UTCDateTimeAttribute())  # a delivery queued for each webhook


class DeliveryItem(Model):
    class Meta(TableMeta):
        table_name = settings.alerts_table

    experiment_id = UnicodeAttribute(hash_key=True)
    part = UnicodeAttribute(range_key=True)
    alert = UnicodeAttribute()  # the alert's part
    webhook_id = UnicodeAttribute()
    url = UnicodeAttribute()
    status = UnicodeAttribute()  # pending, delivered, failed (out of attempts: dead-lettered)
    attempts = NumberAttribute(default=0)
    last_status_code = nullable(NumberAttribute())
    last_error = nullable(UnicodeAttribute())
    last_attempt_at = nullable(UTCDateTimeAttribute())
    delivered_at = nullable(UTCDateTimeAttribute())
    expires_at = nullable(NumberAttribute())


ALERT = "alert#"
DELIVERY = "delivery#"


def alert_part(kind: str, decision: str) -> str:
    return f"{ALERT}{kind}#{decision}"


def delivery_part(alert: str, webhook_id: str) -> str:
    return f"{DELIVERY}{alert.removeprefix(ALERT)}#{webhook_id}"


def mark(experiment_id: str, part: str, document: dict[str, Any], now: datetime) -> AlertItem | None:
    """Records the alert unless it was recorded before: the new item, or None (sent already, or
    being sent: `get` it to carry on)."""
    item = AlertItem(experiment_id, part, created_at=now, document=document)
    try:
        item.save(condition=AlertItem.part.does_not_exist())
    except PutError as error:
        if condition_failed(error):
            return None
        raise
    return item


def get(experiment_id: str, part: str) -> AlertItem | None:
    try:
        return AlertItem.get(experiment_id, part, consistent_read=True)
    except DoesNotExist:
        return None


def published(item: AlertItem, now: datetime) -> None:
    item.update(actions=[AlertItem.published_at.set(now)])


def fanned_out(item: AlertItem, now: datetime) -> None:
    item.update(actions=[AlertItem.fanned_out_at.set(now)])


def delivery(experiment_id: str, part: str) -> DeliveryItem | None:
    try:
        return DeliveryItem.get(experiment_id, part, consistent_read=True)
    except DoesNotExist:
        return None


def record_attempt(
    experiment_id: str,
    alert: str,
    webhook_id: str,
    url: str,
    now: datetime,
    status_code: int | None,
    error: str | None,
    status: str,
) -> DeliveryItem:
    """Adds an attempt to the delivery's record (created by its first): its outcome and status."""
    item = DeliveryItem(experiment_id, delivery_part(alert, webhook_id))
    actions: list[Action] = [
        DeliveryItem.alert.set(alert),
        DeliveryItem.webhook_id.set(webhook_id),
        DeliveryItem.url.set(url),
        DeliveryItem.status.set(status),
        DeliveryItem.attempts.add(1),
        DeliveryItem.last_attempt_at.set(now),
        DeliveryItem.expires_at.set(int((now + DELIVERY_KEPT).timestamp())),
        DeliveryItem.last_error.set(error[:500]) if error else DeliveryItem.last_error.remove(),
        DeliveryItem.last_status_code.set(status_code)
        if status_code is not None
        else DeliveryItem.last_status_code.remove(),
    ]
    if status == "delivered":
        actions.append(DeliveryItem.delivered_at.set(now))
    item.update(actions=actions)
    return item


def of_experiment(experiment_id: str, limit: int = 200) -> tuple[list[AlertItem], list[DeliveryItem]]:
    """The experiment's alerts (oldest first) and deliveries: two Queries of its key, `limit` each."""
    alerts = sorted(
        AlertItem.query(experiment_id, AlertItem.part.startswith(ALERT), limit=limit), key=lambda a: a.created_at
    )
    deliveries = list(DeliveryItem.query(experiment_id, DeliveryItem.part.startswith(DELIVERY), limit=limit))
    return alerts, deliveries


def delete_experiment(experiment_id: str) -> int:
    """Deletes every alert and delivery of an experiment."""
    return delete_each(AlertItem, AlertItem.query(experiment_id, attributes_to_get=["experiment_id", "part"]))
