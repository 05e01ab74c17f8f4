"""Projects: creating one (an id, a public project token, a secret admin key and a secret, read-only
flags key for app servers that evaluate flags locally), listing them, rotating its keys, issuing
and revoking named admin keys (one a person, so that an experiment's history says who acted), and
deleting it with everything stored for it."""

import re
import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import TypedDict

from abacus.core.answers import NewProject, RotatedKeys
from abacus.experiments import bandit_weights, definitions
from abacus.storage import (
    alerts,
    assignments,
    bandit_phases,
    credentials,
    event_names,
    events,
    experiments,
    layer_allocations,
    live_counts,
    nightly_runs,
    persons,
    project_items,
    receipt_layouts,
    results,
    webhooks,
)

PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_KEY_NAME_LENGTH = 64
# Projects `list_projects` gives at most at once (its default: DEFAULT_LISTED).
MAX_LISTED, DEFAULT_LISTED = 1000, 100


class ListedProject(TypedDict):
    project_id: str
    name: str | None
    created_at: str | None  # None: its item is gone (a deletion that stopped half-way)


class ProjectPage(TypedDict):
    projects: list[ListedProject]
    next: str | None  # the id to list on from (`--after`), or None when there are no more


class ListedAdminKey(TypedDict):
    key_id: str  # public: `admin` (the project's own) or ak_ and 8 hex digits
    name: str | None  # None for the project's own
    created_at: str


class NewAdminKey(ListedAdminKey):
    project_id: str
    admin_key: str  # shown this once: only its hash is stored


def create(
    name: str,
    project_id: str | None = None,
    token: str | None = None,
    admin_key: str | None = None,
    flags_key: str | None = None,
) -> NewProject:
    """Creates a project and returns {project_id, name, token, admin_key, flags_key}: the only time
    the admin key and the flags key are shown, as the table keeps only their hashes (the token,
    public, is kept readable too, for the console's snippets). Fixed values (for the local stack)
    may be given."""
    project_id = project_id or secrets.token_hex(8)
    if not PROJECT_ID.fullmatch(project_id):
        # Table keys join a project id and a user's id with '#' (keys.py): an id must not hold one.
        raise ValueError("a project id is 1 to 64 lowercase letters, digits, '-' or '_'")
    token = token or f"phc_{secrets.token_urlsafe(32)}"
    admin_key = admin_key or _new_admin_key()
    flags_key = flags_key or _new_flags_key()
    # The project first: keys stored without it would open a project that is not there, where a
    # project stored without its keys (a failure between the two) opens nothing.
    project_items.put_project(project_id, name, token)
    credentials.put_project(
        project_id, {credentials.TOKEN: token, credentials.ADMIN: admin_key, credentials.FLAGS: flags_key}
    )
    return {"project_id": project_id, "name": name, "token": token, "admin_key": admin_key, "flags_key": flags_key}


def _new_admin_key() -> str:
    return f"abacus_{secrets.token_urlsafe(32)}"


def _new_flags_key() -> str:
    # PostHog's prefix for its secure (feature flags) keys: the SDKs send it as their secret key.
    return f"phs_{secrets.token_urlsafe(32)}"


def rotate(project_id: str, token: bool = False, admin_key: bool = False, flags_key: bool = False) -> RotatedKeys:
    """New keys for a project (any of the token, the admin key and the flags key); the old ones stop
    working (at once for admin keys; within the cache's TTL for tokens and flags keys). A project
    created before flags keys existed gets its first one this way. Returns the new keys: shown once."""
    answer: RotatedKeys = {"project_id": project_id}
    if token:
        answer["token"] = f"phc_{secrets.token_urlsafe(32)}"
        credentials.replace_credential(project_id, credentials.TOKEN, answer["token"])
        project_items.set_public_token(project_id, answer["token"])
    if admin_key:
        answer["admin_key"] = _new_admin_key()
        credentials.replace_credential(project_id, credentials.ADMIN, answer["admin_key"])
    if flags_key:
        answer["flags_key"] = _new_flags_key()
        credentials.replace_credential(project_id, credentials.FLAGS, answer["flags_key"])
    return answer


def list_projects(limit: int = DEFAULT_LISTED, after: str | None = None) -> ProjectPage:
    """Up to `limit` projects (id, name, creation), after the project `after`, and the id to list
    on from. Their ids come from a Scan of the credentials table (a few small items a project:
    under a read unit per eight projects scanned), their names from a BatchGetItem of their items
    in the projects table (half a read unit a project), never from a Scan of that table, which
    holds every project's counters too."""
    if not 1 <= limit <= MAX_LISTED:
        raise ValueError(f"limit: from 1 to {MAX_LISTED}")
    project_ids, next_after = credentials.project_ids(limit, after)
    items = project_items.described(project_ids)
    listed: list[ListedProject] = []
    for project_id in project_ids:
        item = items.get(project_id)
        created = item.created_at.isoformat() if item is not None else None
        listed.append({"project_id": project_id, "name": item.name if item else None, "created_at": created})
    return {"projects": listed, "next": next_after}


def checked_name(name: str, field: str = "name") -> str:
    """A person's name as a key or the history records it: 1 to MAX_KEY_NAME_LENGTH printable
    characters, spaces around it dropped (ValueError naming `field`)."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_KEY_NAME_LENGTH or not name.isprintable():
        raise ValueError(
            f"{field}: 1 to {MAX_KEY_NAME_LENGTH} printable characters (no tab, newline or other control "
            f"character); got {len(name)}"
        )
    return name


def create_admin_key(project_id: str, name: str) -> NewAdminKey:
    """A new admin key for one person, named: returned this once (only its hash is stored), with
    its public id, which lists show and `revoke_admin_key` takes. A project holds at most
    credentials.MAX_NAMED_ADMIN_KEYS of them."""
    name = checked_name(name)
    key = _new_admin_key()
    for _ in range(5):  # 8 hex digits: another draw when the project has that id already
        try:
            added = credentials.add_admin_key(project_id, f"ak_{secrets.token_hex(4)}", name, key)
        except KeyError:
            continue
        return {"project_id": project_id, **_listed_key(added), "admin_key": key}
    raise RuntimeError("no free admin key id in five draws")  # one chance in 10^40 or so


def admin_keys(project_id: str) -> list[ListedAdminKey]:
    """The project's admin keys (its own first, `admin`), never a key or its hash."""
    return [_listed_key(key) for key in credentials.admin_keys(project_id)]


def revoke_admin_key(project_id: str, key_id: str) -> ListedAdminKey:
    """Revokes a named admin key: requests with it are refused from now on, and the console
    sessions it signed in end."""
    return _listed_key(credentials.revoke_admin_key(project_id, key_id))


def _listed_key(key: credentials.AdminKey) -> ListedAdminKey:
    return {"key_id": key.key_id, "name": key.name, "created_at": key.created_at.isoformat()}


def delete(project_id: str, now: datetime) -> dict[str, int]:
    """Deletes a project and everything stored for it; returns the items deleted per table. Its
    keys go first, so nothing new arrives meanwhile; its own item last, so that a deletion that
    stops half-way can be run again. Events are found through the receipt index, from the
    project's creation until `now` (each day under every shard count it was stored with, whose
    records go after them); the rate limit's counters expire by themselves within the hour."""
    created = project_items.created_at(project_id)
    if created is None:
        raise ValueError(f"no project '{project_id}'")
    deleted: Counter[str] = Counter()
    deleted["credentials"] = credentials.delete_project(project_id)
    layer_keys: set[str] = set()
    for experiment in experiments.in_project(project_id, with_retired=True):
        experiment_id = experiment.experiment_id
        if (layer := definitions.definition(experiment).layer) is not None:
            layer_keys.add(layer.key)
        deleted["assignments"] += assignments.delete_experiment(experiment.assignment_partitions())
        deleted["results"] += results.delete_experiment(experiment_id)
        deleted["nightly_runs"] += nightly_runs.delete_experiment(experiment_id)
        deleted["alerts"] += alerts.delete_experiment(experiment_id)
        if phases := bandit_weights.phase_number(experiment):  # a bandit's phases after the first
            deleted["bandit_phases"] += bandit_phases.delete_experiment(experiment_id, phases)
        refused_scopes = [live_counts.run_scope(experiment_id, None)]  # its refused exposures while a draft
        if experiment.started_at is not None:
            variants = [variant.key for variant in definitions.definition(experiment).variants]
            deleted["live_counts"] += live_counts.delete_run(experiment_id, experiment.started_at, variants)
            refused_scopes.append(live_counts.run_scope(experiment_id, experiment.started_at))
        deleted["live_counts"] += live_counts.delete_refused(refused_scopes)
    deleted["live_counts"] += live_counts.delete_refused([project_id])  # exposures naming no experiment
    deleted["event_names"] = event_names.delete_project(project_id)
    if layer_keys:
        deleted["layers"] = layer_allocations.delete(project_id, layer_keys)
    deleted["experiments"] = experiments.delete_project(project_id)
    deleted["events"] = events.delete_received(project_id, created, now)
    deleted["receipt_layouts"] = receipt_layouts.delete_project(project_id, created.date(), now.date())
    deleted["persons"] = persons.delete_project(project_id)
    deleted["webhooks"] = webhooks.delete_project(project_id)
    deleted["projects"] = project_items.delete_project(project_id)
    return dict(deleted)


def move_keys() -> dict[str, int]:
    """Moves the keys of projects created before the credentials table existed from the projects
    table, which the functions may write, to the credentials table, which they may only read;
    {project id: keys moved}. Safe to run again: a project already moved is not found again, and one whose move
    stopped half-way is moved anew (the same items, written again)."""
    moved = {}
    for project_id, hashes in project_items.legacy_credentials().items():
        created = project_items.created_at(project_id) or datetime.now(UTC)
        credentials.put_hashes(project_id, hashes, created)
        project_items.forget_legacy_credentials(project_id, hashes)
        moved[project_id] = len(hashes)
    return moved
