"""Concurrent invocations never see each other's request: many requests at once, each with a body
of its own, and each answer checked against the request it answers. In Lambda an execution
environment handles one invocation at a time in its own process; a local stack that shared
state between concurrent invocations (as threads of one process sharing Powertools' resolver
state did) would answer one request with another's body."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from abacus.core import hashing
from abacus_local.client import AbacusClient
from tests.e2e.conftest import TOKEN, invoke_nightly

KEY = "isolation"
VARIANTS = [("control", 34), ("b", 33), ("c", 33)]
THREADS, ROUNDS = 24, 12


def expected_variant(distinct_id: str) -> str:
    return hashing.pick_variant(KEY, distinct_id, VARIANTS)


def one_round(client: AbacusClient, thread: int, round_: int) -> list[str]:
    """Three requests whose answers can only be right for their own body; the mismatches found."""
    n = thread * ROUNDS + round_
    problems = []
    user = f"iso-{n}"
    status, body = client.request("POST", "/assign", {"token": TOKEN, "distinct_id": user, "experiments": [KEY]})
    if (status, body) != (200, {"assignments": {KEY: expected_variant(user)}}):
        problems.append(f"assign {user}: {status} {body}")

    # A body missing a different field each time: the 422 must name this body's missing field.
    missing = ("token", "distinct_id")[n % 2]
    invalid = {"token": TOKEN, "distinct_id": f"nobody-{n}"}
    del invalid[missing]
    status, body = client.request("POST", "/assign", invalid)
    if status != 422 or body.get("error", {}).get("field") != missing:
        problems.append(f"assign without {missing}: {status} {body}")

    # k events, the one at index `bad` without its name: only this batch has that shape.
    k = 1 + n % 7
    bad = n % k
    events = [{"event": "view", "distinct_id": user, "uuid": f"iso-{n}-{i}"} for i in range(k)]
    del events[bad]["event"]
    status, body = client.request("POST", "/events", {"token": TOKEN, "events": events})
    if status != 200 or body.get("accepted") != k - 1 or [r["index"] for r in body.get("rejected", [])] != [bad]:
        problems.append(f"events k={k} bad={bad}: {status} {body}")
    return problems


def test_concurrent_requests_each_get_their_own_answer(stack_url, client):
    client.create_experiment(
        {
            "key": KEY,
            "name": "Isolation",
            "variants": [{"key": key, "weight": weight} for key, weight in VARIANTS],
            "primary_metric": {"event": "view"},
        }
    )
    client.launch(KEY)
    start = threading.Barrier(THREADS)

    def worker(thread: int) -> list[str]:
        own = AbacusClient(stack_url, token=TOKEN, timeout=60)
        start.wait()
        return [problem for round_ in range(ROUNDS) for problem in one_round(own, thread, round_)]

    with ThreadPoolExecutor(THREADS) as pool:
        problems = [problem for found in pool.map(worker, range(THREADS)) for problem in found]
    assert not problems, f"{len(problems)} answers were not their request's: {problems[:5]}"

    # Every user answered with a variant has their assignment stored: counted once each.
    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, KEY)
    results = client.results(KEY)
    stored = {row["key"]: row["exposures"] for row in results["variants"]}
    users = [f"iso-{n}" for n in range(THREADS * ROUNDS)]
    assert stored == {key: sum(expected_variant(u) == key for u in users) for key, _ in VARIANTS}
