"""The projects table: projects, and their credentials stored as SHA-256 hashes.

Items: `project#<id>` (name, created_at, its credentials' hashes, its public token) and
`cred#<sha256 of key>` (project_id, kind). A key is found by its hash, so the table never holds a
usable secret: the admin key and the flags key are kept as hashes alone. The project token is
public (every app ships it in its JavaScript), so the project's item also keeps it readable, for
the console's snippets; requests are still looked up by its hash.
"""

import hashlib
import hmac
from datetime import UTC, datetime

from pynamodb.attributes import MapAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from abacus.settings import settings
from abacus.storage.base import TableMeta, condition_failed, delete_each, nullable

TOKEN = "token"  # noqa: S105 - a credential kind, not a secret
ADMIN = "admin"
FLAGS = "flags"  # the read-only key of flag definitions, for app servers evaluating flags locally


class ProjectItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    name = nullable(UnicodeAttribute())
    project_id = UnicodeAttribute()
    kind = nullable(UnicodeAttribute())
    key_hash = nullable(UnicodeAttribute())
    created_at = UTCDateTimeAttribute()
    # On a project item: the hashes of its current credentials, by kind, so they can be rotated.
    credential_hashes: MapAttribute[str, str] = MapAttribute(null=True)
    # On a project item: its current project token, which is public (None: created before it was kept).
    public_token = nullable(UnicodeAttribute())


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def put_project(project_id: str, name: str, credentials: dict[str, str]) -> None:
    """Stores a project and its credentials ({kind: key}); keys already stored for it are kept."""
    now = datetime.now(UTC)
    for kind, key in credentials.items():
        _put_credential(project_id, kind, key, now)
    hashes = {kind: hash_key(key) for kind, key in credentials.items()}
    ProjectItem(
        f"project#{project_id}",
        name=name,
        project_id=project_id,
        created_at=now,
        credential_hashes=hashes,
        public_token=credentials.get(TOKEN),
    ).save()


def _put_credential(project_id: str, kind: str, key: str, now: datetime) -> None:
    digest = hash_key(key)
    item = ProjectItem(f"cred#{digest}", project_id=project_id, kind=kind, key_hash=digest, created_at=now)
    try:
        # Never let one project's key be taken over by another.
        item.save(
            condition=ProjectItem.pk.does_not_exist()
            | ((ProjectItem.project_id == project_id) & (ProjectItem.kind == kind))
        )
    except PutError as error:
        if condition_failed(error):
            raise ValueError(f"that {kind} key already belongs to another project") from error
        raise


def replace_credential(project_id: str, kind: str, new_key: str) -> None:
    """Rotation: `new_key` opens the project from now on, and its previous key of that kind no longer."""
    try:
        project = ProjectItem.get(f"project#{project_id}")
    except DoesNotExist:
        raise ValueError(f"no project '{project_id}'") from None
    _put_credential(project_id, kind, new_key, datetime.now(UTC))
    hashes = project.credential_hashes.as_dict() if project.credential_hashes else {}
    old = hashes.get(kind)
    hashes[kind] = hash_key(new_key)
    project.update(actions=[ProjectItem.credential_hashes.set(hashes), *_readable(kind, new_key)])
    if old and old != hashes[kind]:
        ProjectItem(f"cred#{old}").delete()


def _readable(kind: str, key: str) -> list[Action]:
    """The update that keeps a new project token readable on the project's item; none for the
    admin key and the flags key, which are secret."""
    return [ProjectItem.public_token.set(key)] if kind == TOKEN else []


def public_token(project_id: str) -> str | None:
    """The project's current token, for the console's snippets; None for a project created before
    tokens were kept readable (or no such project)."""
    try:
        return ProjectItem.get(f"project#{project_id}", attributes_to_get=["public_token"]).public_token
    except DoesNotExist:
        return None


def credential_hash(project_id: str, kind: str) -> str | None:
    """The hash of a project's current key of `kind` (what signed report links are keyed with)."""
    try:
        # Only the hashes: the item's public token is read only where it is shown (public_token).
        project = ProjectItem.get(f"project#{project_id}", attributes_to_get=["credential_hashes"])
    except DoesNotExist:
        return None
    return (project.credential_hashes.as_dict() if project.credential_hashes else {}).get(kind)


def key_owner(key: str) -> tuple[str, str] | None:
    """(project id, kind) of a project token, admin key or flags key, or None when no project has it."""
    digest = hash_key(key)
    try:
        item = ProjectItem.get(f"cred#{digest}")
    except DoesNotExist:
        return None
    if item.kind is None or not hmac.compare_digest(item.key_hash or "", digest):
        return None
    return item.project_id, item.kind


def created_at(project_id: str) -> datetime | None:
    """When the project was created, or None when there is no such project."""
    try:
        return ProjectItem.get(f"project#{project_id}").created_at
    except DoesNotExist:
        return None


def delete_credentials(project_id: str) -> int:
    """Deletes the project's credentials: its token, admin key and flags key stop opening anything."""
    try:
        project = ProjectItem.get(f"project#{project_id}")
    except DoesNotExist:
        return 0
    hashes = project.credential_hashes.as_dict() if project.credential_hashes else {}
    owned = [ProjectItem(f"cred#{digest}") for digest in hashes.values()]
    return delete_each(ProjectItem, owned)


def delete_project(project_id: str) -> int:
    """Deletes the project's own item (after everything else of it)."""
    return delete_each(ProjectItem, [ProjectItem(f"project#{project_id}")])
