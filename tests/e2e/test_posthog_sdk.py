"""The official posthog SDK against the local stack: get_feature_flag returns Abacus's variant."""

from datetime import UTC, datetime, timedelta

import pytest
from posthog import Posthog

from abacus.core import hashing
from abacus_local.client import REQUEST_TIMEOUT_S
from tests.e2e.conftest import TOKEN, invoke_nightly, launch_split, people_who_would_switch


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


def test_set_person_properties_target_the_flag_without_sending_them_again(client, posthog_client):
    """set(distinct_id, properties) stores the person's properties: get_feature_flag without
    person_properties is then targeted by them; and alias() joins a new id to that person,
    properties and variant."""
    key = "sdk-person-properties"
    split = [("control", 50), ("pro-only", 50)]
    pro = [{"conditions": [{"property": "plan", "operator": "eq", "value": "pro"}]}]
    launch_split(client, key, split, "sdk-purchase", targeting=pro)
    [(buyer, account)] = people_who_would_switch(key, split, "sdk-set", 1)
    assert posthog_client.get_feature_flag(key, buyer, send_feature_flag_events=False) in (None, False)
    posthog_client.set(distinct_id=buyer, properties={"plan": "pro"})
    posthog_client.flush()
    variant = posthog_client.get_feature_flag(key, buyer, send_feature_flag_events=False)
    assert variant == hashing.pick_variant(key, buyer, split)
    # Another id, unknown: outside the targeting, until alias() joins it to the buyer.
    assert posthog_client.get_feature_flag(key, account, send_feature_flag_events=False) in (None, False)
    posthog_client.alias(previous_id=buyer, distinct_id=account)
    posthog_client.flush()
    assert posthog_client.get_feature_flag(key, account, send_feature_flag_events=False) == variant


def test_alias_keeps_a_person_in_the_variant_of_their_first_exposure(client, posthog_client, stack_url):
    key = "sdk-alias"
    split = [("control", 50), ("new", 50)]
    launch_split(client, key, split, "sdk-alias-purchase")
    people = people_who_would_switch(key, split, "sdk-alias", 4)
    for anon, user in people:
        shown = posthog_client.get_feature_flag(key, anon)  # the exposure, as $feature_flag_called
        assert shown == hashing.pick_variant(key, anon, split)
        posthog_client.alias(previous_id=anon, distinct_id=user)
        posthog_client.flush()
        assert posthog_client.get_feature_flag(key, user) == shown, (anon, user)  # a second exposure
        posthog_client.capture("sdk-alias-purchase", distinct_id=user)
    posthog_client.flush()
    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, key)
    rows = {row["key"]: row for row in client.results(key)["variants"]}
    for variant, _ in split:
        # Half the people started in each variant: each counted once, with their purchase.
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (2, 2), variant


def test_a_group_experiment_through_posthog_python_counts_companies(client, posthog_client, stack_url):
    """get_feature_flag(..., groups={"company": ...}): every member of a company gets the
    company's variant, PostHog's group hash of its key; the $feature_flag_called and the purchases
    captured with groups= count per company, whichever member sends them."""
    key = "sdk-companies"
    split = [("control", 50), ("annual", 50)]
    launch_split(client, key, split, "sdk-company-purchase", group_type="company")
    companies = [f"sdk-company-{n}" for n in range(6)]
    shown = {}
    for company in companies:
        for member in range(3):
            groups = {"company": company}
            variant = posthog_client.get_feature_flag(key, f"{company}-member-{member}", groups=groups)
            assert variant == hashing.pick_variant(key, company, split), (company, member)
            shown[company] = variant
    assert posthog_client.get_feature_flag(key, "no-company", send_feature_flag_events=False) in (None, False)
    buying = companies[::2]  # two members of each buy: the company converts once
    for company in buying:
        for member in range(2):
            posthog_client.capture(
                "sdk-company-purchase", distinct_id=f"{company}-member-{member}", groups={"company": company}
            )
    posthog_client.flush()
    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, key)
    results = client.results(key)
    assert results["counted_unit"] == "companies"
    rows = {row["key"]: row for row in results["variants"]}
    for variant, _ in split:
        exposed = [company for company in companies if shown[company] == variant]
        bought = [company for company in buying if shown[company] == variant]
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (len(exposed), len(bought)), variant
