"""Alerts' webhooks (admin key): create (its secret answered once), list, delete, rotate the
secret; and an experiment's alerts as sent, with their deliveries."""

from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.alerts import sent, webhooks
from abacus.alerts.webhooks import WebhookCreate
from abacus.experiments import definitions
from abacus.http.api import json_response
from abacus.http.responses import ADMIN_ERRORS, ExperimentAlerts, NewWebhook, WebhookList
from abacus.routes.admin import AdminProject, Caller, admin_operation

router = APIGatewayHttpRouter()
CHANGE_ERRORS = (*ADMIN_ERRORS, 409)


@router.post(
    "/webhooks",
    **admin_operation(
        "alerts",
        "Add a webhook: every alert of the kinds it takes is POSTed to it, signed",
        201,
        NewWebhook,
        "The webhook, with its secret (shown this once)",
        CHANGE_ERRORS,
    ),
)
def create_webhook(caller: Caller, request: WebhookCreate) -> Response[str]:
    return json_response(201, webhooks.create(caller.project_id, request, caller.actor, datetime.now(UTC)))


@router.get(
    "/webhooks",
    **admin_operation("alerts", "The project's webhooks (without their secrets)", 200, WebhookList, "The webhooks"),
)
def list_webhooks(project_id: AdminProject) -> Response[str]:
    return json_response(200, {"webhooks": webhooks.listed(project_id)})


@router.delete(
    "/webhooks/<webhook_id>",
    **admin_operation("alerts", "Delete a webhook: nothing more is sent to it", 204, None, "Deleted", CHANGE_ERRORS),
)
def delete_webhook(project_id: AdminProject, webhook_id: str) -> Response[str]:
    webhooks.delete(project_id, webhook_id)
    return Response(204, body="")


@router.post(
    "/webhooks/<webhook_id>/rotate",
    **admin_operation(
        "alerts",
        "A new secret for a webhook: deliveries are signed with it from now on",
        200,
        NewWebhook,
        "The webhook, with its new secret (shown this once)",
        CHANGE_ERRORS,
    ),
)
def rotate_webhook_secret(project_id: AdminProject, webhook_id: str) -> Response[str]:
    return json_response(200, webhooks.rotate(project_id, webhook_id, datetime.now(UTC)))


@router.get(
    "/experiments/<key>/alerts",
    **admin_operation(
        "alerts",
        "The experiment's alerts as sent (each once per kind and decision), with their webhook deliveries",
        200,
        ExperimentAlerts,
        "The alerts, oldest first",
    ),
)
def experiment_alerts(project_id: AdminProject, key: str) -> Response[str]:
    item = definitions.get(project_id, key)
    return json_response(200, {"experiment": key, "alerts": sent.of_experiment(item.experiment_id)})
