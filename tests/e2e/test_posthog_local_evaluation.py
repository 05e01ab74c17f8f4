"""The official posthog SDK evaluating flags locally, from the definitions it polls with the
project's flags key: for 100,000 users its answer is /assign's, and its $feature_flag_called
events count each user's exposure once."""

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from posthog import Posthog

from abacus.assignment import sticky
from abacus.experiments.spec import ExperimentFields
from abacus.storage.experiments import ExperimentItem
from abacus_local.client import REQUEST_TIMEOUT_S
from tests.e2e.conftest import FLAGS_KEY, TOKEN, invoke_nightly

USERS = 100_000
CHECKED_BY_ASSIGN = 1_500  # of them, also asked of /assign over HTTP (the rest: its stateless part)
TARGETED: dict[str, Any] = {
    "key": "local-targeted",
    "name": "Targeted",
    "variants": [{"key": "control", "weight": 30}, {"key": "red", "weight": 30}, {"key": "blue", "weight": 40}],
    "primary_metric": {"event": "purchase"},
    "rollout_percentage": 70,
    "targeting": [
        {"conditions": [{"property": "plan", "operator": "in", "value": ["pro", "team"]}]},
        {
            "conditions": [
                {"property": "country", "operator": "neq", "value": "fr"},
                {"property": "age", "operator": "gte", "value": 18},
            ]
        },
    ],
    "overrides": {"user-7": "blue", "user-8": "control"},
}
PAYLOAD = {"headline": "Checkout in one step", "discount": 0.1, "steps": ["cart", "pay"]}
EVERYONE: dict[str, Any] = {
    "key": "local-everyone",
    "name": "Everyone",
    "variants": [{"key": "control", "weight": 50}, {"key": "new", "weight": 50, "payload": PAYLOAD}],
    "primary_metric": {"event": "purchase"},
}
SHIPPED = EVERYONE | {"key": "local-shipped", "name": "Shipped"}
# Two experiments of one layer: no user in both (experiments/experiment_layers.py), the SDK told so by the layer's flag.
LAYERED = [
    EVERYONE | {"key": "local-layer-a", "name": "Layer A", "layer": {"key": "e2e", "share": 40}},
    TARGETED | {"key": "local-layer-b", "name": "Layer B", "layer": {"key": "e2e", "share": 60}, "overrides": {}},
]
SERVER_ONLY = EVERYONE | {
    "key": "local-server-only",
    "name": "Needs the server",
    "targeting": [{"conditions": [{"property": "coupon", "operator": "is_not_set"}]}],
}


def person(rng: random.Random) -> dict:
    """A user's properties as an app would pass them: some missing, some cased differently."""
    drawn = {
        "plan": rng.choice(["pro", "Team", "free", "enterprise", None]),
        "country": rng.choice(["de", "fr", "FR", "us", None]),
        "age": rng.choice([12, 17, 18, 30, 65, "21", None]),
    }
    return {name: value for name, value in drawn.items() if value is not None}


@pytest.fixture(scope="module")
def experiments(stack_url):
    from abacus_local.client import AbacusClient
    from tests.e2e.conftest import ADMIN_KEY

    client = AbacusClient(stack_url, admin_key=ADMIN_KEY, token=TOKEN)
    for spec in (TARGETED, EVERYONE, SHIPPED, SERVER_ONLY, *LAYERED):
        client.create_experiment(spec)
        client.launch(spec["key"])
    client.call("POST", "/experiments/local-shipped/ship", {"variant": "new"}, admin=True)
    client.create_experiment(EVERYONE | {"key": "local-draft", "name": "Draft"})
    return {
        spec["key"]: client.call("GET", f"/experiments/{spec['key']}", admin=True)
        for spec in (TARGETED, EVERYONE, SHIPPED, *LAYERED)
    }


@pytest.fixture
def local(stack_url):
    sdk = Posthog(
        project_api_key=TOKEN,
        host=stack_url,
        secret_key=FLAGS_KEY,
        sync_mode=True,
        timeout=REQUEST_TIMEOUT_S,
        feature_flags_request_timeout_seconds=REQUEST_TIMEOUT_S,
    )
    sdk.load_feature_flags()
    yield sdk
    sdk.shutdown()


def as_item(experiment: dict) -> tuple[ExperimentItem, ExperimentFields]:
    """The experiment as the API shows it, in the shape /assign's stateless part takes."""
    fields = {name: experiment[name] for name in ExperimentFields.model_fields if name in experiment}
    item = ExperimentItem(
        "e2e",
        experiment["key"],
        status=experiment["status"],
        definition=fields,
        shipped_variant=experiment["shipped_variant"],
        layer_buckets=experiment["layer_buckets"],
    )
    return item, ExperimentFields.model_validate(fields)


def test_local_evaluation_equals_assign_for_100000_users(experiments, local, client):
    assert sorted(flag["key"] for flag in local.feature_flags) == [
        "$layer/e2e",
        "local-everyone",
        "local-layer-a",
        "local-layer-b",
        "local-server-only",
        "local-shipped",
        "local-targeted",
    ]
    items = {key: as_item(experiment) for key, experiment in experiments.items()}
    rng = random.Random(18)
    mismatches, started = [], time.perf_counter()
    answers: Counter[tuple[str, str | None]] = Counter()
    for n in range(USERS):
        distinct_id, properties = f"user-{n}", person(rng)
        local_answers = {
            key: local.get_feature_flag(
                key,
                distinct_id,
                person_properties=properties,
                only_evaluate_locally=True,
                send_feature_flag_events=False,
            )
            for key in items
        }
        expected = {key: sticky.stateless_variant(*items[key], distinct_id, properties) for key in items}
        got = {key: value or None for key, value in local_answers.items()}  # the SDK's False: not in
        if got != expected:
            mismatches.append((distinct_id, properties, got, expected))
        assert got["local-layer-a"] is None or got["local-layer-b"] is None, distinct_id  # one of a layer
        if n < CHECKED_BY_ASSIGN:
            assert client.assign(distinct_id, list(items), expose=False, properties=properties) == expected
        answers.update(got.items())
    elapsed = time.perf_counter() - started
    assert mismatches == [], mismatches[:5]
    # Every answer occurs: each variant, and "not in" (outside the rollout or the targeting).
    assert {answer for answer, count in answers.items() if count > 1_000} == {
        *[("local-targeted", v) for v in ("control", "red", "blue", None)],
        *[("local-everyone", v) for v in ("control", "new")],
        ("local-shipped", "new"),
        *[("local-layer-a", v) for v in ("control", "new", None)],
        *[("local-layer-b", v) for v in ("control", "red", "blue", None)],
    }
    print(f"{USERS} users x {len(items)} flags compared in {elapsed:.1f} s")


def test_the_sdk_reads_a_variants_payload_locally_and_from_the_server(experiments, local, stack_url):
    remote = Posthog(project_api_key=TOKEN, host=stack_url, sync_mode=True)
    try:
        for n in range(40):
            distinct_id = f"payload-{n}"
            variant = local.get_feature_flag(
                "local-everyone", distinct_id, only_evaluate_locally=True, send_feature_flag_events=False
            )
            expected = PAYLOAD if variant == "new" else None
            for sdk, only_locally in ((local, True), (remote, False)):
                got = sdk.get_feature_flag_payload("local-everyone", distinct_id, only_evaluate_locally=only_locally)
                assert got == expected, (distinct_id, variant, only_locally, got)
    finally:
        remote.shutdown()
    assert local.get_feature_flag_payload("local-shipped", "anyone", only_evaluate_locally=True) == PAYLOAD


def test_an_experiment_the_sdk_cannot_evaluate_is_asked_of_the_server(experiments, local):
    assert local.get_feature_flag("local-server-only", "user-1", only_evaluate_locally=True) is None
    remote = local.get_feature_flag("local-server-only", "user-1", send_feature_flag_events=False)
    assert remote in ("control", "new")


def test_the_sdks_flag_called_events_count_each_exposure_once(experiments, stack_url, client):
    """Two SDK instances (two app servers) evaluate the same users and each reports them: every
    user is one exposure, in the variant the SDK answered."""
    servers = [Posthog(project_api_key=TOKEN, host=stack_url, secret_key=FLAGS_KEY, sync_mode=True) for _ in range(2)]
    seen: dict[str, object] = {}
    try:
        for sdk in servers:
            sdk.load_feature_flags()
            for n in range(30):
                distinct_id = f"exposed-{n}"
                variant = sdk.get_feature_flag("local-everyone", distinct_id, only_evaluate_locally=True)
                assert seen.setdefault(distinct_id, variant) == variant
                if n % 3 == 0 and sdk is servers[0]:
                    sdk.capture("purchase", distinct_id=distinct_id)
            sdk.flush()
    finally:
        for sdk in servers:
            sdk.shutdown()
    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, "local-everyone")
    rows = {row["key"]: row for row in client.results("local-everyone")["variants"]}
    for variant in ("control", "new"):
        users = [d for d, v in seen.items() if v == variant]
        buyers = [d for d in users if int(d.rsplit("-", 1)[1]) % 3 == 0]
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (len(users), len(buyers)), variant
