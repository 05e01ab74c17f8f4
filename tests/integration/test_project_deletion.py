"""Deleting a project (`python -m abacus project delete ID --yes`) removes everything stored for
it from every table, and nothing of another project."""

import json

import boto3
import pytest

from tests.conftest import answer, invoke, sample_event

OTHER_TOKEN, OTHER_ADMIN = "phc_other", "abacus_other_admin"


def stored_items() -> dict[str, list[dict]]:
    """Every item of every table (moto's, small)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    return {name: client.scan(TableName=name)["Items"] for name in client.list_tables()["TableNames"]}


def mentions(items: dict[str, list[dict]], project_id: str) -> dict[str, int]:
    """Items per table whose key or content names the project."""
    found = {}
    for table, rows in items.items():
        count = sum(
            1
            for row in rows
            if any(
                value.get("S", "") == project_id
                or value.get("S", "").startswith(f"{project_id}#")
                or value.get("S", "") == f"project#{project_id}"
                for value in row.values()
            )
        )
        if count:
            found[table] = count
    return found


def a_project_with_data(project_id: str, token: str, admin_key: str) -> None:
    """An experiment, launched, a user assigned, events sent (one an exposure), results computed,
    a webhook, and an alert sent to it."""
    bearer = f"Bearer {admin_key}"
    assert answer(invoke("ResultsFunction", sample_event("create_experiment", authorization=bearer)))[0] == 201
    assert answer(invoke("ResultsFunction", sample_event("launch_experiment", authorization=bearer)))[0] == 200
    assign = sample_event("assign", body={"token": token, "distinct_id": f"{project_id}-user"})
    assert answer(invoke("AssignFunction", assign))[0] == 200
    exposure = {"experiment": "new-checkout", "variant": "control"}
    identify = {"$anon_distinct_id": f"{project_id}-anonymous", "$set": {"plan": "pro"}}
    events = [
        {"event": "$identify", "distinct_id": f"{project_id}-user", "uuid": "i1", "properties": identify},
        {"event": "purchase", "distinct_id": f"{project_id}-user", "uuid": "p1"},
        {"event": "$exposure", "distinct_id": "late", "uuid": "x1", "properties": exposure},
    ]
    sent = answer(invoke("IngestFunction", sample_event("post_events", body={"token": token, "events": events})))
    assert sent[1]["accepted"] == 3
    assert invoke("ResultsFunction", sample_event("recompute_results", authorization=bearer))["statusCode"] == 200
    status, webhook = answer(invoke("ResultsFunction", sample_event("create_webhook", authorization=bearer)))
    assert status == 201, webhook
    an_alert_delivered(project_id, webhook)


def an_alert_delivered(project_id: str, webhook: dict) -> None:
    """An alert of the experiment, recorded as the follow-up records it, and its delivery to the webhook."""
    from datetime import UTC, datetime

    from abacus.experiments import definitions
    from abacus.storage import alerts

    experiment_id = definitions.get(project_id, "new-checkout").experiment_id
    part, now = alerts.alert_part("decision", "ship:one-page"), datetime.now(UTC)
    assert alerts.mark(experiment_id, part, {"kind": "decision", "experiment": "new-checkout"}, now) is not None
    alerts.record_attempt(experiment_id, part, webhook["id"], webhook["url"], now, 204, None, "delivered")


def test_deleting_a_project_removes_all_of_it_and_nothing_else(project, capsys):
    from abacus import projects
    from abacus.__main__ import main

    projects.create("Other", project_id="other", token=OTHER_TOKEN, admin_key=OTHER_ADMIN)
    a_project_with_data("test", project["token"], project["admin_key"])
    a_project_with_data("other", OTHER_TOKEN, OTHER_ADMIN)
    before = stored_items()
    assert set(mentions(before, "test")) == {
        "ProjectsTable",
        "CredentialsTable",
        "ExperimentsTable",
        "AssignmentsTable",
        "EventsTable",
        "ResultsTable",
        "NightlyRunsTable",  # the recompute's run, its pages naming users
        "PersonsTable",  # the user who signed in, joined to their anonymous id
        "AlertsTable",  # the experiment's alert and its delivery
    }
    assert any(row["pk"]["S"] == "webhooks#test" for row in before["ProjectsTable"])

    capsys.readouterr()  # what the functions printed (their logs and metrics)
    assert main(["project", "delete", "test", "--yes"]) == 0
    deleted = json.loads(capsys.readouterr().out)["deleted"]
    # The signed-in user's assignment moved to their person's root id (the anonymous one) when joined.
    assert deleted["credentials"] == 4 and deleted["experiments"] == 1 and deleted["assignments"] == 3
    assert deleted["persons"] == 2 + 1  # the person's two ids, and the mark that the project has persons
    assert deleted["events"] == 3 and deleted["results"] >= 1 and deleted["projects"] == 1
    assert deleted["nightly_runs"] == 1 + 16  # the run's header, a page per shard
    assert deleted["alerts"] == 2 and deleted["webhooks"] == 1  # the alert and its delivery; the webhooks item

    after = stored_items()
    # What is left of it: the rate limit's counter for this minute, which expires by itself.
    left = [row["pk"]["S"] for row in after["ProjectsTable"] if "test" in row["pk"]["S"]]
    assert all(pk.startswith("rate#test#") for pk in left), left
    assert {t: n for t, n in mentions(after, "test").items() if t != "ProjectsTable"} == {}
    assert mentions(after, "other") == mentions(before, "other")  # the other project is whole

    refused = sample_event("get_experiment", authorization=f"Bearer {project['admin_key']}")
    assert answer(invoke("ResultsFunction", refused))[0] == 401
    assert main(["project", "delete", "test", "--yes"]) == 2  # no such project any more
    with pytest.raises(SystemExit):
        main(["project", "delete", "other"])  # --yes is required
