"""Local evaluation against a /flags/ round trip (issue 18): the official posthog-python SDK on the
local stack, the time per flag evaluated in-process from the polled definitions, the time of a
/flags/ request for the same flag, the definitions poll (200 and 304), and the cost per million
evaluations of each way (local evaluation pays for the polls only).

Run: .venv/bin/python bench/local_evaluation.py [evaluations]
"""

import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from posthog import Posthog
from posthog.version import VERSION as posthog_version

from abacus_local.client import AbacusClient
from abacus_local.stack import LocalStack, free_port
from bench.cost_table import API_GB, HTTP_API_REQUEST, LAMBDA_GB_SECOND, LAMBDA_REQUEST, MILLION, RRU

KEY = "bench-local"
EXPERIMENT = {
    "key": KEY,
    "name": "Bench",
    "variants": [{"key": "control", "weight": 30}, {"key": "red", "weight": 30}, {"key": "blue", "weight": 40}],
    "primary_metric": {"event": "purchase"},
    "rollout_percentage": 70,
    "targeting": [{"conditions": [{"property": "plan", "operator": "in", "value": ["pro", "team"]}]}],
}
POLL_SECONDS = 30  # the SDKs' default poll interval
MONTH_SECONDS = 30 * 24 * 3600
ROUND_TRIPS = 500


def percentiles(samples_us: list[float]) -> str:
    ordered = sorted(samples_us)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"median {statistics.median(ordered):9.1f} µs, p99 {p99:9.1f} µs"


def timed_calls(call, count: int) -> list[float]:
    samples = []
    for n in range(count):
        started = time.perf_counter_ns()
        call(n)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def poll(url: str, flags_key: str, token: str, etag: str | None) -> tuple[int, int, str, float]:
    request = urllib.request.Request(f"{url}/flags/definitions?token={token}&send_cohorts")  # noqa: S310 - loopback
    request.add_header("Authorization", f"Bearer {flags_key}")
    if etag:
        request.add_header("If-None-Match", etag)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the stack on loopback
            body = response.read()
            return response.status, len(body), response.headers["ETag"], time.perf_counter() - started
    except urllib.error.HTTPError as error:  # urllib raises on a 304
        return error.code, 0, error.headers["ETag"], time.perf_counter() - started


def main(evaluations: int) -> None:
    with LocalStack(port=free_port(), log_level="WARNING", metrics=False, cache_seconds=30) as stack:
        creds = stack.credentials
        admin = AbacusClient(stack.url, admin_key=creds.admin_key, token=creds.token)
        admin.create_experiment(EXPERIMENT)
        admin.launch(KEY)
        key, props = KEY, {"plan": "pro"}

        local = Posthog(creds.token, host=stack.url, secret_key=creds.flags_key, sync_mode=True)
        local.load_feature_flags()
        local_us = timed_calls(
            lambda n: local.get_feature_flag(
                key, f"user-{n}", person_properties=props, only_evaluate_locally=True, send_feature_flag_events=False
            ),
            evaluations,
        )
        remote = Posthog(creds.token, host=stack.url, sync_mode=True, feature_flags_request_timeout_seconds=10)
        remote_us = timed_calls(
            lambda n: remote.get_feature_flag(
                key, f"user-{n}", person_properties=props, send_feature_flag_events=False
            ),
            ROUND_TRIPS,
        )
        full = [poll(stack.url, creds.flags_key, creds.token, None) for _ in range(50)]
        etag = full[0][2]
        unchanged = [poll(stack.url, creds.flags_key, creds.token, etag) for _ in range(50)]
        local.shutdown()
        remote.shutdown()

    print(f"posthog-python {posthog_version}: an experiment of 3 variants, 70% rollout, 1 targeting group")
    print(f"local evaluation ({evaluations} flags): {percentiles(local_us)}")
    print(f"/flags/ round trip on the local stack ({ROUND_TRIPS}): {percentiles(remote_us)}")
    print(
        f"definitions poll: 200 {statistics.median(t for _, _, _, t in full) * 1000:.1f} ms median, "
        f"{full[0][1]} bytes; 304 {statistics.median(t for _, _, _, t in unchanged) * 1000:.1f} ms, "
        f"statuses {sorted({s for s, *_ in unchanged})}"
    )
    # Cost. A poll: one API Gateway request and one Lambda invocation at 256 MB, billed for at most
    # the round trip measured here (an upper bound of the function's own time), and a Query of the
    # project's experiments (0.5 RRU: in fact once per environment per CacheSeconds) as the worst case.
    poll_seconds = statistics.median(t for _, _, _, t in full)
    poll_cost = HTTP_API_REQUEST + LAMBDA_REQUEST + API_GB * poll_seconds * LAMBDA_GB_SECOND + 0.5 * RRU
    polls_per_month = MONTH_SECONDS / POLL_SECONDS
    # A /flags/ request: the same, plus one eventually consistent GetItem (0.5 RRU) per running
    # experiment the user is in (here 1), billed for its measured round trip.
    flags_seconds = statistics.median(remote_us) / MILLION
    flags_cost = HTTP_API_REQUEST + LAMBDA_REQUEST + API_GB * flags_seconds * LAMBDA_GB_SECOND + 1.0 * RRU
    print(
        f"one app server polling every {POLL_SECONDS} s: {polls_per_month:,.0f} polls a month, "
        f"${polls_per_month * poll_cost:.4f}"
    )
    for rate in (1, 10, 100):
        per_month = rate * MONTH_SECONDS
        print(
            f"  at {rate:>3} evaluations a second per server: ${polls_per_month * poll_cost / per_month * MILLION:.6f} "
            f"per million evaluations locally, ${flags_cost * MILLION:.2f} per million through /flags/"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
