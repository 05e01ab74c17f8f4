"""The official posthog SDK against the local stack: get_feature_flag returns Abacus's variant."""

from datetime import UTC, datetime, timedelta

import pytest
from posthog import Posthog

from abacus.core import hashing
from abacus_local.client import REQUEST_TIMEOUT_S
from tests.e2e.conftest import TOKEN, invoke_nightly


@pytest.fixture
def posthog_client(stack_url):
    # The SDK gives up on /flags/ after 3 s and on captures after 15 s: the API may take the gateway's 30 s.
    client = Posthog(
        project_api_key=TOKEN,
        host=stack_url,
        sync_mode=True,
        timeout=REQUEST_TIMEOUT_S,
        feature_flags_request_timeout_seconds=REQUEST_TIMEOUT_S,
    )
    yield client
    client.shutdown()


def test_get_feature_flag_returns_the_assigned_variant(client, posthog_client):
    key = "sdk-flag"
    client.create_experiment(
        {
            "key": key,
            "name": "SDK",
            "variants": [{"key": "control", "weight": 30}, {"key": "red", "weight": 30}, {"key": "blue", "weight": 40}],
            "primary_metric": {"event": "signup"},
            "targeting": [{"conditions": [{"property": "plan", "operator": "eq", "value": "pro"}]}],
            "overrides": {"qa-person": "blue"},
        }
    )
    client.launch(key)
    split = [("control", 30), ("red", 30), ("blue", 40)]
    for index in range(20):
        distinct_id = f"sdk-user-{index}"
        got = posthog_client.get_feature_flag(
            key, distinct_id, person_properties={"plan": "pro"}, send_feature_flag_events=False
        )
        assert got == hashing.pick_variant(key, distinct_id, split)
        # The same variant through Abacus's own API: one sticky assignment.
        assert client.assign(distinct_id, [key], properties={"plan": "pro"})[key] == got
    outside = posthog_client.get_feature_flag(
        key, "sdk-free-user", person_properties={"plan": "free"}, send_feature_flag_events=False
    )
    assert outside is False
    assert posthog_client.get_feature_flag(key, "qa-person", send_feature_flag_events=False) == "blue"


def test_capture_delivers_events_and_feature_flag_called_counts_as_exposure(client, posthog_client, stack_url):
    key = "sdk-capture"
    client.create_experiment(
        {
            "key": key,
            "name": "SDK capture",
            "variants": [{"key": "control", "weight": 50}, {"key": "new", "weight": 50}],
            "primary_metric": {"event": "sdk-purchase"},
        }
    )
    client.launch(key)
    seen = {}
    for index in range(10):
        distinct_id = f"capture-user-{index}"
        # The SDK reports the flag's use as a $feature_flag_called event: that is the exposure.
        seen[distinct_id] = posthog_client.get_feature_flag(key, distinct_id)
        if index % 2 == 0:
            posthog_client.capture("sdk-purchase", distinct_id=distinct_id, properties={"amount": 12})
    posthog_client.flush()
    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, key)
    rows = {row["key"]: row for row in client.results(key)["variants"]}
    for variant in ("control", "new"):
        users = [d for d, v in seen.items() if v == variant]
        buyers = [d for d in users if int(d.rsplit("-", 1)[1]) % 2 == 0]
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (len(users), len(buyers))
