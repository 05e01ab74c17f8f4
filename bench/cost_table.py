"""Cost per million (issue 15): events, assignments and nightly analysis, split by AWS service, from
the request counts measured in bench/RESULTS.md and on-demand list prices (us-east-1, read
2026-11-26; the sources are cited in RESULTS.md, "Cost per million (issue 15)").

Run: .venv/bin/python bench/cost_table.py
"""

MILLION = 1_000_000

# List prices, us-east-1, USD.
WRU = 0.625 / MILLION  # DynamoDB on-demand, per write request unit
RRU = 0.125 / MILLION  # DynamoDB on-demand, per read request unit
LAMBDA_REQUEST = 0.20 / MILLION  # Lambda, per request
LAMBDA_GB_SECOND = 0.0000166667  # Lambda x86, per GB-second (first 6 billion GB-s a month)
HTTP_API_REQUEST = 1.00 / MILLION  # API Gateway HTTP API, per request (first 300 million a month)
SQS_REQUEST = 0.40 / MILLION  # SQS standard, per request
# Issue 33, read 2026-12-06 (docs/operations.md, "SnapStart and provisioned concurrency" cites them).
PROVISIONED_GB_SECOND = 0.0000041667  # Lambda x86, an environment kept by provisioned concurrency
PROVISIONED_DURATION_GB_SECOND = 0.0000097222  # Lambda x86, duration of requests served on one
SNAPSTART_CACHE_GB_SECOND = 0.0000015046  # a version's snapshot cached (Python, .NET), while it is live
SNAPSTART_RESTORE_GB = 0.0001397998  # per GB restored, each time an environment resumes from a snapshot
MONTH_SECONDS = 730 * 3600  # AWS's month

# template.yaml: Globals MemorySize 256 (assign, ingest); ResultsFunction and NightlyWorkerFunction 1024.
API_GB = 256 / 1024
RESULTS_GB = 1024 / 1024

EVENTS_PER_REQUEST = 10  # assumed posthog-js batch

# (label, units, WRU per unit, RRU per unit, Lambda invocations per unit, GB, seconds per invocation,
#  API Gateway requests per unit, SQS requests per unit)
# The nightly job's fan-out, per page of PAGE_USERS users (abacus.nightly.computation): the page's item
# PutItem (its partial sums, up to 2 KB: 2 WRU) and its strongly consistent GetItem (1 RRU); the
# experiment's GetItem (0.5 RRU) and the by-receipt index's 3 keys Queried (0.5 RRU each at least);
# SQS: one SendMessage, and a ReceiveMessage and a DeleteMessageBatch shared by a batch of 2; one
# Lambda invocation per batch of 2. A shard's header update and the run's merge are per experiment.
PAGE_USERS = 5000
PAGE_WRU, PAGE_RRU, PAGE_SQS, PAGE_INVOCATIONS = 2.0 / PAGE_USERS, 3.0 / PAGE_USERS, 2.0 / PAGE_USERS, 0.5 / PAGE_USERS

ROWS = [
    ("event (10 a request)", "event", 2.0, 0.5, 1 / EVENTS_PER_REQUEST, API_GB, 0.020, 1 / EVENTS_PER_REQUEST, 0),
    ("assignment, new user", "assignment", 1.0, 0.5, 1, API_GB, 0.004, 1, 0),
    ("assignment, returning user", "assignment", 0.0, 0.5, 1, API_GB, 0.004, 1, 0),
    (
        "exposed user, nightly, unchanged",
        "user",
        PAGE_WRU,
        0.0547 + PAGE_RRU,
        PAGE_INVOCATIONS,
        RESULTS_GB,
        0.0,
        0,
        PAGE_SQS,
    ),
    (
        "exposed user, nightly, recomputed",
        "user",
        1.0 + PAGE_WRU,
        1.0547 + PAGE_RRU,
        PAGE_INVOCATIONS,
        RESULTS_GB,
        0.0,
        0,
        PAGE_SQS,
    ),
]

# The nightly job's duration is per user (measured on moto in one process), not per invocation.
NIGHTLY_SECONDS_PER_USER = {
    "exposed user, nightly, unchanged": 99.34 / 100_000,
    "exposed user, nightly, recomputed": 99.34 / 100_000 + 0.00915,
}


def per_million(row: tuple) -> dict[str, float]:
    """Dollars per million units of the row, by service."""
    label, _, wru, rru, invocations, gb, seconds, api_requests, sqs_requests = row
    compute_seconds = NIGHTLY_SECONDS_PER_USER.get(label, invocations * seconds)
    return {
        "DynamoDB": MILLION * (wru * WRU + rru * RRU),
        "Lambda": MILLION * (invocations * LAMBDA_REQUEST + gb * compute_seconds * LAMBDA_GB_SECOND),
        "API Gateway": MILLION * api_requests * HTTP_API_REQUEST,
        "SQS": MILLION * sqs_requests * SQS_REQUEST,
    }


def monthly() -> list[tuple[str, float]]:
    """What SnapStart and provisioned concurrency (template parameters SnapStart and
    AssignProvisionedConcurrency) cost: a month of each, whatever the traffic, and per use."""
    snapstart = {"AssignFunction": API_GB, "IngestFunction": API_GB, "ResultsFunction": RESULTS_GB}
    rows = [
        (f"SnapStart cache, {name} ({gb:g} GB), a month", gb * MONTH_SECONDS * SNAPSTART_CACHE_GB_SECOND)
        for name, gb in snapstart.items()
    ]
    rows.append(("SnapStart cache, the three, a month", sum(cost for _, cost in rows)))
    rows += [
        (f"SnapStart restore, {gb:g} GB, per 1,000 cold starts", 1000 * gb * SNAPSTART_RESTORE_GB)
        for gb in sorted(set(snapstart.values()))
    ]
    rows.append(
        (
            "provisioned concurrency, AssignFunction, per environment a month",
            API_GB * MONTH_SECONDS * PROVISIONED_GB_SECOND,
        )
    )
    # A warm assignment takes 4.0 ms (ROWS): on a provisioned environment its duration costs less.
    assignment_seconds = 0.004
    for label, gb_second in (("on demand", LAMBDA_GB_SECOND), ("provisioned", PROVISIONED_DURATION_GB_SECOND)):
        cost = MILLION * (LAMBDA_REQUEST + API_GB * assignment_seconds * gb_second)
        rows.append((f"Lambda per million assignments, {label}", cost))
    return rows


def main() -> None:
    services = ["DynamoDB", "Lambda", "API Gateway", "SQS"]
    print(f"{'per million':36}" + "".join(f"{name:>13}" for name in services) + f"{'total':>10}")
    for row in ROWS:
        costs = per_million(row)
        cells = "".join(f"{'$' + format(costs[name], '.4f'):>13}" for name in services)
        print(f"{row[0]:36}{cells}{'$' + format(sum(costs.values()), '.3f'):>10}")
    request = per_million(("event request", "request", 0, 0, 1, API_GB, 0.020, 1, 0))
    cells = ", ".join(f"{name} ${cost:.4f}" for name, cost in request.items() if cost)
    print(f"\nper million /events requests, whatever their batch size: {cells} (DynamoDB is per event)")
    print()
    for label, cost in monthly():
        print(f"{label:66}{'$' + format(cost, '.4f'):>10}")


if __name__ == "__main__":
    main()
