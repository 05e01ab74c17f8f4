"""Creating projects: an id, a public project token and a secret admin key."""

import secrets

from abacus.storage import projects as store


def create(name: str, project_id: str | None = None, token: str | None = None, admin_key: str | None = None) -> dict:
    """Creates a project and returns {project_id, name, token, admin_key}: the only time the keys are
    shown, as the table keeps only their hashes. Fixed values (for the local stack) may be given."""
    project_id = project_id or secrets.token_hex(8)
    token = token or f"phc_{secrets.token_urlsafe(32)}"
    admin_key = admin_key or f"abacus_{secrets.token_urlsafe(32)}"
    store.put_project(project_id, name, {store.TOKEN: token, store.ADMIN: admin_key})
    return {"project_id": project_id, "name": name, "token": token, "admin_key": admin_key}
