"""The console's sessions, in the projects table: `console#<project>#<sha256 of the session id>`,
written at sign-in, deleted at sign-out, removed by DynamoDB's TTL (`expires_at`) once they end.

A session cookie is valid only while its item is here, so signing out ends it on the server: a
copy of the cookie taken before is refused after. The item holds the session id's hash, not the
id: a read of the table gives nothing to put in a cookie."""

import hashlib

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta


class ConsoleSessionItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute()  # Unix seconds: the session's end, and the item's TTL


def _key(project_id: str, session_id: str) -> str:
    return f"console#{project_id}#{hashlib.sha256(session_id.encode()).hexdigest()}"


def put(project_id: str, session_id: str, expires: int) -> None:
    """Records a session at sign-in (one PutItem)."""
    ConsoleSessionItem(_key(project_id, session_id), expires_at=expires).save()


def expiry(project_id: str, session_id: str) -> int | None:
    """When the session ends, or None when it has been ended or never began (one strongly
    consistent GetItem: a sign-out is seen by the next request, whichever environment serves it)."""
    try:
        return int(ConsoleSessionItem.get(_key(project_id, session_id), consistent_read=True).expires_at)
    except DoesNotExist:
        return None


def delete(project_id: str, session_id: str) -> None:
    """Ends a session at sign-out (one DeleteItem; ending one already ended changes nothing)."""
    ConsoleSessionItem(_key(project_id, session_id)).delete()
