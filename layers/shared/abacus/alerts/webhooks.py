"""A project's webhooks (admin routes: /webhooks): created with a URL and the alert kinds they take
(all when left out), listed, deleted, their secret rotated. The secret is answered once, when the
webhook is created or rotated; listing never shows it."""

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypedDict

from pydantic import ConfigDict, Field, field_validator

from abacus.alerts import destinations, signing
from abacus.alerts.detect import KINDS, AlertKind
from abacus.core.errors import Conflict, Invalid, NotFound
from abacus.core.settings import settings
from abacus.experiments.metrics_spec import Strict
from abacus.storage import webhooks

ID_PREFIX = "wh_"


class WebhookCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"url": "https://hooks.slack.com/services/T000/B000/XXXX", "kinds": ["decision", "srm"]}]
        }
    )
    url: Annotated[
        str,
        Field(
            max_length=destinations.MAX_URL_LENGTH,
            description="https, on a host that resolves to public addresses only (a Slack incoming-webhook URL works)",
        ),
    ]
    kinds: Annotated[
        list[AlertKind] | None,
        Field(min_length=1, max_length=len(KINDS), description="The alert kinds it takes; every kind when left out"),
    ] = None

    @field_validator("url")
    @classmethod
    def an_https_url(cls, url: str) -> str:
        # Its host is resolved by `create`, once the admin key is checked: a request without
        # one makes no DNS lookup, nor learns what a name resolves to.
        try:
            destinations.well_formed(url, settings.allow_local_webhooks)
        except destinations.Refused as refused:
            raise ValueError(str(refused)) from None
        return url

    @field_validator("kinds")
    @classmethod
    def each_kind_once(cls, kinds: list[AlertKind] | None) -> list[AlertKind] | None:
        return None if kinds is None else sorted(set(kinds), key=KINDS.index)


class ListedWebhook(TypedDict):
    id: str
    url: str
    kinds: list[str] | None
    created_at: str
    created_by: str | None
    rotated_at: str | None


class NewWebhook(ListedWebhook):
    secret: str  # answered once: sign-checking key of every delivery


def _listed(webhook_id: str, hook: dict[str, Any]) -> ListedWebhook:
    return {
        "id": webhook_id,
        "url": hook["url"],
        "kinds": hook.get("kinds"),
        "created_at": hook["created_at"],
        "created_by": hook.get("created_by"),
        "rotated_at": hook.get("rotated_at"),
    }


def create(project_id: str, request: WebhookCreate, by: str, now: datetime) -> NewWebhook:
    try:
        destinations.check(request.url, settings.allow_local_webhooks)  # public addresses only
    except destinations.Refused as refused:
        raise Invalid(f"url: {refused}", field="url") from None
    item = webhooks.read(project_id)
    hooks = dict(item.hooks or {})
    if len(hooks) >= webhooks.MAX_WEBHOOKS:
        raise Conflict(f"a project has at most {webhooks.MAX_WEBHOOKS} webhooks: delete one first", field="url")
    kinds = list(request.kinds) if request.kinds is not None else None
    # The same URL and kinds twice would send every alert twice (and a create sent again after a
    # lost answer would add a second): refused, naming the one there is.
    for existing_id, hook in hooks.items():
        if hook["url"] == request.url and hook.get("kinds") == kinds:
            raise Conflict(
                f"webhook '{existing_id}' sends these alerts to this URL already: rotate its secret "
                f"(POST /webhooks/{existing_id}/rotate) if it was lost",
                field="url",
            )
    webhook_id = ID_PREFIX + secrets.token_hex(6)
    secret = signing.new_secret()
    hooks[webhook_id] = {
        "url": request.url,
        "kinds": kinds,
        "secret": secret,
        "created_at": now.isoformat(),
        "created_by": by,
    }
    item.hooks = hooks
    _save(item, applied=lambda stored: stored.get(webhook_id, {}).get("secret") == secret)
    return {**_listed(webhook_id, hooks[webhook_id]), "secret": secret}


def listed(project_id: str) -> list[ListedWebhook]:
    hooks = webhooks.hooks(project_id)
    return sorted((_listed(key, hook) for key, hook in hooks.items()), key=lambda hook: hook["created_at"])


def delete(project_id: str, webhook_id: str) -> None:
    item = webhooks.read(project_id)
    hooks = dict(item.hooks or {})
    if hooks.pop(webhook_id, None) is None:
        raise NotFound(f"no webhook '{webhook_id}' in this project")
    item.hooks = hooks
    _save(item, applied=lambda stored: webhook_id not in stored)


def rotate(project_id: str, webhook_id: str, now: datetime) -> NewWebhook:
    """A new secret for the webhook: deliveries from now on are signed with it (the old one stops at once)."""
    item = webhooks.read(project_id)
    hooks = dict(item.hooks or {})
    if webhook_id not in hooks:
        raise NotFound(f"no webhook '{webhook_id}' in this project")
    secret = signing.new_secret()
    hooks[webhook_id] = {**hooks[webhook_id], "secret": secret, "rotated_at": now.isoformat()}
    item.hooks = hooks
    _save(item, applied=lambda stored: stored.get(webhook_id, {}).get("secret") == secret)
    return {**_listed(webhook_id, hooks[webhook_id]), "secret": secret}


def taking(project_id: str, kind: str) -> dict[str, dict[str, Any]]:
    """The project's webhooks that take alerts of `kind`: {id: webhook}."""
    return {
        key: hook
        for key, hook in webhooks.hooks(project_id).items()
        if hook.get("kinds") in (None, []) or kind in hook["kinds"]
    }


def _save(item: webhooks.WebhooksItem, applied: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
    """Stores the changed webhooks; 409 when another change won the race. A write whose answer
    was lost (a timeout) is sent again by botocore, and that retry fails its version condition:
    when the stored webhooks show this change (`applied`), it was made, and is answered so (else
    the client, told to send it again, would create a second webhook or find its deleted one gone)."""
    try:
        webhooks.save(item)
    except webhooks.ChangedMeanwhile:
        if applied(webhooks.hooks(item.project_id)):
            return
        raise Conflict("the project's webhooks changed at the same time: send the request again") from None
