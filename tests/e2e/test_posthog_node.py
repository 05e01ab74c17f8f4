"""posthog-node (pinned in tests/sdk-js/package.json), the official Node.js server SDK, against the
local stack: getFeatureFlag returns Abacus's variant, and its $feature_flag_called and captured
events are counted exactly by the nightly results."""

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from abacus.core import hashing
from abacus_local.client import REQUEST_TIMEOUT_S
from abacus_local.template import ROOT
from tests.e2e.conftest import FLAGS_KEY, TOKEN, invoke_nightly, launch_split, people_who_would_switch

SESSION = ROOT / "tests" / "sdk-js" / "posthog_node_session.mjs"
TIMEOUT_MS = int(REQUEST_TIMEOUT_S * 1000)  # the SDK's, for every request it makes to the API


def run_posthog_node(stack_url: str, key: str, users: list[str], buyers: list[str], properties: dict) -> dict:
    node = shutil.which("node")
    assert node, "node is needed for the posthog-node tests"
    assert (SESSION.parent / "node_modules" / "posthog-node").exists(), "make test installs tests/sdk-js (npm ci)"
    arguments = {
        "host": stack_url,
        "token": TOKEN,
        "key": key,
        "users": users,
        "buyers": buyers,
        "timeoutMs": TIMEOUT_MS,
    }
    finished = subprocess.run(
        [node, str(SESSION), json.dumps(arguments | {"personProperties": properties})],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])["variants"]


def test_posthog_node_flags_and_captures_are_counted(client, stack_url):
    key = "node-checkout"
    client.create_experiment(
        {
            "key": key,
            "name": "posthog-node",
            "variants": [{"key": "control", "weight": 50}, {"key": "express", "weight": 50}],
            "primary_metric": {"event": "node-purchase"},
            "targeting": [{"conditions": [{"property": "plan", "operator": "eq", "value": "pro"}]}],
        }
    )
    client.launch(key)
    users = [f"node-user-{index}" for index in range(12)]
    buyers = users[::3]
    variants = run_posthog_node(stack_url, key, users, buyers, {"plan": "pro"})
    for user in users:
        assert variants[user] == client.assign(user, [key], expose=False, properties={"plan": "pro"})[key]
    # Outside the targeting, the flag is off, and no exposure is counted.
    assert run_posthog_node(stack_url, key, ["node-free-user"], [], {"plan": "free"}) == {"node-free-user": False}

    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, key)
    rows = {row["key"]: row for row in client.results(key)["variants"]}
    for variant in ("control", "express"):
        exposed = [user for user in users if variants[user] == variant]
        bought = [user for user in exposed if user in buyers]
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (len(exposed), len(bought)), variant


LOCAL = ROOT / "tests" / "sdk-js" / "posthog_node_local.mjs"


def test_posthog_node_evaluates_flags_locally_as_assign_answers(client, stack_url):
    """posthog-node with the project's flags key evaluates in-process, from the definitions it
    polls: for 800 users, across a targeted experiment, a layer's two experiments (a flag
    dependency) and a project holdout, its answers are /assign's."""
    split = [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}]
    specs: list[dict[str, Any]] = [
        {
            "key": "node-holdout",
            "variants": [{"key": "control", "weight": 10}, {"key": "rest", "weight": 90}],
            "holdout": {"layer": None},
        },
        {
            "key": "node-targeted",
            "variants": split,
            "rollout_percentage": 80,
            "targeting": [{"conditions": [{"property": "plan", "operator": "in", "value": ["pro", "team"]}]}],
        },
        {"key": "node-layer-a", "variants": split, "layer": {"key": "node", "share": 30}},
        {"key": "node-layer-b", "variants": split, "layer": {"key": "node", "share": 70}},
    ]
    for spec in specs:
        client.create_experiment(spec | {"name": spec["key"], "primary_metric": {"event": "node-purchase"}})
        client.launch(spec["key"])
    keys = [spec["key"] for spec in specs]
    plans = ["pro", "team", "free", None]
    users = [[f"node-local-{n}", {"plan": plans[n % 4]} if plans[n % 4] else {}] for n in range(800)]
    arguments = {"host": stack_url, "token": TOKEN, "flagsKey": FLAGS_KEY, "keys": keys, "users": users}
    answers = run_node(LOCAL, arguments, timeout_s=300)["answers"]
    seen = set()
    for user, properties in users:
        expected = client.assign(user, keys, expose=False, properties=properties)
        got = {key: value or None for key, value in answers[user].items()}
        assert got == expected, (user, properties, got, expected)
        seen |= {(key, value) for key, value in got.items()}
    assert {("node-holdout", "control"), ("node-layer-a", "b"), ("node-layer-b", None), ("node-targeted", None)} <= seen
    # Stopped: a running holdout would hold a share of users out of this module's later experiments.
    for key in keys:
        client.stop(key)


PERSONS = ROOT / "tests" / "sdk-js" / "posthog_node_persons.mjs"


def run_node(script: Path, arguments: dict[str, Any], timeout_s: float = 120) -> Any:
    """What a node script of tests/sdk-js printed last (JSON), given `arguments` and the timeout."""
    node = shutil.which("node")
    assert node, "node is needed for the posthog-node tests"
    finished = subprocess.run(
        [node, str(script), json.dumps(arguments | {"timeoutMs": TIMEOUT_MS})],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_posthog_node_identify_and_alias_keep_a_person_in_one_variant(client, stack_url):
    """identify({distinctId, properties: {$anon_distinct_id}}) and alias({distinctId, alias}), in
    both directions, join the anonymous id to the user's: the user's flag (read without the
    anonymous id) is the anonymous id's, though the two ids hash to different variants, and the
    results count one exposure and one purchase per person."""
    key = "node-persons"
    split = [("control", 50), ("express", 50)]
    launch_split(client, key, split, "node-person-purchase")
    joins = ["identify", "alias", "alias-anon"] * 2
    pairs = people_who_would_switch(key, split, "node", len(joins))
    people = [{"anon": anon, "user": user, "join": join} for (anon, user), join in zip(pairs, joins, strict=True)]
    seen = run_node(PERSONS, {"host": stack_url, "token": TOKEN, "key": key, "people": people})
    for person in people:
        anon, user = person["anon"], person["user"]
        assert seen["anon"][anon] == hashing.pick_variant(key, anon, split), person
        assert seen["user"][user] == seen["anon"][anon], person  # the person's, not the user id's own

    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, key)
    rows = {row["key"]: row for row in client.results(key)["variants"]}
    for variant, _ in split:
        persons = sum(1 for person in people if seen["anon"][person["anon"]] == variant)
        assert persons > 0
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (persons, persons), variant


GROUPS = ROOT / "tests" / "sdk-js" / "posthog_node_groups.mjs"


def test_posthog_node_group_experiment_counts_companies(client, stack_url):
    """getFeatureFlag(key, id, {groups}) and capture({groups}): members of one company share its
    variant (PostHog's group hash of the company's key), and the results count companies: a
    company converts once, however many of its members buy."""
    key = "node-companies"
    split = [("control", 50), ("seats", 50)]
    launch_split(client, key, split, "node-company-purchase", group_type="company")
    companies = [f"node-company-{n}" for n in range(6)]
    members: list[dict[str, Any]] = [
        {"id": f"{company}-{n}", "company": company, "buys": index % 2 == 0 and n < 2}
        for index, company in enumerate(companies)
        for n in range(3)
    ]
    seen = run_node(GROUPS, {"host": stack_url, "token": TOKEN, "key": key, "members": members})
    shown = {company: hashing.pick_variant(key, company, split) for company in companies}
    assert all(seen[member["id"]] == shown[member["company"]] for member in members), seen

    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, key)
    results = client.results(key)
    assert results["counted_unit"] == "companies"
    rows = {row["key"]: row for row in results["variants"]}
    bought = {member["company"] for member in members if member["buys"]}
    for variant, _ in split:
        exposed = [company for company in companies if shown[company] == variant]
        converted = [company for company in exposed if company in bought]
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (len(exposed), len(converted)), variant
