"""The credentials table (issue 28, finding 7): the keys live where no function may write, and the
keys of projects created before it are moved there by the operator's `project move-keys`."""

from datetime import UTC, datetime

import boto3

from tests.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN, answer, invoke, sample_event


def keep_the_keys_in_the_projects_table(project_id: str, keys: dict[str, str]) -> None:
    """The project's keys as a stack created before issue 28 kept them: `cred#<hash>` items and the
    project item's `credential_hashes`, in the projects table; none in the credentials table."""
    from abacus.storage import credentials
    from abacus.storage.project_items import ProjectItem

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    hashes = {kind: credentials.hash_key(key) for kind, key in keys.items()}
    for kind, digest in hashes.items():
        item = {"pk": f"cred#{digest}", "project_id": project_id, "kind": kind, "key_hash": digest}
        dynamodb.put_item(
            TableName="ProjectsTable",
            Item={name: {"S": value} for name, value in item.items()}
            | {"created_at": {"S": "2026-01-01T00:00:00.000000+0000"}},
        )
        dynamodb.delete_item(TableName="CredentialsTable", Key={"pk": {"S": f"cred#{digest}"}})
    dynamodb.delete_item(TableName="CredentialsTable", Key={"pk": {"S": f"project#{project_id}"}})
    ProjectItem(f"project#{project_id}").update(actions=[ProjectItem.credential_hashes.set(hashes)])


def test_keys_kept_in_the_projects_table_open_nothing_until_moved_then_everything(project):
    from abacus import projects
    from abacus.storage.project_items import ProjectItem

    keep_the_keys_in_the_projects_table("test", {"token": TOKEN, "admin": ADMIN_KEY, "flags": FLAGS_KEY})
    # A key in the projects table, which the public functions may write, opens nothing.
    assert answer(invoke("ResultsFunction", sample_event("list_experiments")))[0] == 401
    assert answer(invoke("AssignFunction", sample_event("posthog_flag_definitions")))[0] == 401

    assert projects.move_keys() == {"test": 3}
    assert answer(invoke("ResultsFunction", sample_event("create_experiment")))[0] == 201
    assert answer(invoke("AssignFunction", sample_event("posthog_flag_definitions")))[0] == 200
    assert answer(invoke("IngestFunction", sample_event("post_events")))[0] == 200
    # Nothing of them is left where the functions may write; moving again finds nothing to move.
    scanned = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="ProjectsTable")["Items"]
    assert not [item for item in scanned if item["pk"]["S"].startswith("cred#")]
    assert ProjectItem.get("project#test").credential_hashes is None
    assert projects.move_keys() == {}
    # The moved keys rotate as any other.
    rotated = projects.rotate("test", admin_key=True)["admin_key"]
    assert answer(invoke("ResultsFunction", sample_event("list_experiments")))[0] == 401
    moved_on = sample_event("list_experiments", authorization=f"Bearer {rotated}")
    assert answer(invoke("ResultsFunction", moved_on))[0] == 200


def test_a_project_is_created_with_its_keys_in_the_credentials_table_alone(project):
    import json

    from abacus.storage.credentials import CredentialItem, hash_key

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    in_projects = json.dumps(dynamodb.scan(TableName="ProjectsTable")["Items"])
    assert hash_key(ADMIN_KEY) not in in_projects and hash_key(FLAGS_KEY) not in in_projects
    assert CredentialItem.get(f"cred#{hash_key(ADMIN_KEY)}").kind == "admin"
    assert CredentialItem.get("project#test").credential_hashes.as_dict() == {
        "token": hash_key(TOKEN),
        "admin": hash_key(ADMIN_KEY),
        "flags": hash_key(FLAGS_KEY),
    }
    assert datetime.now(UTC) >= CredentialItem.get("project#test").created_at
