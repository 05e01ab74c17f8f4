"""The flag definitions PostHog's server SDKs poll for local evaluation: what is published (and
what is left to the server), who may read them, and their ETag."""

import json
from typing import Any

import pytest

from abacus import projects
from abacus.assignment import sticky
from abacus.experiments.definitions import definition
from abacus.storage import experiments
from tests.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN, answer, function_of, invoke, sample_event
from tests.posthog_matcher import evaluate_locally

BASE = json.loads(sample_event("create_experiment")["body"])
OTHER_TOKEN, OTHER_FLAGS = "phc_other_project", "phs_other_project"


def admin(name: str, body: dict | None = None, path: str | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    return answer(invoke(function_of(event), event))


def create(key: str, launch: bool = True, **fields) -> None:
    assert admin("create_experiment", BASE | {"key": key} | fields)[0] == 201
    if launch:
        assert admin("launch_experiment", path=f"/experiments/{key}/launch")[0] == 200


def definitions(sample: str = "posthog_flag_definitions", **headers) -> dict:
    return invoke("AssignFunction", sample_event(sample, **headers))


def published() -> dict:
    response = definitions()
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


@pytest.fixture
def five_experiments(project):
    create(
        "checkout",
        variants=[{"key": "control", "weight": 30}, {"key": "red", "weight": 30}, {"key": "blue", "weight": 40}],
        rollout_percentage=60,
        targeting=[
            {"conditions": [{"property": "plan", "operator": "in", "value": ["pro", "team"]}]},
            {
                "conditions": [
                    {"property": "country", "operator": "neq", "value": "fr"},
                    {"property": "age", "operator": "gte", "value": 18},
                    {"property": "$browser", "operator": "contains", "value": "fox"},
                ]
            },
        ],
        overrides={"qa-1": "blue", "qa-2": "blue", "qa-3": "control"},
    )
    create("shipped", overrides={"qa-9": "control"})  # an override still wins once shipped
    assert admin("ship_experiment", {"variant": "one-page"}, path="/experiments/shipped/ship")[0] == 200
    create("draft", launch=False)
    create("unset", targeting=[{"conditions": [{"property": "coupon", "operator": "is_not_set"}]}])
    create("textual", targeting=[{"conditions": [{"property": "version", "operator": "gt", "value": "v2"}]}])


def test_running_and_complete_experiments_are_published_as_posthog_flags(five_experiments):
    document = published()
    flags = {flag["key"]: flag for flag in document["flags"]}
    assert sorted(flags) == ["checkout", "shipped", "textual", "unset"]  # no draft
    checkout = flags["checkout"]
    assert checkout["active"] and not checkout["ensure_experience_continuity"]
    assert checkout["filters"]["multivariate"]["variants"] == [
        {"key": "control", "name": "control", "rollout_percentage": 30},
        {"key": "red", "name": "red", "rollout_percentage": 30},
        {"key": "blue", "name": "blue", "rollout_percentage": 40},
    ]
    overrides, targeting = checkout["filters"]["groups"][:2], checkout["filters"]["groups"][2:]
    assert [(g["variant"], g["properties"][0]["value"], g["rollout_percentage"]) for g in overrides] == [
        ("blue", ["qa-1", "qa-2"], 100),
        ("control", ["qa-3"], 100),
    ]
    assert [group["rollout_percentage"] for group in targeting] == [60, 60]
    assert [[(p["key"], p["operator"], p["value"]) for p in group["properties"]] for group in targeting] == [
        [("plan", "exact", ["pro", "team"])],
        [("country", "is_not", ["fr"]), ("age", "gte", 18), ("$browser", "icontains", "fox")],
    ]
    shipped = flags["shipped"]["filters"]["groups"]
    assert shipped == [
        {
            "properties": [{"key": "distinct_id", "type": "person", "operator": "exact", "value": ["qa-9"]}],
            "rollout_percentage": 100,
            "variant": "control",
        },
        {"properties": [], "rollout_percentage": 100, "variant": "one-page"},
    ]
    # What the SDKs would evaluate differently is left to the server, and says why.
    for key in ("unset", "textual"):
        assert flags[key]["ensure_experience_continuity"] and flags[key]["filters"]["groups"] == []
    reasons = {entry["key"]: entry["reason"] for entry in document["evaluated_by_the_server"]}
    assert "is_not_set" in reasons["unset"] and "'v2': not a number" in reasons["textual"]
    assert document["property_matching_version"] == 2 and document["cohorts"] == {}


PEOPLE: list[tuple[str, dict[str, Any]]] = [
    ("qa-1", {}),
    ("qa-9", {}),
    ("qa-3", {"plan": "free"}),
    *[(f"pro-{n}", {"plan": "PRO"}) for n in range(200)],
    *[(f"team-{n}", {"plan": "team", "country": "de"}) for n in range(200)],
    *[(f"free-{n}", {"plan": "free"}) for n in range(100)],
    *[(f"fox-{n}", {"country": "de", "age": 30, "$browser": "Firefox"}) for n in range(200)],
    *[(f"young-{n}", {"country": "de", "age": "17", "$browser": "Firefox"}) for n in range(100)],
    *[(f"french-{n}", {"country": "FR", "age": 40, "$browser": "Firefox"}) for n in range(100)],
    *[(f"stranger-{n}", {}) for n in range(100)],
]


def test_posthog_pythons_evaluation_of_the_definitions_is_assigns_answer(five_experiments):
    """The SDK's own matcher on the published flags: each user's variant is /assign's (stateless
    part, here; tests/e2e/test_posthog_local_evaluation.py compares the SDK with /assign itself)."""
    flags = {flag["key"]: flag for flag in published()["flags"]}
    items = {item.key: item for item in experiments.in_project("test")}
    for key in ("checkout", "shipped"):
        item = items[key]
        spec = definition(item)
        for distinct_id, properties in PEOPLE:
            local = evaluate_locally(flags, key, distinct_id, properties)
            expected = sticky.stateless_variant(item, spec, distinct_id, properties)
            assert local == expected, (key, distinct_id, properties, local, expected)


def test_definitions_answer_304_to_their_etag_and_change_with_an_experiment(five_experiments):
    first = definitions()
    tag = first["headers"]["ETag"]
    assert tag.startswith('"') and first["headers"]["Cache-Control"] == "no-cache"
    again = definitions(**{"if-none-match": tag})
    assert (again["statusCode"], again["body"], again["headers"]["ETag"]) == (304, "", tag)
    assert definitions(**{"if-none-match": f'"other", W/{tag}'})["statusCode"] == 304
    assert definitions(**{"if-none-match": '"stale"'})["statusCode"] == 200
    # The older SDKs' path answers the same document.
    older = definitions("posthog_local_evaluation")
    assert (older["statusCode"], older["body"]) == (200, first["body"])
    status, _ = admin("update_experiment", {"rollout_percentage": 80}, path="/experiments/checkout")
    assert status == 200
    changed = definitions(**{"if-none-match": tag})
    assert changed["statusCode"] == 200 and changed["headers"]["ETag"] != tag


CREDENTIALS = {
    "missing": (None, 401),
    "not bearer": (f"Basic {FLAGS_KEY}", 401),
    "empty bearer": ("Bearer ", 401),
    "unknown key": ("Bearer phs_not_a_key", 401),
    "the admin key": (f"Bearer {ADMIN_KEY}", 403),
    "the project token": (f"Bearer {TOKEN}", 403),
}


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_definitions_take_the_flags_key_only(five_experiments, credential):
    header, status = CREDENTIALS[credential]
    for sample in ("posthog_flag_definitions", "posthog_local_evaluation"):
        got, body = answer(definitions(sample, authorization=header))
        assert got == status and body["error"]["field"] == "Authorization", (sample, body)
        assert "flags" not in body


def test_a_flags_key_reads_its_own_project_only_and_rotates(five_experiments):
    projects.create("Other", project_id="other", token=OTHER_TOKEN, flags_key=OTHER_FLAGS)
    other = answer(definitions(authorization=f"Bearer {OTHER_FLAGS}", **{}))
    assert other[0] == 403 and other[1]["error"]["field"] == "token"  # the sample's ?token= is this project's
    event = sample_event("posthog_flag_definitions", authorization=f"Bearer {OTHER_FLAGS}")
    event["rawQueryString"], event["queryStringParameters"] = (
        f"token={OTHER_TOKEN}&send_cohorts",
        {
            "token": OTHER_TOKEN,
            "send_cohorts": "",
        },
    )
    status, document = answer(invoke("AssignFunction", event))
    assert status == 200 and document["flags"] == []
    rotated = projects.rotate("test", flags_key=True)
    assert rotated["flags_key"].startswith("phs_") and set(rotated) == {"project_id", "flags_key"}
    assert answer(definitions())[0] == 401  # the old key: gone (no cache in tests)
    assert answer(definitions(authorization=f"Bearer {rotated['flags_key']}"))[0] == 200
