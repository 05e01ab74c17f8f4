"""What AutomationFunction does with AlertsQueue's messages.

- `snapshot` (sent by the nightly worker as it stores a snapshot): the snapshot's alerts, each
  recorded once (storage.alerts.mark), put on the bus and fanned out as one `delivery` message
  per webhook that takes its kind. A mark whose fan-out did not finish (the function failed half
  way) is carried on by the message's next delivery: nothing is sent twice from the table's
  point of view, and EventBridge gets the event again only when the function failed between
  putting it and recording so (its `id` is the receiver's dedupe key).
- `delivery`: one webhook's POST, signed; a failure is recorded and raised (DeliveryFailed, with
  the backoff before the next attempt); the last attempt's failure leaves the message to the
  dead-letter queue. A delivery already made is never made again (SQS delivers twice).
"""

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypedDict

from abacus.alerts import delivery, destinations, detect, messages, signing, webhooks
from abacus.alerts.bus import publish
from abacus.alerts.detect import Alert
from abacus.core.documents import DeliveryDue, SnapshotStored
from abacus.core.errors import Conflict
from abacus.core.settings import settings
from abacus.experiments import automation
from abacus.experiments.automation import AutomaticAction
from abacus.results import decision_card
from abacus.storage import alerts, experiments, results
from abacus.storage import webhooks as webhook_items
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem

logger = logging.getLogger(__name__)

# SQS's receives of a delivery before it is dead-lettered: template.yaml's AlertsQueue maxReceiveCount.
MAX_ATTEMPTS = 8
LONGEST_BACKOFF_SECONDS = 12 * 3600  # SQS's longest visibility timeout


class DeliveryFailed(Exception):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def report_url(experiment_key: str) -> str | None:
    return f"{settings.api_url}/console/experiments/{experiment_key}" if settings.api_url else None


def _experiment(message: SnapshotStored) -> ExperimentItem | None:
    """The experiment the snapshot is of, unless it was deleted or its key taken by a new one."""
    try:
        item = experiments.ExperimentItem.get(message["project"], message["experiment"])
    except experiments.ExperimentItem.DoesNotExist:
        return None
    return item if item.generation_number == message["generation"] else None


def after_snapshot(message: SnapshotStored, now: datetime, send: Callable[[list[dict[str, Any]]], None]) -> list[str]:
    """Follows one stored snapshot up; the alerts' parts it sent now (those sent before are skipped)."""
    experiment = _experiment(message)
    if experiment is None:
        return []
    stored = results.up_to(experiment.experiment_id, message["date"])
    if not stored or stored[0].date != message["date"]:
        return []
    snapshot = stored[0]
    analysis: dict[str, Any] = snapshot.analysis
    card = decision_card.card(snapshot.analysis, stored[1].analysis if len(stored) > 1 else None)
    automatic = _automate(experiment, snapshot, now)
    found = detect.alerts(analysis, experiment.started_at, snapshot.cutoff, bool(snapshot.final))
    if (action := automatic["action"]) is not None:
        found.append(_automation_alert(action))
    sent: list[str] = []
    for alert in found:
        part = alerts.alert_part(alert["kind"], alert["decision"])
        document = messages.document(
            alert,
            alert_key=messages.alert_id(experiment.experiment_id, part),
            project=experiment.project_id,
            experiment=experiment.experiment_key,
            experiment_name=str(experiment.definition.get("name", experiment.experiment_key)),
            snapshot_date=snapshot.date,
            analysis=analysis,
            report_url=report_url(experiment.experiment_key),
            now=now,
            decision_card=dict(card),
            automation=dict(automatic),
        )
        if _send_once(experiment, part, dict(document), now, send):
            sent.append(part)
    return sent


class Automation(TypedDict):
    """What the experiment's automation did with the snapshot (`action`), or why it did nothing."""

    action: AutomaticAction | None
    words: str | None  # None: automation is off


def _automate(experiment: ExperimentItem, snapshot: SnapshotItem, now: datetime) -> Automation:
    """Runs the experiment's opt-in automation on the snapshot (after every snapshot: a ship
    verdict on day 3 ships on day 7 if it holds). A refusal of the action itself (409) is said,
    not raised: the alerts still go out."""
    decision = automation.decision_for(experiment, snapshot)
    try:
        action = automation.act(experiment, snapshot, now)
    except Conflict as refused:
        logger.warning("automatic action refused", extra={"experiment": experiment.experiment_id, "why": str(refused)})
        return {"action": None, "words": f"automation could not {decision.action}: {refused}"}
    if action is not None:
        did = f"shipped '{action['variant']}'" if action["action"] == "ship" else "stopped it"
        return {"action": action, "words": f"automation {did} (rule `{action['rule']}`, snapshot {action['snapshot']})"}
    return {"action": None, "words": None if decision.reason == automation.OFF else decision.reason}


def _automation_alert(action: AutomaticAction) -> Alert:
    shipped = action["action"] == "ship"
    return {
        "kind": "automation",
        "decision": f"ship:{action['variant']}" if shipped else "stop",
        "variant": action["variant"],
        "summary": (f"shipped '{action['variant']}' automatically" if shipped else "stopped automatically")
        + f": the `{action['rule']}` rule met on the snapshot of {action['snapshot']} ({action['decision']})",
    }


def _send_once(
    experiment: ExperimentItem,
    part: str,
    document: dict[str, Any],
    now: datetime,
    send: Callable[[list[dict[str, Any]]], None],
) -> bool:
    """Records, publishes and fans out the alert unless that was done already; whether it was new."""
    item = alerts.mark(experiment.experiment_id, part, document, now)
    new = item is not None
    if item is None:
        item = alerts.get(experiment.experiment_id, part)
        if item is None or item.fanned_out_at is not None:
            return False
    if item.published_at is None:
        publish(item.document)
        alerts.published(item, now)
    hooks = webhooks.taking(experiment.project_id, str(item.document["kind"]))
    due: list[DeliveryDue] = [
        {
            "type": "delivery",
            "project": experiment.project_id,
            "experiment_id": experiment.experiment_id,
            "alert": part,
            "webhook": webhook_id,
        }
        for webhook_id in sorted(hooks)
    ]
    if due:
        send([dict(message) for message in due])
    alerts.fanned_out(item, now)
    return new


def backoff(attempt: int) -> int:
    """Seconds before the attempt after `attempt` (1 for the first): doubling from WebhookRetrySeconds."""
    return int(min(settings.webhook_retry_seconds * 2 ** (attempt - 1), LONGEST_BACKOFF_SECONDS))


def deliver(message: DeliveryDue, attempt: int, now: datetime) -> str:
    """One attempt at one delivery (`attempt`: SQS's receive count); its status. DeliveryFailed
    when it failed and another attempt follows (or the message goes to the dead-letter queue)."""
    alert = alerts.get(message["experiment_id"], message["alert"])
    hook = webhook_items.hooks(message["project"]).get(message["webhook"])
    if alert is None or hook is None:
        return "dropped"  # the experiment's data or the webhook was deleted meanwhile
    done = alerts.delivery(message["experiment_id"], alerts.delivery_part(message["alert"], message["webhook"]))
    if done is not None and done.status == "delivered":
        return "delivered"
    timestamp = int(now.timestamp())
    body = json.dumps({**alert.document, "timestamp": timestamp}, separators=(",", ":")).encode()
    headers = {
        signing.SIGNATURE_HEADER: signing.signature(hook["secret"], body),
        signing.TIMESTAMP_HEADER: str(timestamp),
        signing.DELIVERY_HEADER: messages.alert_id(
            message["experiment_id"], message["alert"] + "#" + message["webhook"]
        ),
    }
    try:
        destination = destinations.check(hook["url"], settings.allow_local_webhooks)
    except destinations.Refused as refused:
        outcome = delivery.Outcome(None, f"refused: {refused}")
    else:
        outcome = delivery.post(destination, body, headers)
    status = "delivered" if outcome.delivered else ("failed" if attempt >= MAX_ATTEMPTS else "retrying")
    alerts.record_attempt(
        message["experiment_id"], message["alert"], message["webhook"], hook["url"], now, outcome.status_code,
        outcome.error, status,
    )  # fmt: skip
    if not outcome.delivered:
        raise DeliveryFailed(f"webhook {message['webhook']}: {outcome.error}", backoff(attempt))
    return status
