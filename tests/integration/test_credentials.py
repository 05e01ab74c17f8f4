"""The credentials table (issue 28, finding 7): the keys live where no function may write, and the
keys of projects created before it are moved there by the operator's `project move-keys`."""

import json
from datetime import UTC, datetime

import boto3
import pytest

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


# Issue 31: admin keys per person, named, each revocable; the history says whose key acted.


def as_key(name: str, key: str, **changes) -> tuple[int, dict]:
    """The sample request `name`, sent with the admin key `key`."""
    event = sample_event(name, authorization=f"Bearer {key}")
    event.update(changes)
    return answer(invoke("ResultsFunction", event))


def test_named_admin_keys_open_the_api_and_each_change_says_whose_key_made_it(project):
    from abacus import projects

    alice = projects.create_admin_key("test", "Alice")
    bob = projects.create_admin_key("test", "  Bob Ó'Brien 🙂 ")  # spaces around it dropped
    assert alice["key_id"] != bob["key_id"] and bob["name"] == "Bob Ó'Brien 🙂"
    # The same shape as the project's own admin key: a random 256-bit secret.
    assert alice["admin_key"].startswith("abacus_") and len(alice["admin_key"]) == len("abacus_") + 43
    assert as_key("create_experiment", alice["admin_key"])[0] == 201
    assert as_key("update_experiment", ADMIN_KEY)[0] == 200
    assert as_key("launch_experiment", bob["admin_key"])[0] == 200
    status, body = as_key("stop_experiment", alice["admin_key"])
    assert status == 200, body
    assert [(entry["action"], entry.get("by")) for entry in body["history"]] == [
        ("create", f"Alice ({alice['key_id']})"),
        ("update", "admin key"),
        ("launch", f"Bob Ó'Brien 🙂 ({bob['key_id']})"),
        ("stop", f"Alice ({alice['key_id']})"),
    ]


def test_key_list_shows_ids_names_and_dates_never_a_key_or_its_hash(project):
    from abacus import projects
    from abacus.storage.credentials import hash_key

    alice = projects.create_admin_key("test", "Alice")
    listed = projects.admin_keys("test")
    assert [(key["key_id"], key["name"]) for key in listed] == [("admin", None), (alice["key_id"], "Alice")]
    assert listed[1]["created_at"] == alice["created_at"]
    words = json.dumps(listed)
    for secret in (ADMIN_KEY, alice["admin_key"]):
        assert secret not in words and hash_key(secret) not in words


def test_revoking_a_named_key_refuses_it_at_once_and_ends_the_console_sessions_it_signed_in(project):
    from abacus import projects
    from tests.integration.test_console import get, session_cookie, sign_in

    alice, bob = projects.create_admin_key("test", "Alice"), projects.create_admin_key("test", "Bob")
    signed_in = sign_in(alice["admin_key"])
    assert signed_in["statusCode"] == 303, signed_in
    alices_session = signed_in["cookies"][0].split(";", 1)[0]
    assert f".{alice['key_id']}." in alices_session and alice["admin_key"] not in alices_session
    bobs_session = sign_in(bob["admin_key"])["cookies"][0].split(";", 1)[0]
    own_session = session_cookie()
    for cookie in (alices_session, bobs_session, own_session):
        assert get("console_experiments", cookie)["statusCode"] == 200
    assert as_key("list_experiments", alice["admin_key"])[0] == 200

    revoked = projects.revoke_admin_key("test", alice["key_id"])
    assert (revoked["key_id"], revoked["name"]) == (alice["key_id"], "Alice")
    assert as_key("list_experiments", alice["admin_key"])[0] == 401
    refused = get("console_experiments", alices_session)
    assert refused["statusCode"] == 303 and refused["headers"]["Location"] == "/console/sign-in"
    assert sign_in(alice["admin_key"])["statusCode"] == 401
    # The other keys, and the sessions they signed in, go on.
    for cookie in (bobs_session, own_session):
        assert get("console_experiments", cookie)["statusCode"] == 200
    assert as_key("list_experiments", bob["admin_key"])[0] == 200
    assert [key["key_id"] for key in projects.admin_keys("test")] == ["admin", bob["key_id"]]


def test_the_console_records_the_holder_of_the_key_that_signed_in(project):
    from abacus import projects
    from tests.integration.test_console import sign_in
    from tests.integration.test_console_stages import FORM, page, post

    alice = projects.create_admin_key("test", "Alice <b>")
    cookie = sign_in(alice["admin_key"])["cookies"][0].split(";", 1)[0]
    assert post("console_create", cookie, FORM)["statusCode"] == 303
    assert post("console_experiment_action", cookie, {"action": "launch", "confirmed": "yes"})["statusCode"] == 303
    assert as_key("stop_experiment", ADMIN_KEY)[0] == 200
    status, body = as_key("get_experiment", ADMIN_KEY)
    assert status == 200, body
    actor = f"Alice <b> ({alice['key_id']})"
    assert [(entry["action"], entry.get("by")) for entry in body["history"]] == [
        ("create", actor),
        ("launch", actor),
        ("stop", "admin key"),
    ]
    shown = page("console_experiment", cookie)["body"]
    history = shown[shown.index('<ol id="history">') :]
    assert "stop (running → complete) · by admin key" in history
    assert f"launch (draft → running) · by Alice &lt;b&gt; ({alice['key_id']})" in history  # escaped
    assert "create · by Alice &lt;b&gt;" in history and "<b>" not in history


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "Al\nice", "tab\there", "bell\x07"])
def test_a_keys_name_is_1_to_64_printable_characters(project, name):
    from abacus import projects

    with pytest.raises(ValueError, match=r"^name: 1 to 64 printable characters"):
        projects.create_admin_key("test", name)
    assert [key["key_id"] for key in projects.admin_keys("test")] == ["admin"]


def test_a_project_holds_at_most_50_named_keys(project, monkeypatch):
    from abacus import projects
    from abacus.storage import credentials

    keys = [projects.create_admin_key("test", f"Person {n}") for n in range(credentials.MAX_NAMED_ADMIN_KEYS - 1)]
    stale = credentials.CredentialItem.get("project#test")  # as another operator read it: 49 keys
    keys.append(projects.create_admin_key("test", "Person 49"))
    with pytest.raises(ValueError, match="holds 50 named admin keys, the most it may: revoke one"):
        projects.create_admin_key("test", "One too many")
    # Two operators at once: one read 49 keys before the other added the 50th. DynamoDB's
    # condition refuses the 51st, and its key, already stored, is deleted: it opens nothing.
    monkeypatch.setattr(credentials, "_project", lambda project_id: stale)
    with pytest.raises(ValueError, match="changed meanwhile"):
        credentials.add_admin_key("test", "ak_0badcafe", "Raced", "abacus_raced_key")
    assert credentials.key_owner("abacus_raced_key") is None
    monkeypatch.undo()
    assert len(projects.admin_keys("test")) == 1 + credentials.MAX_NAMED_ADMIN_KEYS
    projects.revoke_admin_key("test", keys[0]["key_id"])
    assert projects.create_admin_key("test", "Room again")["name"] == "Room again"


def test_a_key_is_issued_again_once_every_named_key_was_revoked(project):
    from abacus import projects

    first = projects.create_admin_key("test", "Alice")
    projects.revoke_admin_key("test", first["key_id"])  # the project's map of named keys: empty
    again = projects.create_admin_key("test", "Alice")
    assert [key["key_id"] for key in projects.admin_keys("test")] == ["admin", again["key_id"]]
    assert as_key("list_experiments", again["admin_key"])[0] == 200


def test_only_named_keys_are_revoked_and_only_those_the_project_has(project):
    from abacus import projects

    with pytest.raises(ValueError, match=r"^key_id: 'admin' is the project's own admin key: it is replaced"):
        projects.revoke_admin_key("test", "admin")
    with pytest.raises(ValueError, match=r"^key_id: project 'test' has no admin key 'ak_12345678'"):
        projects.revoke_admin_key("test", "ak_12345678")
    with pytest.raises(ValueError, match=r"^no project 'nowhere'"):
        projects.create_admin_key("nowhere", "Alice")
    assert as_key("list_experiments", ADMIN_KEY)[0] == 200


def test_deleting_a_project_deletes_its_named_keys(project):
    from abacus import projects
    from abacus.storage.credentials import key_owner

    alice = projects.create_admin_key("test", "Alice")
    projects.delete("test", datetime.now(UTC))
    assert key_owner(alice["admin_key"]) is None
    left = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="CredentialsTable")["Items"]
    assert left == []
