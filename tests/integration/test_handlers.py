"""The three handlers driven by the sample events in events/, against moto tables from template.yaml."""

import json
from datetime import UTC, datetime

import pytest

from tests.conftest import TOKEN, answer, invoke, sample_event, sample_path, stored_assignment, stored_assignments

VALID_EXPERIMENT = json.loads(sample_event("create_experiment")["body"])


def create_and_launch(key: str = "new-checkout") -> None:
    body = json.loads(sample_event("create_experiment")["body"]) | {"key": key}
    assert answer(invoke("ResultsFunction", sample_event("create_experiment", body=body)))[0] == 201
    launched = invoke("ResultsFunction", sample_event("launch_experiment", path=f"/experiments/{key}/launch"))
    assert answer(launched)[0] == 200


def test_walking_skeleton_from_sample_events(project):
    status, created = answer(invoke("ResultsFunction", sample_event("create_experiment")))
    assert status == 201 and created["status"] == "draft"

    status, fetched = answer(invoke("ResultsFunction", sample_event("get_experiment")))
    assert status == 200 and fetched["key"] == "new-checkout"

    status, launched = answer(invoke("ResultsFunction", sample_event("launch_experiment")))
    assert status == 200 and launched["status"] == "running" and launched["started_at"]

    status, assigned = answer(invoke("AssignFunction", sample_event("assign")))
    assert status == 200
    assert assigned["assignments"]["new-checkout"] in {"control", "one-page"}

    status, ingested = answer(invoke("IngestFunction", sample_event("post_events")))
    assert status == 200 and ingested == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": [],
        "refused_exposures": 0,
        "refused_exposure_reasons": {},
    }

    status, pending = answer(invoke("ResultsFunction", sample_event("get_results")))
    assert status == 200 and pending["status"] == "pending"

    # A night far ahead counts up to the present (a cut-off never passes it): today so far.
    today = datetime.now(UTC).date().isoformat()
    summary = invoke(
        "ResultsFunction", json.loads(sample_path("nightly").read_text()) | {"time": "2099-01-01T03:00:00Z"}
    )
    assert summary["date"] in {today, datetime.now(UTC).date().isoformat()}  # a run across midnight: either
    assert summary == {"date": summary["date"], "planned": 1, "units": 16, "failed": 0}

    status, results = answer(invoke("ResultsFunction", sample_event("get_results")))
    assert status == 200 and results["status"] == "ready" and results["date"] == summary["date"]
    rows = {row["key"]: row for row in results["variants"]}
    variant = assigned["assignments"]["new-checkout"]
    assert rows[variant]["exposures"] == 1 and rows[variant]["conversions"] == 1

    status, stopped = answer(invoke("ResultsFunction", sample_event("stop_experiment")))
    assert status == 200 and stopped["status"] == "complete"


def test_assignment_is_sticky_and_exposure_recorded_once(project):

    create_and_launch()
    variants = {
        answer(invoke("AssignFunction", sample_event("assign")))[1]["assignments"]["new-checkout"] for _ in range(3)
    }
    assert len(variants) == 1
    items = list(stored_assignments("new-checkout"))
    assert len(items) == 1
    first_exposure = items[0].exposed_at
    invoke("AssignFunction", sample_event("assign"))
    assert stored_assignment("new-checkout", "user-42").exposed_at == first_exposure


def test_assignment_without_expose_records_no_exposure(project):

    create_and_launch()
    body = {"token": TOKEN, "distinct_id": "prefetch", "experiments": ["new-checkout"], "expose": False}
    status, _ = answer(invoke("AssignFunction", sample_event("assign", body=body)))
    assert status == 200
    assert stored_assignment("new-checkout", "prefetch").exposed_at is None


def test_draft_experiment_assigns_nobody(project):
    invoke("ResultsFunction", sample_event("create_experiment"))
    status, assigned = answer(invoke("AssignFunction", sample_event("assign")))
    assert status == 200 and assigned == {"assignments": {"new-checkout": None}}


def test_redelivered_events_are_counted_once(project):
    first = answer(invoke("IngestFunction", sample_event("post_events")))[1]
    again = answer(invoke("IngestFunction", sample_event("post_events")))[1]
    assert first["accepted"] == 2 and again == {
        "accepted": 0,
        "duplicates": 2,
        "rejected": [],
        "refused_exposures": 0,
        "refused_exposure_reasons": {},
    }


def test_bad_events_are_rejected_one_by_one(project):
    events = [
        {"event": "purchase", "distinct_id": "a"},
        {"event": "purchase"},
        {"event": "purchase", "distinct_id": "b", "timestamp": "yesterday"},
        {"event": "purchase", "distinct_id": "c", "timestamp": "2999-01-01T00:00:00Z"},
        "not an object",
    ]
    status, body = answer(
        invoke("IngestFunction", sample_event("post_events", body={"token": TOKEN, "events": events}))
    )
    assert status == 200 and body["accepted"] == 1
    errors = {r["index"]: r["error"] for r in body["rejected"]}
    assert set(errors) == {1, 2, 3, 4}
    assert "distinct_id" in errors[1] and "timestamp" in errors[2] and "future" in errors[3]


@pytest.mark.parametrize(
    ("function", "name", "change", "status", "field"),
    [
        ("ResultsFunction", "create_experiment", {"body": None, "raw": "{not json"}, 400, "body"),
        ("ResultsFunction", "create_experiment", {"body": {"key": "x"}}, 422, "name"),
        ("ResultsFunction", "create_experiment", {"body": VALID_EXPERIMENT | {"key": "Bad Key!"}}, 422, "key"),
        ("ResultsFunction", "create_experiment", {"body": VALID_EXPERIMENT | {"key": "k#1"}}, 422, "key"),
        ("AssignFunction", "assign", {"body": {"token": TOKEN, "distinct_id": ""}}, 422, "distinct_id"),
        ("AssignFunction", "assign", {"body": {"token": TOKEN, "distinct_id": "x" * 201}}, 422, "distinct_id"),
        ("IngestFunction", "post_events", {"raw": "[1, 2"}, 400, "body"),
        ("IngestFunction", "post_events", {"body": {"token": TOKEN, "events": []}}, 422, "events"),
    ],
)
def test_malformed_requests_get_a_4xx_naming_the_field(project, function, name, change, status, field):
    event = sample_event(name, body=change.get("body"))
    if "raw" in change:
        event["body"] = change["raw"]
    got_status, body = answer(invoke(function, event))
    assert got_status == status
    assert body["error"]["field"].startswith(field), body


def test_weights_must_sum_to_100(project):
    body = json.loads(sample_event("create_experiment")["body"])
    body["variants"][1]["weight"] = 60
    status, answer_body = answer(invoke("ResultsFunction", sample_event("create_experiment", body=body)))
    assert status == 422 and answer_body["error"]["field"] == "variants"
    assert "sum to 100" in answer_body["error"]["message"]


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer wrong", 401), ("Basic abc", 401), (f"Bearer {TOKEN}", 403)],
)
def test_admin_routes_refuse_wrong_credentials(project, authorization, status):
    for function, name in [("ResultsFunction", "create_experiment"), ("ResultsFunction", "get_results")]:
        got, body = answer(invoke(function, sample_event(name, authorization=authorization)))
        assert got == status and body["error"]["field"] == "Authorization"


def test_unknown_token_is_refused(project):
    cases: list[tuple[str, str, dict]] = [
        ("AssignFunction", "assign", {"token": "phc_nope", "distinct_id": "u"}),
        ("IngestFunction", "post_events", {"token": "phc_nope", "events": [{"event": "e", "distinct_id": "u"}]}),
    ]
    for function, name, body in cases:
        status, answer_body = answer(invoke(function, sample_event(name, body=body)))
        assert status == 401 and answer_body["error"]["field"] == "token"


def test_unknown_experiment_is_404(project):
    status, body = answer(invoke("ResultsFunction", sample_event("get_experiment")))
    assert status == 404
    status, body = answer(invoke("ResultsFunction", sample_event("get_results")))
    assert status == 404
    status, body = answer(invoke("AssignFunction", sample_event("assign")))
    assert status == 404 and body["error"]["field"] == "experiments"


def test_lifecycle_refusals_are_409(project):
    invoke("ResultsFunction", sample_event("create_experiment"))
    assert answer(invoke("ResultsFunction", sample_event("create_experiment")))[0] == 409
    status, body = answer(invoke("ResultsFunction", sample_event("stop_experiment")))
    assert status == 409 and "draft" in body["error"]["message"]
    invoke("ResultsFunction", sample_event("launch_experiment"))
    assert answer(invoke("ResultsFunction", sample_event("launch_experiment")))[0] == 409
    invoke("ResultsFunction", sample_event("stop_experiment"))
    assert answer(invoke("ResultsFunction", sample_event("stop_experiment")))[0] == 409
    status, assigned = answer(invoke("AssignFunction", sample_event("assign")))
    assert assigned["assignments"]["new-checkout"] == "control"


def test_another_projects_admin_key_sees_nothing(project):
    from abacus import projects

    other = projects.create("Other")
    invoke("ResultsFunction", sample_event("create_experiment"))
    status, _ = answer(
        invoke("ResultsFunction", sample_event("get_experiment", authorization=f"Bearer {other['admin_key']}"))
    )
    assert status == 404


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_json_bodies_are_read_whatever_the_content_type(project, content_type):
    event = sample_event("create_experiment", **{"content-type": content_type})
    status, body = answer(invoke("ResultsFunction", event))
    assert status == 201, body


def aimed_at_webhook(name: str, webhook_id: str) -> dict:
    event = sample_event(name, path=sample_event(name)["rawPath"].replace("wh_0123456789ab", webhook_id))
    event["pathParameters"] = {"webhook_id": webhook_id}
    return event


def test_webhooks_and_alerts_from_sample_events(project):
    status, created = answer(invoke("ResultsFunction", sample_event("create_webhook")))
    assert status == 201 and created["id"].startswith("wh_") and created["secret"].startswith("whsec_")
    assert (created["url"], created["kinds"], created["rotated_at"]) == (
        "https://93.184.215.14/abacus",
        ["decision", "srm"],
        None,
    )
    listing = sample_event("list_webhooks")
    status, listed = answer(invoke("ResultsFunction", listing))
    assert status == 200 and listed == {"webhooks": [{k: v for k, v in created.items() if k != "secret"}]}

    status, rotated = answer(invoke("ResultsFunction", aimed_at_webhook("rotate_webhook_secret", created["id"])))
    assert status == 200 and rotated["id"] == created["id"] and rotated["rotated_at"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    listed_again = invoke("ResultsFunction", listing)["body"]
    assert created["secret"] not in listed_again and rotated["secret"] not in listed_again  # shown once each

    deleted = invoke("ResultsFunction", aimed_at_webhook("delete_webhook", created["id"]))
    assert deleted["statusCode"] == 204 and not deleted.get("body")
    assert answer(invoke("ResultsFunction", listing)) == (200, {"webhooks": []})
    for name in ("delete_webhook", "rotate_webhook_secret"):
        status, body = answer(invoke("ResultsFunction", aimed_at_webhook(name, created["id"])))
        assert status == 404 and created["id"] in body["error"]["message"], name

    status, body = answer(invoke("ResultsFunction", sample_event("get_experiment_alerts")))
    assert status == 404 and body["error"]["code"] == "not_found"
    invoke("ResultsFunction", sample_event("create_experiment"))
    assert answer(invoke("ResultsFunction", sample_event("get_experiment_alerts"))) == (
        200,
        {"experiment": "new-checkout", "alerts": []},
    )
