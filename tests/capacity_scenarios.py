"""Issue 15's capacity scenarios: synthetic traffic through the real handlers on moto (the Assign
and Ingest functions, invoked with events/*.json as the integration tests invoke them), every
DynamoDB request recorded by tests.capacity, and each partition key's units scaled to the rates
the issue names.

Each scenario expects moto's tables and the sample project (the `project` fixture, or
`backend()`). Caches are those deployed (CacheSeconds, the template's default), so a request
reads the project token and the definitions as a warm execution environment does: once a TTL.
The token's rate limit is off in those, as in the tests (`ABACUS_TOKEN_RATE_LIMIT_PER_MINUTE`
unset): its counters cost per execution environment and second, not per request, so they have a
scenario of their own, whose unit is one environment's share (an UpdateItem of its counter shard
and a BatchGetItem of all of them), at 1,000 environments each sharing once a second.
"""

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from abacus.core.cache import TtlCache
from abacus.experiments import definitions
from abacus.http.rate_limit import RateLimiter
from abacus.storage import rate_limits
from abacus_local.template import Template
from tests.capacity import CapacityRecorder, KeyRate, key_rates
from tests.conftest import ADMIN_KEY, TOKEN, answer, invoke, sample_event

EXPERIMENT = "new-checkout"  # the sample experiment of events/create_experiment.json


class ScenarioFailed(Exception):
    """The traffic did not go through as it should (not an AssertionError: the limit tests are
    strict xfails on AssertionError only, so that a broken scenario is a failure, never an xfail)."""


def check(condition: bool, message: object) -> None:
    if not condition:
        raise ScenarioFailed(message)


class Scenario(NamedTuple):
    name: str
    unit: str  # what one unit of traffic is
    rate: float  # units of traffic a second the issue requires
    drive: Callable[[CapacityRecorder, int], int]  # records `count` units; returns how many it recorded
    bench_count: int  # the units of traffic the bench records


class Measured(NamedTuple):
    scenario: Scenario
    traffic: int
    rates: list[KeyRate]


@contextmanager
def deployed_caches() -> Iterator[None]:
    """The token and definition caches with the deployed TTL, and the event names written today
    with theirs (a day), emptied before and after."""
    from abacus.http import api
    from abacus.ingestion import received

    seconds = float(Template().parameters["CacheSeconds"]["Default"])
    caches: list[TtlCache[Any, Any]] = [api._tokens, definitions._definitions, received._written]
    saved = [cache.ttl_seconds for cache in caches]
    for cache in caches:
        cache.clear()
        cache.ttl_seconds = received.DAY_SECONDS if cache is received._written else seconds
    try:
        yield
    finally:
        for cache, ttl in zip(caches, saved, strict=True):
            cache.clear()
            cache.ttl_seconds = ttl


@contextmanager
def backend() -> Iterator[None]:
    """moto's tables, created from template.yaml, with the sample project (as the tests' fixtures)."""
    import boto3
    from moto import mock_aws

    from abacus import projects
    from abacus_local.dynamodb import create_tables

    with mock_aws():
        create_tables(Template(), boto3.client("dynamodb", region_name="us-east-1"))
        projects.create("Capacity", project_id="test", token=TOKEN, admin_key=ADMIN_KEY)
        yield


def launch_sample_experiment() -> None:
    """The sample experiment, created and launched through the API, running since yesterday."""
    created = answer(invoke("ResultsFunction", sample_event("create_experiment")))
    check(created[0] == 201, created)
    yesterday = {"started_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    launched = answer(invoke("ResultsFunction", sample_event("launch_experiment", body=yesterday)))
    check(launched[0] == 200, launched)


# Events ---------------------------------------------------------------------------------------


def posthog_js_pageview(distinct_id: str, session: str, page: int, at: datetime) -> dict[str, Any]:
    """A $pageview as posthog-js (1.x, in Chrome) captures it: the properties it adds to every
    event (browser, screen, URLs, session and window, the library's own, the flags the page
    evaluated, the person's first visit), the token among them (ingest drops it)."""
    url = f"https://shop.example.com/products/trail-runner-{page}?utm_source=newsletter&utm_medium=email"
    entry = "https://shop.example.com/?utm_source=newsletter&utm_medium=email"
    return {
        "uuid": str(uuid.uuid4()),
        "event": "$pageview",
        "timestamp": at.isoformat(),
        "properties": {
            "$os": "Mac OS X",
            "$os_version": "10.15.7",
            "$browser": "Chrome",
            "$device_type": "Desktop",
            "$timezone": "Europe/Berlin",
            "$current_url": url,
            "$host": "shop.example.com",
            "$pathname": f"/products/trail-runner-{page}",
            "$raw_user_agent": (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36"
            ),
            "$browser_version": 131,
            "$browser_language": "de-DE",
            "$browser_language_prefix": "de",
            "$screen_height": 1117,
            "$screen_width": 1728,
            "$viewport_height": 992,
            "$viewport_width": 1512,
            "$lib": "web",
            "$lib_version": "1.449.2",
            "$insert_id": uuid.uuid4().hex[:16],
            "$time": round(at.timestamp(), 3),
            "distinct_id": distinct_id,
            "$device_id": distinct_id,
            "$initial_person_info": {"r": "https://www.google.com/", "u": entry},
            "$console_log_recording_enabled_server_side": False,
            "$autocapture_disabled_server_side": True,
            "$web_vitals_enabled_server_side": False,
            "$exception_capture_enabled_server_side": False,
            "$referrer": "https://www.google.com/",
            "$referring_domain": "www.google.com",
            "$session_id": session,
            "$window_id": session[:-4] + "w001",
            "$pageview_id": str(uuid.uuid4()),
            "$session_entry_url": entry,
            "$session_entry_host": "shop.example.com",
            "$session_entry_pathname": "/",
            "$session_entry_referrer": "https://www.google.com/",
            "$session_entry_referring_domain": "www.google.com",
            "$active_feature_flags": [EXPERIMENT],
            f"$feature/{EXPERIMENT}": "one-page",
            "$is_identified": False,
            "$process_person_profile": False,
            "$lib_rate_limit_remaining_tokens": 98,
            "$configured_session_timeout_ms": 1800000,
            "title": f"Trail Runner {page} | Example Shop",
            "token": TOKEN,
        },
    }


def user_batch(distinct_id: str, pages: int, at: datetime) -> list[dict[str, Any]]:
    """One browser's batch of page views (posthog-js sends a browser's queued events together)."""
    session = str(uuid.uuid4())
    return [
        posthog_js_pageview(distinct_id, session, page, at - timedelta(seconds=pages - page)) for page in range(pages)
    ]


def post_posthog_batch(events: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /batch/ (events/posthog_batch.json) with these events; the answer's body."""
    body = {"api_key": TOKEN, "batch": events, "sent_at": datetime.now(UTC).isoformat()}
    status, answered = answer(invoke("IngestFunction", sample_event("posthog_batch", body=body)))
    check(status == 200 and answered["accepted"] == len(events), answered)
    return answered


def events_into_one_project(recorder: CapacityRecorder, count: int, pages: int = 4) -> int:
    """`count` posthog-js page views into one project with a running experiment, `pages` a user
    (one batch each)."""
    launch_sample_experiment()
    now = datetime.now(UTC)
    with deployed_caches(), recorder.recording():
        for start in range(0, count, pages):
            post_posthog_batch(user_batch(f"visitor-{start // pages:05d}", min(pages, count - start), now))
    return count


# Assignments ----------------------------------------------------------------------------------


def assign(distinct_id: str) -> str | None:
    """POST /assign (events/assign.json) for one user: the variant of the sample experiment."""
    body = {"token": TOKEN, "distinct_id": distinct_id, "experiments": [EXPERIMENT]}
    status, answered = answer(invoke("AssignFunction", sample_event("assign", body=body)))
    check(status == 200, answered)
    variant: str | None = answered["assignments"][EXPERIMENT]
    return variant


def new_users_assigned(recorder: CapacityRecorder, count: int) -> int:
    """`count` users never seen before, assigned (and exposed) in one experiment."""
    launch_sample_experiment()
    with deployed_caches(), recorder.recording():
        assigned = [assign(f"new-{index:06d}") for index in range(count)]
    check(None not in assigned, "a user was left out of the experiment")
    return count


def returning_users_assigned(recorder: CapacityRecorder, count: int) -> int:
    """`count` users assigned already, assigned again in the same experiment (only the second
    assignment recorded)."""
    launch_sample_experiment()
    users = [f"returning-{index:06d}" for index in range(count)]
    with deployed_caches():
        first = [assign(user) for user in users]
        with recorder.recording():
            again = [assign(user) for user in users]
    check(again == first and None not in again, "a returning user's variant changed")
    return count


# The token's rate limit -----------------------------------------------------------------------


def rate_limit_shares(recorder: CapacityRecorder, count: int, shards: int = rate_limits.SHARDS) -> int:
    """`count` execution environments serving one project with the token's rate limit on, each
    sharing its count once (as each does once a second): the counter shard it picked at random
    (seeded here) written, every shard read. One second of `count` environments, recorded."""
    picks, now = random.Random(15), time.time()
    environments = [
        RateLimiter(1_000_000_000, shards=shards, shard=picks.randrange(shards), clock=lambda: now)
        for _ in range(count)
    ]
    with recorder.recording():
        for environment in environments:
            environment.check("test")
    operations = [request.operation for request in recorder.requests]
    check(operations == ["UpdateItem", "BatchGetItem"] * count, f"not one write and one read a share: {operations}")
    return count


SCENARIOS = (
    Scenario("events into one project", "event", 10_000, events_into_one_project, 2000),
    Scenario("new users assigned in one experiment", "assignment", 5_000, new_users_assigned, 2000),
    Scenario("returning users assigned in one experiment", "assignment", 50_000, returning_users_assigned, 2000),
    Scenario("rate-limit counters of one project, 1,000 environments", "share", 1_000, rate_limit_shares, 1000),
)


def measure(scenario: Scenario, count: int | None = None) -> Measured:
    """Runs the scenario (on the current backend) and scales each partition key's units to its rate."""
    recorder = CapacityRecorder()
    traffic = scenario.drive(recorder, scenario.bench_count if count is None else count)
    return Measured(scenario, traffic, key_rates(recorder.requests, traffic, scenario.rate))


def table(measured: Measured, top: int = 6) -> str:
    """The most loaded partition keys of a scenario at its rate, against the limits."""
    scenario = measured.scenario
    lines = [
        f"{scenario.name}: {measured.traffic} {scenario.unit}s recorded, scaled to {scenario.rate:,.0f}/s",
        f"  {'table or index':<30} {'partition key':<24} {'RCU/s':>9} {'WCU/s':>9}  verdict",
    ]
    for rate in measured.rates[:top]:
        key = rate.partition_key if len(rate.partition_key) <= 24 else rate.partition_key[:23] + "…"
        verdict = f"OVER: {rate.load:.1f}x the limit" if rate.over_limit else f"ok, {rate.load:.1%} of the limit"
        lines.append(f"  {rate.target:<30} {key:<24} {rate.read_units:>9,.1f} {rate.write_units:>9,.1f}  {verdict}")
    if len(measured.rates) > top:
        rest = len(measured.rates) - top
        lines.append(f"  ... {rest} more keys, each at most {measured.rates[top].load:.1%} of its limit")
    return "\n".join(lines)
