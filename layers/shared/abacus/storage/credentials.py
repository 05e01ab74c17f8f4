"""The credentials table: every project's keys, as SHA-256 hashes, in a table of their own.

Items: `cred#<sha256 of key>` (project_id, kind: token, admin or flags), by which a request's key
is found; and `project#<id>` (the hashes of the project's current keys, by kind, so that rotating
one replaces it). A key is found by its hash, so the table never holds a usable key.

Only the operator writes here (`python -m abacus project ...`, with their AWS credentials): the
functions may only GetItem it (template.yaml), so that none of them, the internet-facing ones
least of all, can mint or change a credential, whatever a bug in them did.
"""

import hashlib
import hmac
from datetime import UTC, datetime

from pynamodb.attributes import MapAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, delete_each, nullable

TOKEN = "token"  # noqa: S105 - a credential kind, not a secret
ADMIN = "admin"
FLAGS = "flags"  # the read-only key of flag definitions, for app servers evaluating flags locally


class CredentialItem(Model):
    class Meta(TableMeta):
        table_name = settings.credentials_table

    pk = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    # On a key's item: its kind and its hash (compared in constant time when found).
    kind = nullable(UnicodeAttribute())
    key_hash = nullable(UnicodeAttribute())
    # On a project's item: the hashes of its current keys, by kind.
    credential_hashes: MapAttribute[str, str] = MapAttribute(null=True)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def put_project(project_id: str, credentials: dict[str, str]) -> None:
    """Stores a new project's keys ({kind: key}); a key another project holds is refused (ValueError)."""
    now = datetime.now(UTC)
    put_hashes(project_id, {kind: hash_key(key) for kind, key in credentials.items()}, now)


def put_hashes(project_id: str, hashes: dict[str, str], now: datetime) -> None:
    """Stores a project's keys by their hashes ({kind: hash}), and the project's item naming them."""
    for kind, digest in hashes.items():
        _put_credential(project_id, kind, digest, now)
    CredentialItem(f"project#{project_id}", project_id=project_id, created_at=now, credential_hashes=hashes).save()


def _put_credential(project_id: str, kind: str, digest: str, now: datetime) -> None:
    item = CredentialItem(f"cred#{digest}", project_id=project_id, kind=kind, key_hash=digest, created_at=now)
    try:
        # Never let one project's key be taken over by another.
        item.save(
            condition=CredentialItem.pk.does_not_exist()
            | ((CredentialItem.project_id == project_id) & (CredentialItem.kind == kind))
        )
    except PutError as error:
        if condition_failed(error):
            raise ValueError(f"that {kind} key already belongs to another project") from error
        raise


def _hashes(project_id: str) -> dict[str, str] | None:
    """The project's current keys' hashes by kind; None when no keys were ever stored for it."""
    try:
        project = CredentialItem.get(f"project#{project_id}")
    except DoesNotExist:
        return None
    return project.credential_hashes.as_dict() if project.credential_hashes else {}


def replace_credential(project_id: str, kind: str, new_key: str) -> None:
    """Rotation: `new_key` opens the project from now on, and its previous key of that kind no longer."""
    hashes = _hashes(project_id)
    if hashes is None:
        raise ValueError(f"no project '{project_id}'")
    now = datetime.now(UTC)
    _put_credential(project_id, kind, hash_key(new_key), now)
    old, hashes[kind] = hashes.get(kind), hash_key(new_key)
    CredentialItem(f"project#{project_id}").update(actions=[CredentialItem.credential_hashes.set(hashes)])
    if old and old != hashes[kind]:
        CredentialItem(f"cred#{old}").delete()


def credential_hash(project_id: str, kind: str) -> str | None:
    """The hash of a project's current key of `kind` (what the console's signing key is made with)."""
    return (_hashes(project_id) or {}).get(kind)


def key_owner(key: str) -> tuple[str, str] | None:
    """(project id, kind) of a project token, admin key or flags key, or None when no project has it."""
    digest = hash_key(key)
    try:
        item = CredentialItem.get(f"cred#{digest}")
    except DoesNotExist:
        return None
    if item.kind is None or not hmac.compare_digest(item.key_hash or "", digest):
        return None
    return item.project_id, item.kind


def delete_project(project_id: str) -> int:
    """Deletes the project's keys (they stop opening anything), then its item here."""
    hashes = _hashes(project_id)
    if hashes is None:
        return 0
    owned = [CredentialItem(f"cred#{digest}") for digest in hashes.values()]
    return delete_each(CredentialItem, [*owned, CredentialItem(f"project#{project_id}")])
