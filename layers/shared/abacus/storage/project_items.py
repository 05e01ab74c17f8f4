"""The projects table's project items: `project#<id>` (name, created_at, its public token).

The project token is public (every app ships it in its JavaScript), so the project's item keeps it
readable, for the console's snippets; requests are looked up by its hash in the credentials table
(storage/credentials.py), which holds every key and which no function may write. Before issue 28
the keys' hashes were kept here too (`cred#<hash>` items and the project item's
`credential_hashes`): `legacy_credentials` finds them for the move.
"""

from datetime import UTC, datetime

from pynamodb.attributes import MapAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, delete_each, nullable


class ProjectItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    name = nullable(UnicodeAttribute())
    project_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    # Its current project token, which is public (None: created before it was kept).
    public_token = nullable(UnicodeAttribute())
    # Before issue 28: the hashes of its keys, by kind (they are in the credentials table now).
    credential_hashes: MapAttribute[str, str] = MapAttribute(null=True)


def put_project(project_id: str, name: str, token: str | None) -> None:
    """Stores a project's item, with its public token."""
    ProjectItem(
        f"project#{project_id}", name=name, project_id=project_id, created_at=datetime.now(UTC), public_token=token
    ).save()


def set_public_token(project_id: str, token: str) -> None:
    """A rotated project token, kept readable for the console's snippets."""
    ProjectItem(f"project#{project_id}").update(
        actions=[ProjectItem.public_token.set(token)], condition=ProjectItem.pk.exists()
    )


def public_token(project_id: str) -> str | None:
    """The project's current token, for the console's snippets; None for a project created before
    tokens were kept readable (or no such project)."""
    try:
        return ProjectItem.get(f"project#{project_id}", attributes_to_get=["public_token"]).public_token
    except DoesNotExist:
        return None


def created_at(project_id: str) -> datetime | None:
    """When the project was created, or None when there is no such project."""
    try:
        return ProjectItem.get(f"project#{project_id}").created_at
    except DoesNotExist:
        return None


def described(project_ids: list[str]) -> dict[str, ProjectItem]:
    """The items of these projects, by id (BatchGetItem, 100 keys a call; a project with no item
    is left out)."""
    keys = [f"project#{project_id}" for project_id in project_ids]
    found = ProjectItem.batch_get(keys, attributes_to_get=["pk", "project_id", "name", "created_at"])
    return {item.project_id: item for item in found}


def legacy_credentials() -> dict[str, dict[str, str]]:
    """{project id: {kind: key hash}} of the projects whose keys this table still holds, as it did
    before issue 28 (one Scan: an operator's one-off move, `python -m abacus project move-keys`)."""
    found = ProjectItem.scan(ProjectItem.pk.startswith("project#") & ProjectItem.credential_hashes.exists())
    return {item.project_id: item.credential_hashes.as_dict() for item in found if item.credential_hashes}


def forget_legacy_credentials(project_id: str, hashes: dict[str, str]) -> int:
    """Removes a project's keys from this table once the credentials table holds them."""
    deleted = delete_each(ProjectItem, [ProjectItem(f"cred#{digest}") for digest in hashes.values()])
    ProjectItem(f"project#{project_id}").update(actions=[ProjectItem.credential_hashes.remove()])
    return deleted


def delete_project(project_id: str) -> int:
    """Deletes the project's own item (after everything else of it)."""
    return delete_each(ProjectItem, [ProjectItem(f"project#{project_id}")])
