"""The fanned-out nightly job on DynamoDB (issue 15): units of work, requests, read and write
units, dollars and wall time for 1, 10 and 100 million exposed users in one experiment and for
1,000 experiments of 100,000 users, on a first night (every user computed) and a steady one
(values stored, no new events). No moto: the requests per user, per unit and per experiment are
the ones bench/nightly_scaling.py measured (its --json FILE, or the figures recorded below from
the run in bench/RESULTS.md, "The nightly job fanned out (issue 15)"); the sizes are the stored
items' on moto by DynamoDB's rules; prices are bench/cost_table.py's; latencies are assumed.

Run: PYTHONPATH=layers/shared:layers/stats:. .venv/bin/python bench/nightly_extrapolation.py [--measured FILE]
"""

import argparse
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from abacus.nightly.computation import PAGE_USERS
from abacus.nightly.page import PARALLEL_USERS
from abacus_local.template import Template
from bench.cost_table import LAMBDA_GB_SECOND, LAMBDA_REQUEST, RRU, SQS_REQUEST, WRU

MIB = 1024 * 1024  # a Query answers at most 1 MB
READ_UNIT_BYTES, WRITE_UNIT_BYTES = 4096, 1024
# Assumed DynamoDB and SQS latencies from Lambda in the same region (not measured here).
WRITE_MS = 5.0  # GetItem, PutItem, UpdateItem
QUERY_MS = 10.0  # a Query page
SQS_MS = 10.0  # SendMessageBatch
RECEIPT_DAYS = 2  # a steady night reads the by-receipt index's days since the last run: yesterday and today
# Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB; this machine's
# core is taken as one vCPU.
VCPU_MB = 1769
# DynamoDB's limits: a partition 1,000 WRU and 3,000 RRU a second; an on-demand table 40,000 of each a
# second (the default table-level quota, adjustable), a new one 4,000 WRU and 12,000 RRU a second
# until it has served more (it doubles its previous peak within 30 minutes).
PARTITION_WRU, PARTITION_RRU = 1000, 3000
TABLE_QUOTA = 40_000

# Which measured requests grow with what: every user recomputed, every unit, every experiment.
PER_USER = ("dynamodb Query EventsTable", "dynamodb UpdateItem AssignmentsTable")
PAGE_QUERY = "dynamodb Query AssignmentsTable"  # sized from the items' bytes, 1 MB a request
RUNS_QUERY = "dynamodb Query NightlyRunsTable"  # the merge reads every page: sized from their bytes
EXPERIMENTS_SCAN = "dynamodb Scan ExperimentsTable"  # the planner's, once a night: sized from the bytes
PER_EXPERIMENT = (
    "dynamodb UpdateItem NightlyRunsTable",  # a shard done, 16 an experiment, and the merge's
    "dynamodb Query ResultsTable",  # the planner's latest snapshot, the merge's earlier looks
    "dynamodb PutItem ResultsTable",  # the snapshot
)
RUNS_WRITES = ("dynamodb PutItem NightlyRunsTable", "dynamodb UpdateItem NightlyRunsTable")
SENDS = "sqs SendMessageBatch NightlyWorkQueue"  # the planner's (10 a request), then one per next page
PLANNER_SENDS = math.ceil(16 / 10)


@dataclass(frozen=True)
class Rate:
    requests: float  # per user, unit or experiment
    read_units: float  # per request
    write_units: float


@dataclass(frozen=True)
class NightModel:
    """What one kind of night costs: per user, per unit, per experiment, and bytes read."""

    per_user: dict[str, Rate]
    per_unit: dict[str, Rate]
    per_experiment: dict[str, Rate]
    page_bytes_per_user: float  # an assignment item as the page's Query reads it
    runs_bytes_per_unit: float  # a page of the runs table as the merge reads it
    scan_bytes_per_experiment: float
    cpu_ms_per_user: float
    cpu_ms_per_unit: float
    by_receipt_queries_per_unit: float


def rate(stats: dict[str, float], divisor: float) -> Rate:
    count = stats["requests"]
    return Rate(count / divisor, stats["read_units"] / count, stats["write_units"] / count)


def unit_totals(night: dict[str, Any]) -> tuple[int, int, float]:
    """(units, their users, their CPU seconds) of a night: bench/nightly_scaling.py's list of
    (users, seconds, CPU seconds) a unit, or its totals."""
    units = night["units"]
    if isinstance(units, list):
        return len(units), sum(unit[0] for unit in units), sum(unit[2] for unit in units)
    return units["count"], units["users"], units["cpu_seconds"]


def update_write_units(night: dict[str, Any], sizes: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The night's requests, each UpdateItem not charged when measured (nights transcribed from
    an earlier version's output) charged the units of the item after it (a user's values or a
    run's header only ever grow), from the largest sizes measured."""
    largest = {
        "dynamodb UpdateItem AssignmentsTable": max(size["assignment_max"] for size in sizes.values()),
        "dynamodb UpdateItem NightlyRunsTable": max(size["run_header_max"] for size in sizes.values()),
    }
    requests = {key: dict(stats) for key, stats in night["requests"].items()}
    for key, size in largest.items():
        if key in requests and not requests[key]["write_units"]:
            requests[key]["write_units"] = requests[key]["requests"] * math.ceil(size / WRITE_UNIT_BYTES)
    return {**night, "requests": requests}


def night_model(night: dict[str, Any], cpu_ms_per_unit: float, cpu_ms_per_user: float) -> NightModel:
    requests: dict[str, dict[str, float]] = night["requests"]
    users, experiments = night["users"], night["experiments"]
    units = unit_totals(night)[0]
    special = {PAGE_QUERY, RUNS_QUERY, EXPERIMENTS_SCAN, SENDS}
    per_user = {key: rate(requests[key], users) for key in PER_USER if key in requests}
    per_experiment = {key: rate(requests[key], experiments) for key in PER_EXPERIMENT if key in requests}
    per_unit = {
        key: rate(stats, units)
        for key, stats in requests.items()
        if key not in special and key not in per_user and key not in per_experiment and "(empty)" not in key
    }
    by_receipt = requests.get("dynamodb Query EventsTable/by-receipt", {"requests": 0})["requests"] / units
    return NightModel(
        per_user, per_unit, per_experiment,
        page_bytes_per_user=requests[PAGE_QUERY]["bytes_read"] / users,
        runs_bytes_per_unit=requests[RUNS_QUERY]["bytes_read"] / units,
        scan_bytes_per_experiment=requests[EXPERIMENTS_SCAN]["bytes_read"] / experiments,
        cpu_ms_per_user=cpu_ms_per_user, cpu_ms_per_unit=cpu_ms_per_unit, by_receipt_queries_per_unit=by_receipt,
    )  # fmt: skip


def unit_cpu(nights: list[dict[str, Any]]) -> tuple[float, float]:
    """CPU ms per unit and per user, solved from two nights' totals (units' CPU = a x units +
    b x users) with many users a unit in one and few in the other."""
    (u1, n1, c1), (u2, n2, c2) = [unit_totals(night) for night in nights]
    per_user = 1000 * (c1 * u2 - c2 * u1) / (n1 * u2 - n2 * u1)
    return max(0.0, (1000 * c1 - n1 * per_user) / u1), per_user


def first_night_cpu_per_user(night: dict[str, Any], per_unit_ms: float) -> float:
    units, users, cpu = unit_totals(night)
    return (1000 * cpu - units * per_unit_ms) / users


def models(measured: dict[str, Any]) -> dict[str, NightModel]:
    """The first night's requests from the one experiment's first night at W > 1, its CPU from
    the one at W=1 (the fewest processes sharing the cores); the steady night's from the one
    experiment whose values were stored (the largest), its CPU a unit and a user solved from it
    and the many experiments' second night."""
    nights = [update_write_units(night, measured["sizes"]) for night in measured["nights"]]
    ones = [n for n in nights if n["experiments"] == 1]
    first = next(n for n in ones if n["label"] == "first night" and n["workers"] > 1)
    first_w1 = next(n for n in ones if n["label"] == "first night" and n["workers"] == 1)
    steady_one = max((n for n in ones if n["label"].startswith("second night")), key=lambda n: n["users"])
    steady_many = next(n for n in nights if n["label"].startswith("second night") and n["experiments"] > 1)
    per_unit_ms, steady_per_user_ms = unit_cpu([steady_one, steady_many])
    first_per_user_ms = first_night_cpu_per_user(first_w1, per_unit_ms)
    return {
        "first": night_model(first, per_unit_ms, first_per_user_ms),
        "steady": night_model(steady_one, per_unit_ms, steady_per_user_ms),
    }


# The arithmetic ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    concurrency: int  # NightlyMaxConcurrency
    memory_gb: float
    timeout_s: int
    batch_size: int
    shards: int
    planner_timeout_s: int  # ResultsFunction's: the planner plans every experiment in one invocation


def deployment() -> Deployment:
    template = Template()
    functions = template.functions()
    worker = functions["NightlyWorkerFunction"]
    mapping = next(m for m in template.queue_mappings() if m.function == "NightlyWorkerFunction")
    shards = int(template.parameters["AssignmentShards"]["Default"])
    return Deployment(
        mapping.maximum_concurrency, worker.memory_mb / 1024, worker.timeout, mapping.batch_size, shards,
        functions["ResultsFunction"].timeout,
    )  # fmt: skip


def planner_seconds(experiments: int, scan_requests: int) -> float:
    """The planner, one experiment after another: its latest snapshot (a Query), the run's header
    (a PutItem), its first units (SendMessageBatch, 10 a request), the header marked queued (an
    UpdateItem, issue 28); the experiments' Scan first."""
    per_experiment = QUERY_MS + 2 * WRITE_MS + PLANNER_SENDS * SQS_MS
    return (scan_requests * QUERY_MS + experiments * per_experiment) / 1000


def shard_pages(users: int, shards: int) -> list[int]:
    """The users of each page of one shard (users spread evenly): full pages, then the rest (a
    shard of exactly k pages has one more, empty, page: the worker learns the end from a short one)."""
    per_shard = users // shards
    return [PAGE_USERS] * (per_shard // PAGE_USERS) + [per_shard % PAGE_USERS]


def page_query_requests(page_users: int, item_bytes: float) -> int:
    return max(1, math.ceil(page_users * item_bytes / MIB))


@dataclass
class UnitCost:
    seconds: float
    latency_seconds: float
    cpu_seconds: float
    read_units: float
    write_units: float
    dynamodb_requests: dict[str, float]


def unit_cost(model: NightModel, page_users: int, last: bool) -> UnitCost:
    """One unit of `page_users` users: its requests, units and duration (serial requests, then the
    users' two requests PARALLEL_USERS at a time or its CPU, whichever is longer)."""
    requests: dict[str, float] = {}
    reads = writes = 0.0
    serial_ms = 0.0
    for key, each in model.per_unit.items():
        if key.startswith("sqs"):
            continue
        requests[key] = each.requests
        reads += each.requests * each.read_units
        writes += each.requests * each.write_units
        if "by-receipt" not in key:
            serial_ms += each.requests * (QUERY_MS if " Query " in key else WRITE_MS)
    if model.by_receipt_queries_per_unit:
        serial_ms += RECEIPT_DAYS * QUERY_MS  # each day's shards read in parallel
    pages = page_query_requests(page_users, model.page_bytes_per_user)
    requests[PAGE_QUERY] = pages
    reads += 0.5 * math.ceil(page_users * model.page_bytes_per_user / READ_UNIT_BYTES)
    serial_ms += pages * QUERY_MS + (WRITE_MS if last else SQS_MS)  # the shard done, or the next page sent
    users_ms = 0.0
    for key, each in model.per_user.items():
        requests[key] = each.requests * page_users
        reads += each.requests * page_users * each.read_units
        writes += each.requests * page_users * each.write_units
        users_ms += each.requests * (QUERY_MS if " Query " in key else WRITE_MS)
    latency_ms = serial_ms + math.ceil(page_users / PARALLEL_USERS) * users_ms
    cpu_ms = (model.cpu_ms_per_unit + page_users * model.cpu_ms_per_user) * VCPU_MB / DEPLOYMENT.memory_gb / 1024
    seconds = (serial_ms + max(math.ceil(page_users / PARALLEL_USERS) * users_ms, cpu_ms)) / 1000
    return UnitCost(seconds, latency_ms / 1000, cpu_ms / 1000, reads, writes, requests)


DEPLOYMENT = deployment()


@dataclass
class Scenario:
    name: str
    experiments: int
    users: int  # each


@dataclass
class NightCost:
    units: int
    requests: dict[str, float]
    sqs_requests: float
    read_units: float
    write_units: float
    lambda_seconds: float
    invocations: float
    chain_seconds: float  # the longest shard's pages one after another
    planner_seconds: float
    largest_unit: UnitCost
    busiest_key: tuple[str, float, float]  # (key, RRU/s, WRU/s) at the concurrency the wall time assumes

    def dollars(self) -> dict[str, float]:
        return {
            "DynamoDB": self.read_units * RRU + self.write_units * WRU,
            "Lambda": self.invocations * LAMBDA_REQUEST + self.lambda_seconds * DEPLOYMENT.memory_gb * LAMBDA_GB_SECOND,
            "SQS": self.sqs_requests * SQS_REQUEST,
        }

    def wall_seconds(self, concurrency: int, experiments: int) -> float:
        """Every unit's time over the workers that can be busy (a shard's pages follow one
        another: at most 16 an experiment at once), no shorter than the longest shard, nor than
        the table's quota of units a second allows."""
        busy = min(concurrency, DEPLOYMENT.shards * experiments)
        by_quota = max(self.read_units, self.write_units) / TABLE_QUOTA
        return self.planner_seconds + max(self.lambda_seconds / busy, self.chain_seconds, by_quota)


def night_cost(model: NightModel, scenario: Scenario, concurrency: int) -> NightCost:
    shard = shard_pages(scenario.users, DEPLOYMENT.shards)
    costs = [unit_cost(model, users, last=n == len(shard) - 1) for n, users in enumerate(shard)]
    per_experiment_units = DEPLOYMENT.shards * len(shard)
    units = scenario.experiments * per_experiment_units
    requests: dict[str, float] = {}
    for cost in costs:
        for key, count in cost.dynamodb_requests.items():
            requests[key] = requests.get(key, 0.0) + count * DEPLOYMENT.shards * scenario.experiments
    reads = sum(c.read_units for c in costs) * DEPLOYMENT.shards * scenario.experiments
    writes = sum(c.write_units for c in costs) * DEPLOYMENT.shards * scenario.experiments
    for key, each in model.per_experiment.items():
        requests[key] = each.requests * scenario.experiments
        reads += requests[key] * each.read_units
        writes += requests[key] * each.write_units
    runs_bytes = model.runs_bytes_per_unit * per_experiment_units  # the merge: one Query of every page
    requests[RUNS_QUERY] = scenario.experiments * max(1, math.ceil(runs_bytes / MIB))
    reads += scenario.experiments * math.ceil(runs_bytes / READ_UNIT_BYTES)  # strongly consistent
    scan_bytes = model.scan_bytes_per_experiment * scenario.experiments
    requests[EXPERIMENTS_SCAN] = max(1, math.ceil(scan_bytes / MIB))
    reads += 0.5 * math.ceil(scan_bytes / READ_UNIT_BYTES)
    sqs = {key: each.requests * units for key, each in model.per_unit.items() if key.startswith("sqs")}
    sqs[SENDS] = scenario.experiments * (PLANNER_SENDS + per_experiment_units - DEPLOYMENT.shards)
    lambda_seconds = sum(c.seconds for c in costs) * DEPLOYMENT.shards * scenario.experiments
    receives = sum(v for k, v in sqs.items() if "ReceiveMessage" in k)
    largest = max(costs, key=lambda c: c.seconds)
    night = NightCost(
        units, requests, sum(sqs.values()), reads, writes, lambda_seconds, receives,
        sum(c.seconds for c in costs), planner_seconds(scenario.experiments, int(requests[EXPERIMENTS_SCAN])),
        largest, ("", 0.0, 0.0),
    )  # fmt: skip
    night.busiest_key = busiest_key(model, scenario, largest, concurrency)
    return night


def busiest_key(model: NightModel, scenario: Scenario, unit: UnitCost, concurrency: int) -> tuple[str, float, float]:
    """The partition key taking the most units a second (as a share of its limits), while the
    longest units run: a shard's own key (its page's Query and its users' writes: one unit at a
    time, a shard's pages following one another), the experiment's runs key (its units at once
    write their pages there), the project's experiments key (every unit reads its experiment), and
    the by-receipt index's unsharded day key (every unit of a steady night reads it)."""
    at_once = min(concurrency, DEPLOYMENT.shards * scenario.experiments)
    per_experiment = min(at_once, DEPLOYMENT.shards)
    runs_writes = sum(e.requests * e.write_units for k, e in model.per_unit.items() if "NightlyRunsTable" in k)
    runs_reads = sum(e.requests * e.read_units for k, e in model.per_unit.items() if "NightlyRunsTable" in k)
    experiment_reads = sum(e.requests * e.read_units for k, e in model.per_unit.items() if "ExperimentsTable" in k)
    receipt = model.per_unit.get("dynamodb Query EventsTable/by-receipt")
    receipt_reads = receipt.read_units * RECEIPT_DAYS if receipt else 0.0
    shard_writes = sum(e.requests * e.write_units for k, e in model.per_user.items() if "AssignmentsTable" in k)
    page_reads = 0.5 * math.ceil(PAGE_USERS * model.page_bytes_per_user / READ_UNIT_BYTES)
    page_users = min(PAGE_USERS, scenario.users // DEPLOYMENT.shards)
    candidates = [
        ("AssignmentsTable project#key#NN", page_reads / unit.seconds, shard_writes * page_users / unit.seconds),
        ("NightlyRunsTable project#key", per_experiment * runs_reads / unit.seconds,
         per_experiment * runs_writes / unit.seconds),
        ("ExperimentsTable project", at_once * experiment_reads / unit.seconds, 0.0),
        ("by-receipt project#day", at_once * receipt_reads / RECEIPT_DAYS / unit.seconds, 0.0),
    ]  # fmt: skip
    return max(candidates, key=lambda c: max(c[1] / PARTITION_RRU, c[2] / PARTITION_WRU))


# Printing ---------------------------------------------------------------------------------------

SCENARIOS = [
    Scenario("1 x 1M", 1, 1_000_000),
    Scenario("1 x 10M", 1, 10_000_000),
    Scenario("1 x 100M", 1, 100_000_000),
    Scenario("1,000 x 100k", 1000, 100_000),
]


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def short(count: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:.3g}"


def print_requests(rows: list[tuple[Scenario, str, NightCost]]) -> None:
    print(
        f"{'scenario':14}{'night':8}{'units':>8}{'events Q':>10}{'UpdateItem':>11}{'page Q':>8}{'runs wr':>9}"
        f"{'other':>8}{'SQS':>8}{'RRU':>9}{'WRU':>9}"
    )
    for scenario, night, cost in rows:
        events = cost.requests.get("dynamodb Query EventsTable", 0.0)
        updates = cost.requests.get("dynamodb UpdateItem AssignmentsTable", 0.0)
        pages = cost.requests[PAGE_QUERY]
        runs = sum(v for k, v in cost.requests.items() if k in RUNS_WRITES)
        other = sum(cost.requests.values()) - events - updates - pages - runs
        print(
            f"{scenario.name:14}{night:8}{cost.units:>8,}{short(events):>10}{short(updates):>11}{short(pages):>8}"
            f"{short(runs):>9}{short(other):>8}{short(cost.sqs_requests):>8}{short(cost.read_units):>9}"
            f"{short(cost.write_units):>9}"
        )


def print_costs(rows: list[tuple[Scenario, str, NightCost]], concurrencies: tuple[int, int]) -> None:
    low, high = concurrencies
    print(
        f"{'scenario':14}{'night':8}{'$DynamoDB':>10}{'$Lambda':>9}{'$SQS':>8}{'$total':>9}{'Lambda GB-s':>12}"
        f"{'unit':>7}{'planner':>8}{'wall @' + str(low):>10}{'wall @' + str(high):>10}{'table WRU/s':>12}"
        f"  busiest key @{high}: RRU/s, WRU/s"
    )
    for scenario, night, cost in rows:
        dollars = cost.dollars()
        key, reads, writes = cost.busiest_key
        fastest = cost.wall_seconds(high, scenario.experiments)
        print(
            f"{scenario.name:14}{night:8}{dollars['DynamoDB']:>10.2f}{dollars['Lambda']:>9.2f}{dollars['SQS']:>8.3f}"
            f"{sum(dollars.values()):>9.2f}{cost.lambda_seconds * DEPLOYMENT.memory_gb:>12,.0f}"
            f"{cost.largest_unit.seconds:>6.1f}s{cost.planner_seconds:>7.1f}s"
            f"{duration(cost.wall_seconds(low, scenario.experiments)):>10}{duration(fastest):>10}"
            f"{cost.write_units / (fastest - cost.planner_seconds):>12,.0f}  {key} {reads:,.0f}, {writes:,.0f}"
        )


def print_tables(measured_models: dict[str, NightModel], concurrencies: tuple[int, int]) -> None:
    """The requests, then the costs and times with the CPU measured, then with latency alone."""
    high = concurrencies[1]
    rows = [
        (scenario, night, night_cost(model, scenario, high))
        for scenario in SCENARIOS
        for night, model in measured_models.items()
    ]
    print_requests(rows)
    print("\nwith the workers' CPU as measured:")
    print_costs(rows, concurrencies)
    latency_only = {
        night: replace(model, cpu_ms_per_user=0.0, cpu_ms_per_unit=0.0) for night, model in measured_models.items()
    }
    rows = [
        (scenario, night, night_cost(model, scenario, high))
        for scenario in SCENARIOS
        for night, model in latency_only.items()
    ]
    print("\nwith the requests' latency alone (a worker whose CPU is never the limit):")
    print_costs(rows, concurrencies)


def print_assumptions(measured_models: dict[str, NightModel]) -> None:
    d = DEPLOYMENT
    print(
        f"NightlyWorkerFunction: {d.memory_gb:g} GB, timeout {d.timeout_s} s, batch {d.batch_size}; "
        f"{d.shards} shards, pages of {PAGE_USERS:,} users, {PARALLEL_USERS} users' requests in flight"
    )
    print(
        f"latencies assumed: {WRITE_MS:g} ms GetItem/PutItem/UpdateItem, {QUERY_MS:g} ms a Query page, "
        f"{SQS_MS:g} ms SendMessageBatch; CPU x {VCPU_MB / 1024 / d.memory_gb:.2f} (Lambda's share at "
        f"{d.memory_gb * 1024:.0f} MB)"
    )
    for night, model in measured_models.items():
        per_user = ", ".join(
            f"{key.split(' ', 1)[1]} {rate.requests:.3f} ({rate.read_units:.2f} RRU, {rate.write_units:.2f} WRU each)"
            for key, rate in model.per_user.items()
        )
        per_unit = ", ".join(f"{key.split(' ', 1)[1]} {rate.requests:.2f}" for key, rate in model.per_unit.items())
        print(
            f"{night}: per user {per_user or 'nothing'}; assignment item {model.page_bytes_per_user:.0f} B; "
            f"CPU {model.cpu_ms_per_user:.2f} ms a user + {model.cpu_ms_per_unit:.0f} ms a unit\n"
            f"  per unit: {per_unit}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", default=str(MEASURED), help="bench/nightly_scaling.py's --json output")
    parser.add_argument("--concurrency", type=int, default=100, help="NightlyMaxConcurrency beside the template's")
    args = parser.parse_args()
    with open(args.measured) as source:
        built = models(json.load(source))
    print_assumptions(built)
    print()
    print_tables(built, (DEPLOYMENT.concurrency, args.concurrency))
    return 0


# The run recorded in bench/RESULTS.md (bench/nightly_scaling.py --json, its units summed up).
MEASURED = Path(__file__).with_name("nightly_scaling.json")


if __name__ == "__main__":
    raise SystemExit(main())
