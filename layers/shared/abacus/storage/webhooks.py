"""The projects table's webhooks items: `webhooks#<project>`, the project's webhooks in one item
(at most MAX_WEBHOOKS, so well under an item's 400 KB): each one's URL, the alert kinds it takes,
its signing secret, who created it and when.

The secret is kept as it is (encrypted at rest, as every table), since each delivery is signed
with it: anyone who can read this table can sign as Abacus, as anyone who can read a Stripe
account's settings can. Every write is conditional on the item's version, so two concurrent
changes cannot both win. Read once per alert by the follow-up (one GetItem), and by the admin
routes: a key takes a few requests a night.
"""

from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed

MAX_WEBHOOKS = 10


class WebhooksItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    # {webhook id: {"url", "kinds": [...] or null (all), "secret", "created_at", "created_by", "rotated_at"?}}
    hooks = JSONAttribute(default=dict)
    version = VersionAttribute()


class ChangedMeanwhile(Exception):
    """Another change of the project's webhooks won the race: read them again and retry."""


def _pk(project_id: str) -> str:
    return f"webhooks#{project_id}"


def read(project_id: str) -> WebhooksItem:
    """The project's webhooks item (a new, empty one when it has none)."""
    try:
        return WebhooksItem.get(_pk(project_id), consistent_read=True)
    except DoesNotExist:
        return WebhooksItem(_pk(project_id), project_id=project_id, hooks={})


def hooks(project_id: str) -> dict[str, dict[str, Any]]:
    return dict(read(project_id).hooks or {})


def save(item: WebhooksItem) -> None:
    """Stores the changed item, unless someone else changed it since it was read (ChangedMeanwhile)."""
    try:
        item.save()
    except PutError as error:
        if condition_failed(error):
            raise ChangedMeanwhile(item.project_id) from error
        raise


def delete_project(project_id: str) -> int:
    try:
        WebhooksItem.get(_pk(project_id)).delete()
    except DoesNotExist:
        return 0
    return 1
