"""Variant payloads (issue 18): JSON a variant carries, validated, frozen while running, and
answered by /assign on request, by /flags/ and /decide/ as PostHog's SDKs read them, in the local
evaluation definitions, and set from the console's form."""

import json
import re

import pytest
from posthog.types import FeatureFlagResult

from tests.conftest import TOKEN, answer, function_of, invoke, sample_event
from tests.integration.test_console import session_cookie
from tests.integration.test_console_stages import FORM, post, stored

BASE = json.loads(sample_event("create_experiment")["body"])
PAYLOAD = {"button": "Pay in one click", "price": 9.5, "layout": ["summary", "pay"], "beta": True, "note": None}
VARIANTS = [{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50, "payload": PAYLOAD}]


def admin(name: str, body: dict | None = None, path: str | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    return answer(invoke(function_of(event), event))


@pytest.fixture
def with_payload(project):
    assert admin("create_experiment", BASE | {"variants": VARIANTS, "overrides": {"qa-a": "one-page"}})[0] == 201
    assert admin("launch_experiment")[0] == 200


def assign(distinct_id: str, **fields) -> dict:
    status, body = admin("assign", {"token": TOKEN, "distinct_id": distinct_id, **fields})
    assert status == 200, body
    return body


def users_in(variant: str) -> str:
    return next(
        f"user-{n}" for n in range(100) if assign(f"user-{n}", expose=False)["assignments"]["new-checkout"] == variant
    )


def test_assign_answers_the_variants_payload_on_request(with_payload):
    shown = admin("get_experiment")[1]
    assert shown["variants"][1]["payload"] == PAYLOAD and shown["variants"][0]["payload"] is None
    in_one_page, in_control = users_in("one-page"), users_in("control")
    assert assign(in_one_page, payloads=True) == {
        "assignments": {"new-checkout": "one-page"},
        "payloads": {"new-checkout": PAYLOAD},
    }
    assert assign(in_control, payloads=True)["payloads"] == {"new-checkout": None}  # no payload given
    assert set(assign(in_one_page)) == {"assignments"}  # not asked: not sent


def test_posthog_sdks_read_the_payload_from_flags_and_decide(with_payload):
    flags = answer(
        invoke("AssignFunction", sample_event("posthog_flags", body={"api_key": TOKEN, "distinct_id": "qa-a"}))
    )
    metadata = flags[1]["flags"]["new-checkout"]["metadata"]
    assert isinstance(metadata["payload"], str) and json.loads(metadata["payload"]) == PAYLOAD
    # As posthog-python turns the record into what get_feature_flag_payload returns.
    result = FeatureFlagResult.from_value_and_payload("new-checkout", "one-page", metadata["payload"])
    assert result is not None and result.payload == PAYLOAD
    decided = answer(
        invoke("AssignFunction", sample_event("posthog_decide", body={"api_key": TOKEN, "distinct_id": "qa-a"}))
    )
    assert json.loads(decided[1]["featureFlagPayloads"]["new-checkout"]) == PAYLOAD
    control = next(n for n in range(100) if assign(f"c-{n}", expose=False)["assignments"]["new-checkout"] == "control")
    body = {"api_key": TOKEN, "distinct_id": f"c-{control}"}
    assert answer(invoke("AssignFunction", sample_event("posthog_decide", body=body)))[1]["featureFlagPayloads"] == {}


def test_the_local_evaluation_definitions_carry_the_payloads(with_payload):
    document = json.loads(invoke("AssignFunction", sample_event("posthog_flag_definitions"))["body"])
    payloads = document["flags"][0]["filters"]["payloads"]
    assert list(payloads) == ["one-page"] and json.loads(payloads["one-page"]) == PAYLOAD


def test_a_payload_over_4_kb_is_refused_naming_it(project):
    big = [VARIANTS[0], {"key": "one-page", "weight": 50, "payload": {"text": "x" * 4100}}]
    status, error = admin("create_experiment", BASE | {"variants": big})
    assert status == 422 and error["error"]["field"] == "variants[1].payload", error
    assert "at most 4,096 bytes as JSON" in error["error"]["message"]


def test_payloads_are_frozen_while_running(with_payload):
    changed = [VARIANTS[0], {**VARIANTS[1], "payload": {"button": "Changed"}}]
    status, error = admin("update_experiment", {"variants": changed})
    assert status == 409 and "variants" in error["error"]["message"], error
    assert admin("get_experiment")[1]["variants"][1]["payload"] == PAYLOAD


def test_the_console_form_sets_a_payload_and_names_a_broken_one(project):
    cookie = session_cookie()
    broken = post("console_check", cookie, {**FORM, "variant_payload_1": "{not json"})
    assert set(json.loads(broken["body"])["errors"]) == {"variant_payload_1"}
    too_big = post("console_check", cookie, {**FORM, "variant_payload_1": json.dumps("x" * 5000)})
    assert json.loads(too_big["body"])["errors"]["variant_payload_1"].startswith("variants[1].payload: ")
    created = post("console_create", cookie, {**FORM, "variant_payload_1": json.dumps(PAYLOAD)})
    assert created["statusCode"] == 303
    assert stored()["variants"][1]["payload"] == PAYLOAD
    form = invoke("ResultsFunction", {**sample_event("console_edit_form"), "cookies": [cookie]})["body"]
    shown = re.search(r'<textarea id="variant_payload_1"[^>]*>([^<]*)</textarea>', form)
    assert shown is not None and json.loads(shown.group(1).replace("&#34;", '"').replace("&quot;", '"')) == PAYLOAD
