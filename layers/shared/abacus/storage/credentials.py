"""The credentials table: every project's keys, as SHA-256 hashes, in a table of their own.

Items: `cred#<sha256 of key>` (project_id, kind: token, admin or flags; a named admin key's id and
name), by which a request's key is found; and `project#<id>` (the hashes of the project's current
keys, by kind, so that rotating one replaces it; and its named admin keys, by id, each with its
name, hash and creation time). A key is found by its hash, so the table never holds a usable key.

A project has its own admin key (made with it, key id `admin`, replaced by rotation) and up to
MAX_NAMED_ADMIN_KEYS named ones (`ak_` and 8 hex digits), each given to one person and revoked
alone, so that the history of an experiment says whose key changed it.

Only the operator writes here (`python -m abacus project ...`, `... key ...`, with their AWS
credentials): the functions may only GetItem it (template.yaml), so that none of them, the
internet-facing ones least of all, can mint or change a credential, whatever a bug in them did.
"""

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pynamodb.attributes import MapAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, delete_each, nullable

TOKEN = "token"  # noqa: S105 - a credential kind, not a secret
ADMIN = "admin"
FLAGS = "flags"  # the read-only key of flag definitions, for app servers evaluating flags locally
# The key id of a project's own admin key, made with the project (rotated, never revoked).
PROJECT_ADMIN_KEY = "admin"
# Named admin keys a project may hold at once: each is one entry of the project's item, read
# whenever a console session is checked, so the item stays small (50 entries: about 8 KB).
MAX_NAMED_ADMIN_KEYS = 50


class CredentialItem(Model):
    class Meta(TableMeta):
        table_name = settings.credentials_table

    pk = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    # On a key's item: its kind and its hash (compared in constant time when found); on a named
    # admin key's, its id and name too.
    kind = nullable(UnicodeAttribute())
    key_hash = nullable(UnicodeAttribute())
    key_id = nullable(UnicodeAttribute())
    name = nullable(UnicodeAttribute())
    # On a project's item: the hashes of its current keys, by kind; its named admin keys, by id
    # ({"name", "key_hash", "created_at"}).
    credential_hashes: MapAttribute[str, str] = MapAttribute(null=True)
    admin_keys: MapAttribute[str, Any] = MapAttribute(null=True)


def actor(key_id: str, name: str | None) -> str:
    """Who acts with an admin key, as an experiment's history records it: a named key's name and
    id ("Alice (ak_1a2b3c4d)"), or "admin key" for the project's own."""
    return f"{name} ({key_id})" if name and key_id != PROJECT_ADMIN_KEY else "admin key"


class KeyOwner(NamedTuple):
    """Whose a key is: its project and kind; for an admin key, which one (its id and name)."""

    project_id: str
    kind: str
    key_id: str | None = None  # an admin key's: PROJECT_ADMIN_KEY, or a named key's ak_...
    name: str | None = None  # a named admin key's

    @property
    def actor(self) -> str:
        return actor(self.key_id or PROJECT_ADMIN_KEY, self.name)


class AdminKey(NamedTuple):
    """An admin key as listed: its public id, its name (None for the project's own) and when it
    was made. Never the key, nor its hash."""

    key_id: str
    name: str | None
    created_at: datetime


class SigningHash(NamedTuple):
    """The stored hash of an admin key (what a console session it signed in is signed with), and
    who holds that key."""

    key_hash: str
    actor: str


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


def _project(project_id: str) -> CredentialItem | None:
    """The project's item (one strongly consistent GetItem: a key revoked a moment ago is seen
    gone), or None when no keys were ever stored for it."""
    try:
        return CredentialItem.get(f"project#{project_id}", consistent_read=True)
    except DoesNotExist:
        return None


def _hashes(project_id: str) -> dict[str, str] | None:
    """The project's current keys' hashes by kind; None when no keys were ever stored for it."""
    project = _project(project_id)
    if project is None:
        return None
    return project.credential_hashes.as_dict() if project.credential_hashes else {}


def _named(project: CredentialItem) -> dict[str, dict[str, str]]:
    """The project's named admin keys: {key id: {"name", "key_hash", "created_at"}}."""
    return project.admin_keys.as_dict() if project.admin_keys else {}


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
    """The hash of a project's current key of `kind` (what its report links are signed with)."""
    return (_hashes(project_id) or {}).get(kind)


def signing_hash(project_id: str, key_id: str) -> SigningHash | None:
    """The hash of the project's admin key `key_id` (its own, PROJECT_ADMIN_KEY, or a named one)
    and who holds it; None once that key is revoked or rotated away, or for no such project (one
    GetItem)."""
    project = _project(project_id)
    if project is None:
        return None
    if key_id == PROJECT_ADMIN_KEY:
        own = (project.credential_hashes.as_dict() if project.credential_hashes else {}).get(ADMIN)
        return SigningHash(own, actor(key_id, None)) if own else None
    entry = _named(project).get(key_id)
    return SigningHash(entry["key_hash"], actor(key_id, entry["name"])) if entry else None


def key_owner(key: str) -> KeyOwner | None:
    """Whose a project token, admin key or flags key is (its project, kind, and for an admin key
    its id and name), or None when no project has it."""
    digest = hash_key(key)
    try:
        # Strongly consistent: a key revoked or rotated a moment ago is refused by the next request.
        item = CredentialItem.get(f"cred#{digest}", consistent_read=True)
    except DoesNotExist:
        return None
    if item.kind is None or not hmac.compare_digest(item.key_hash or "", digest):
        return None
    if item.kind != ADMIN:
        return KeyOwner(item.project_id, item.kind)
    # The project's own admin key's item names no id: it was stored before named keys existed.
    return KeyOwner(item.project_id, item.kind, item.key_id or PROJECT_ADMIN_KEY, item.name)


def add_admin_key(project_id: str, key_id: str, name: str, key: str) -> AdminKey:
    """Stores a named admin key of the project: its own item (by which requests find it), then
    its entry on the project's item, refused past MAX_NAMED_ADMIN_KEYS (ValueError). A key id the
    project already has is refused too (KeyError: the caller draws another)."""
    project = _project(project_id)
    if project is None:
        raise ValueError(f"no project '{project_id}'")
    named = _named(project)
    if key_id in named or key_id == PROJECT_ADMIN_KEY:
        raise KeyError(key_id)
    if len(named) >= MAX_NAMED_ADMIN_KEYS:
        raise ValueError(_too_many(project_id))
    now, digest = datetime.now(UTC), hash_key(key)
    item = CredentialItem(
        f"cred#{digest}", project_id=project_id, kind=ADMIN, key_hash=digest, key_id=key_id, name=name, created_at=now
    )
    item.save(condition=CredentialItem.pk.does_not_exist())
    entry = {"name": name, "key_hash": digest, "created_at": now.isoformat()}
    try:
        _add_entry(project_id, key_id, entry, first=project.admin_keys is None)
    except BaseException:
        # Not listed, so never revocable: the key must not open anything either.
        CredentialItem(f"cred#{digest}").delete()
        raise
    return AdminKey(key_id, name, now)


def _add_entry(project_id: str, key_id: str, entry: dict[str, str], first: bool) -> None:
    """The key's entry on the project's item, under the bound whatever other operators add
    meanwhile (the condition is checked by DynamoDB, on the item as it is then)."""
    project = CredentialItem(f"project#{project_id}")
    try:
        if first:  # the map itself: a path into a map that is not there cannot be set
            project.update(
                actions=[CredentialItem.admin_keys.set({key_id: entry})],
                condition=CredentialItem.pk.exists() & CredentialItem.admin_keys.does_not_exist(),
            )
        else:
            project.update(
                actions=[CredentialItem.admin_keys[key_id].set(entry)],
                condition=(size(CredentialItem.admin_keys) < MAX_NAMED_ADMIN_KEYS)  # type: ignore[no-untyped-call]
                & CredentialItem.admin_keys[key_id].does_not_exist(),
            )
    except UpdateError as error:
        if condition_failed(error):
            raise ValueError(
                f"the admin keys of project '{project_id}' changed meanwhile (another `key create` or `key "
                f"revoke`), or it holds {MAX_NAMED_ADMIN_KEYS} named keys already: run the command again"
            ) from error
        raise


def _too_many(project_id: str) -> str:
    return (
        f"project '{project_id}' holds {MAX_NAMED_ADMIN_KEYS} named admin keys, the most it may: revoke one "
        f"(`python -m abacus key revoke --project {project_id} KEY_ID`) first"
    )


def admin_keys(project_id: str) -> list[AdminKey]:
    """The project's admin keys: its own (PROJECT_ADMIN_KEY) first, then its named ones by
    creation (two GetItems); ValueError for no such project."""
    project = _project(project_id)
    if project is None:
        raise ValueError(f"no project '{project_id}'")
    listed = []
    own = (project.credential_hashes.as_dict() if project.credential_hashes else {}).get(ADMIN)
    if own:
        try:
            listed.append(AdminKey(PROJECT_ADMIN_KEY, None, CredentialItem.get(f"cred#{own}").created_at))
        except DoesNotExist:
            pass  # a rotation half done: its new key is not stored, so it opens nothing
    named = [
        AdminKey(key_id, entry["name"], datetime.fromisoformat(entry["created_at"]))
        for key_id, entry in _named(project).items()
    ]
    return listed + sorted(named, key=lambda key: (key.created_at, key.key_id))


def revoke_admin_key(project_id: str, key_id: str) -> AdminKey:
    """Revokes a named admin key: its item goes first (it opens nothing from then on), then its
    entry on the project's item (the console sessions it signed in end with it). Safe to run
    again after a failure half-way. ValueError: no such project or key, or the project's own."""
    project = _project(project_id)
    if project is None:
        raise ValueError(f"no project '{project_id}'")
    if key_id == PROJECT_ADMIN_KEY:
        raise ValueError(
            f"key_id: '{PROJECT_ADMIN_KEY}' is the project's own admin key: it is replaced, not revoked "
            f"(`python -m abacus project rotate {project_id} --admin-key`)"
        )
    entry = _named(project).get(key_id)
    if entry is None:
        raise ValueError(f"key_id: project '{project_id}' has no admin key '{key_id}' (`key list` lists them)")
    CredentialItem(f"cred#{entry['key_hash']}").delete()
    CredentialItem(f"project#{project_id}").update(actions=[CredentialItem.admin_keys[key_id].remove()])
    return AdminKey(key_id, entry["name"], datetime.fromisoformat(entry["created_at"]))


def project_ids(limit: int, after: str | None) -> tuple[list[str], str | None]:
    """Up to `limit` project ids after `after`, in the table's order, and the id to go on from
    (None: no more). A Scan of this table, which holds a few small items per project (its item
    and one per key): under a read unit per eight projects."""
    start = {"pk": {"S": f"project#{after}"}} if after is not None else None
    found: Iterator[CredentialItem] = CredentialItem.scan(
        CredentialItem.pk.startswith("project#"),
        limit=limit,
        last_evaluated_key=start,
        attributes_to_get=["pk", "project_id"],
    )
    ids = [item.project_id for item in found]
    more = getattr(found, "last_evaluated_key", None) is not None
    return ids, ids[-1] if ids and more else None


def delete_project(project_id: str) -> int:
    """Deletes the project's keys (they stop opening anything), then its item here."""
    project = _project(project_id)
    if project is None:
        return 0
    hashes = project.credential_hashes.as_dict() if project.credential_hashes else {}
    digests = [*hashes.values(), *(entry["key_hash"] for entry in _named(project).values())]
    owned = [CredentialItem(f"cred#{digest}") for digest in digests]
    return delete_each(CredentialItem, [*owned, CredentialItem(f"project#{project_id}")])
