"""The nightly job fanned out (issue 15): wall time and requests per user of a night run through
the real flow, on moto's server in its own process (as the local stack runs it).

The planner (runs.plan_night) queues each experiment's first units (work_queue.send);
W worker processes (multiprocessing, spawn) each poll NightlyWorkQueue as NightlyWorkerFunction's
event source mapping does (a batch of at most the template's BatchSize), work each unit
(computation.work), send the next page's unit and delete the batch, until every snapshot is stored.
Every request of every process is counted by operation and table (botocore's
BaseClient._make_api_call wrapped), with the read units of what a Query, Scan or GetItem returned
and the write units of what a PutItem or UpdateItem wrote (the item an UpdateItem returns, ALL_NEW),
sized by DynamoDB's rules (tests/capacity.py).

Scenarios (tables and queues fresh for each, moto reset in between):
- one experiment of --users exposed users (default 100,000), 30% of them with a purchase event:
  the first night (every user computed) at W, then the second night (values stored, no new
  events) at W; then the same data seeded again and its first night at W=1 (--w1-users sizes it);
  with --steady-users, the second night of an experiment seeded with stored values;
- --experiments running experiments (default 100) of --experiment-users users (default 1,000):
  the planner's time and units, and the whole first and second nights at W (--many-seeded: only
  the second night, of users seeded with stored values).

The measurements are printed, and written (--json FILE) after every night; bench/RESULTS.md says
what a 2-core machine could measure of them. bench/nightly_extrapolation.py turns them into
DynamoDB's figures.

Run: PYTHONPATH=layers/shared:layers/stats:. .venv/bin/python bench/nightly_scaling.py [--users N]
    [--w1-users N] [--steady-users N] [--workers 8] [--experiments 100] [--experiment-users 1000]
    [--many-seeded] [--json FILE]
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as EventType
from typing import Any, cast

from tests.capacity import item_size, query_read_units, read_units, write_units

REGION = "us-east-1"
PROJECT = "bench"
NOW = datetime(2026, 11, 25, 3, tzinfo=UTC)  # the first night's schedule: it analyses the 24th
EXPOSED = NOW - timedelta(days=5)
PURCHASE_SHARE = 3  # in ten users
SEED_THREADS = 4
NIGHT_TIMEOUT_S = 3600
MOTO_READ_TIMEOUT_S = 300


# Counting requests (in every process) -----------------------------------------------------------


@dataclass
class OperationStats:
    requests: int = 0
    items: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    seconds: float = 0.0

    def add(self, other: "OperationStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class RequestCounter:
    """Counts every botocore request of this process by (service, operation, table or queue)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats: dict[str, OperationStats] = defaultdict(OperationStats)

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call  # type: ignore[attr-defined] # botocore's stubs leave it out
        counter = self

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            started = time.perf_counter()
            answer = original(client, operation, params)
            counter.record(client.meta.service_model.service_name, operation, params, answer, started)
            return answer

        BaseClient._make_api_call = counted  # type: ignore[attr-defined]

    def record(self, service: str, operation: str, params: dict[str, Any], answer: Any, started: float) -> None:
        seconds = time.perf_counter() - started
        if service == "sqs":
            target = str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        else:
            target = str(params.get("TableName", "")) + (f"/{params['IndexName']}" if "IndexName" in params else "")
        one = OperationStats(requests=1, seconds=seconds)
        consistent = bool(params.get("ConsistentRead", False))
        if operation in ("Query", "Scan"):
            sizes = [item_size(item) for item in answer.get("Items", [])]
            one.items, one.bytes_read = len(sizes), sum(sizes)
            one.read_units = query_read_units(sizes, consistent)
        elif operation == "GetItem":
            size = item_size(answer.get("Item"))
            one.items, one.bytes_read = int("Item" in answer), size
            one.read_units = read_units(size, consistent)
        elif operation in ("PutItem", "UpdateItem"):
            # PynamoDB's update asks for the item after it (ALL_NEW), which these updates only grow.
            one.bytes_written = item_size(params["Item"] if operation == "PutItem" else answer.get("Attributes"))
            one.write_units = write_units(one.bytes_written)
        elif operation == "ReceiveMessage":
            one.items = len(answer.get("Messages", []))
            target += "" if one.items else " (empty)"
        with self.lock:
            self.stats[f"{service} {operation} {target}"].add(one)

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self.lock:
            return {key: dict(vars(stats)) for key, stats in self.stats.items()}

    def reset(self) -> None:
        with self.lock:
            self.stats.clear()


def merged(reports: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    total: dict[str, OperationStats] = defaultdict(OperationStats)
    for report in reports:
        for key, values in report.items():
            total[key].add(OperationStats(**values))  # type: ignore[arg-type]
    return {key: dict(vars(stats)) for key, stats in sorted(total.items())}


# The worker process ---------------------------------------------------------------------------


def work_unit(body: str, done: Any) -> None:
    """What NightlyWorkerFunction does with one record (functions/results/worker.py's work_one);
    its snapshot, failure or error told to `done`."""
    from abacus.nightly import computation, runs, work_queue
    from abacus.storage import nightly_runs

    unit = runs.Unit.from_json(json.loads(body))
    try:
        step = computation.work(unit)
    except computation.RunFailed as error:
        nightly_runs.failed(unit.experiment_id, unit.run, str(error))
        done.put(("failed", unit.experiment_id, str(error)))
        return
    except Exception as error:  # noqa: BLE001 - reported: the benchmark stops rather than waits
        done.put(("error", unit.experiment_id, repr(error)))
        return
    if isinstance(step, runs.Unit):
        work_queue.send([step.to_json()])
    elif step is not None:
        done.put(("snapshot", unit.experiment_id, ""))


def worker(queue_url: str, batch: int, stop: EventType, ready: Any, done: Any, reports: Any) -> None:
    """One NightlyWorkerFunction at a time: receive a batch, work each unit, delete the batch;
    until `stop`. Reports its request counts, CPU and units when stopped."""
    counter = RequestCounter()
    counter.install()
    from abacus.nightly import work_queue
    from abacus.storage import assignments
    from abacus.storage.base import TableMeta

    # moto takes seconds to answer a page of 5,000 users while other workers query it too, where
    # DynamoDB answers a 1 MB page in milliseconds: the models' 10 s read timeout would fail it.
    TableMeta.read_timeout_seconds = MOTO_READ_TIMEOUT_S

    page_sizes: list[int] = []
    page = assignments.page

    def recorded_page(partition: str, start_after: str | None, size: int) -> list[Any]:
        users = page(partition, start_after, size)
        page_sizes.append(len(users))
        return users

    assignments.page = recorded_page
    sqs = work_queue._client()
    units: list[tuple[int, float, float]] = []  # (users, seconds, CPU seconds) of each unit worked here
    ready.put(os.getpid())
    cpu_started = time.process_time()
    while not stop.is_set():
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=batch, WaitTimeSeconds=1)
        messages = answer.get("Messages", [])
        for message in messages:
            page_sizes.clear()
            started, cpu = time.perf_counter(), time.process_time()
            work_unit(message["Body"], done)
            units.append((sum(page_sizes), time.perf_counter() - started, time.process_time() - cpu))
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    reports.put({"requests": counter.snapshot(), "cpu_seconds": time.process_time() - cpu_started, "units": units})


# The moto server and the stack on it ------------------------------------------------------------


class MotoServer:
    """python -m abacus_local.moto_server in its own process, as abacus_local.stack starts it."""

    def __init__(self) -> None:
        from abacus_local.stack import _end_with_parent, free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "abacus_local.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_end_with_parent,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).close()  # noqa: S310 - loopback
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)

    def reset(self) -> None:
        """Every table and queue gone (moto's own reset), the server's memory with them."""
        request = urllib.request.Request(self.url + "/moto-api/reset", method="POST")  # noqa: S310 - loopback
        urllib.request.urlopen(request, timeout=60).close()  # noqa: S310 - loopback

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self, service: str) -> Any:
        import boto3

        make: Any = boto3.client  # typed per service name, and this takes either
        return make(service, region_name=REGION, endpoint_url=self.url)


def create_stack(moto: MotoServer) -> str:
    """The template's tables and queues on moto; NightlyWorkQueue's URL."""
    from abacus_local.dynamodb import create_tables
    from abacus_local.queues import create_queues
    from abacus_local.template import Template

    template = Template()
    create_tables(template, moto.client("dynamodb"))
    return create_queues(template, moto.client("sqs"), REGION)["NightlyWorkQueue"]


def configure_environment(moto: MotoServer) -> None:
    """What abacus reads at import (its settings, botocore's endpoints), NightlyWorkerFunction's
    variables: before it is imported, here and in the spawned workers, which inherit them."""
    from abacus_local.template import Template

    os.environ.update(Template().functions()["NightlyWorkerFunction"].environment)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_DYNAMODB": moto.url,
            "AWS_ENDPOINT_URL_SQS": moto.url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )


# Seeding --------------------------------------------------------------------------------------


def create_experiment(key: str) -> Any:
    from abacus.experiments import definitions
    from abacus.experiments.spec import ExperimentCreate

    spec = ExperimentCreate.model_validate(
        {
            "key": key,
            "name": key,
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
            "secondary_metrics": [{"event": "purchase", "kind": "sum", "property": "amount"}],
        }
    )
    definitions.create(PROJECT, spec, NOW - timedelta(days=10))
    return definitions.apply(PROJECT, key, "launch", NOW - timedelta(days=10))


def in_threads(work: Callable[[list[Any]], None], items: list[Any]) -> None:
    chunk = -(-len(items) // SEED_THREADS)
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(work, [items[start : start + chunk] for start in range(0, len(items), chunk)]))


def seed_users(moto: MotoServer, users: list[tuple[Any, int, str]], with_values: bool) -> None:
    """Exposed users (experiment, number, distinct_id), straight into their shard keys with
    BatchWriteItem (Table.batch_writer), as the assign route stores them; `with_values`: with the
    values the first night stores (3 in 10 bought, for 40-59), computed by a run at NOW."""
    import boto3
    from boto3.dynamodb.types import TypeDeserializer

    from abacus.experiments import definitions
    from abacus.nightly import cutoffs, values
    from abacus.storage.assignments import AssignmentItem

    wire = TypeDeserializer()
    metrics_keys = {}
    for experiment, _, _ in users:
        if experiment.key not in metrics_keys:
            spec = definitions.definition(experiment)
            metrics_keys[experiment.key] = values.metrics_key([spec.primary_metric, *spec.secondary_metrics], 0)

    def stored(experiment: Any, n: int, user: str) -> dict[str, Any]:
        item = AssignmentItem(experiment.assignment_partition(user), user, variant=("control", "b")[n % 2],
                              assigned_at=EXPOSED, exposed_at=EXPOSED)  # fmt: skip
        if with_values:
            bought = n % 10 < PURCHASE_SHARE
            item.metric_values = [float(bought), float(40 + len(user) % 20) if bought else 0.0]
            item.pre_values, item.values_exposed_at, item.values_pending = [], EXPOSED, False
            item.values_cutoff, item.values_computed_at = cutoffs.cutoff_for(NOW), NOW
            item.values_metrics = metrics_keys[experiment.key]
        return {name: wire.deserialize(cast(Any, value)) for name, value in item.serialize().items()}

    def write(chunk: list[tuple[Any, int, str]]) -> None:
        resource = boto3.resource("dynamodb", region_name=REGION, endpoint_url=moto.url)
        with resource.Table(AssignmentItem.Meta.table_name).batch_writer() as batch:
            for experiment, n, user in chunk:
                batch.put_item(Item=stored(experiment, n, user))

    in_threads(write, users)


def seed_earlier_snapshot(experiment: Any) -> None:
    """The snapshot the night at NOW stored (no look the group-sequential test would reuse)."""
    from abacus.core import keys
    from abacus.nightly import cutoffs
    from abacus.storage.results import SnapshotItem

    cutoff = cutoffs.cutoff_for(NOW)
    SnapshotItem(
        keys.experiment_id(experiment.project_id, experiment.key), cutoffs.snapshot_date(cutoff), cutoff=cutoff,
        computed_at=NOW, analysis={"variants": [], "secondary_metrics": []},
    ).save()  # fmt: skip


def seed_purchases(buyers: list[str]) -> None:
    """A purchase an hour after exposure for each buyer (storage.events.write_all: the item and
    its by-receipt index entry)."""
    from abacus.core import keys
    from abacus.storage import events

    at, received = EXPOSED + timedelta(hours=1), EXPOSED + timedelta(hours=1, minutes=1)

    def item(user: str) -> Any:
        uuid = f"buy-{user}"
        return events.EventItem(
            keys.user_id(PROJECT, user), uuid, event="purchase", distinct_id=user, timestamp=at,
            received_at=received, properties={"amount": 40 + len(user) % 20},
            expires_at=int((at + timedelta(days=90)).timestamp()),
            **events.receipt_keys(PROJECT, received, user, uuid),
        )  # fmt: skip

    def write(chunk: list[str]) -> None:
        failed = events.write_all([item(user) for user in chunk])
        if failed:
            raise RuntimeError(f"{len(failed)} events not stored")

    in_threads(write, buyers)


def seed(moto: MotoServer, experiments_and_users: dict[str, int], with_values: bool = False) -> float:
    """Fresh tables and queues, then the experiments and their users: with their purchases, or
    (`with_values`) with the values and snapshot the night at NOW stored, and no event; seconds."""
    started = time.perf_counter()
    moto.reset()
    if create_stack(moto) != os.environ["NIGHTLY_QUEUE_URL"]:
        raise RuntimeError("the queue's URL changed: the workers would poll another queue")
    users = []
    for key, count in experiments_and_users.items():
        experiment = create_experiment(key)
        users += [(experiment, n, f"{key}-user-{n:07d}") for n in range(count)]
        if with_values:
            seed_earlier_snapshot(experiment)
    seed_users(moto, users, with_values)
    if not with_values:
        seed_purchases([user for _, n, user in users if n % 10 < PURCHASE_SHARE])
    return time.perf_counter() - started


# A night ----------------------------------------------------------------------------------------


@dataclass
class Night:
    label: str
    workers: int
    users: int
    experiments: int
    wall_seconds: float = 0.0
    plan_seconds: float = 0.0
    units_planned: int = 0
    requests: dict[str, dict[str, float]] = field(default_factory=dict)
    worker_cpu_seconds: float = 0.0
    units: list[tuple[int, float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_night(label: str, scheduled: datetime, workers: int, users: int, experiments: int, batch: int) -> Night:
    """Starts the workers, plans the night (timed from here), waits for every snapshot."""
    from abacus.nightly import runs, work_queue

    night = Night(label, workers, users, experiments)
    context = mp.get_context("spawn")
    stop, ready, done, reports = context.Event(), context.Queue(), context.Queue(), context.Queue()
    url = os.environ["NIGHTLY_QUEUE_URL"]
    processes = [
        context.Process(target=worker, args=(url, batch, stop, ready, done, reports), daemon=True)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    MAIN_COUNTER.reset()
    started = time.perf_counter()
    summary = runs.plan_night(
        scheduled,
        scheduled,
        work_queue.send,
        lambda item, error: night.failures.append(f"{item.key}: {error}"),
        f"bench-{label}-{uuid.uuid4()}",  # the invocation (Lambda's request id)
    )
    night.plan_seconds = time.perf_counter() - started
    night.units_planned = summary["units"]
    planner_requests = MAIN_COUNTER.snapshot()
    finished = 0
    while finished < summary["planned"]:
        kind, experiment_id, message = done.get(timeout=NIGHT_TIMEOUT_S)
        if kind == "error":
            night.failures.append(f"{experiment_id}: {message}")
            break
        finished += 1
        if kind == "failed":
            night.failures.append(f"{experiment_id}: run failed: {message}")
    night.wall_seconds = time.perf_counter() - started
    stop.set()
    collected = [reports.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    night.requests = merged([planner_requests, *(report["requests"] for report in collected)])
    night.worker_cpu_seconds = sum(report["cpu_seconds"] for report in collected)
    night.units = [(unit[0], unit[1], unit[2]) for report in collected for unit in report["units"]]
    return night


MAIN_COUNTER = RequestCounter()


# Item sizes -----------------------------------------------------------------------------------


def stored_sizes(moto: MotoServer, experiment_keys: list[str]) -> dict[str, float]:
    """Average and largest sizes (DynamoDB's rules) of the first shard's stored assignments,
    of the purchases, and of the runs table's items: what an UpdateItem writes is sized here."""
    from abacus.core import keys
    from abacus.core.settings import settings

    client = moto.client("dynamodb")
    partition = keys.assignment_partitions(keys.experiment_id(PROJECT, experiment_keys[0]), settings.assignment_shards)
    paginator = client.get_paginator("query")
    assignments = [
        item_size(item)
        for answer in paginator.paginate(
            TableName=settings.assignments_table,
            KeyConditionExpression="experiment_id = :p",
            ExpressionAttributeValues={":p": {"S": partition[0]}},
        )
        for item in answer["Items"]
    ]
    parts = [
        item
        for answer in paginator.paginate(
            TableName=settings.runs_table,
            KeyConditionExpression="experiment_id = :e",
            ExpressionAttributeValues={":e": {"S": keys.experiment_id(PROJECT, experiment_keys[0])}},
        )
        for item in answer["Items"]
    ]
    headers = [item_size(item) for item in parts if item["part"]["S"].endswith("#run")]
    return {
        "assignment_mean": statistics.fmean(assignments),
        "assignment_max": max(assignments),
        "assignments_sampled": len(assignments),
        "run_header_max": max(headers, default=0),
    }


# Reporting ------------------------------------------------------------------------------------


def print_night(night: Night) -> None:
    print(f"\n{night.label}: {night.experiments} experiment(s), {night.users:,} exposed users, W={night.workers}")
    for failure in night.failures:
        print(f"  FAILED {failure}")
    units = len(night.units)
    print(
        f"  wall {night.wall_seconds:,.1f} s (planner {night.plan_seconds:.2f} s, {night.units_planned} first units); "
        f"{units} units worked; {night.users / night.wall_seconds:,.0f} users/s"
    )
    print(
        f"  workers' CPU {night.worker_cpu_seconds:,.1f} s ({1000 * night.worker_cpu_seconds / night.users:.2f} ms "
        "a user)"
    )
    if night.units:
        biggest = max(night.units)
        print(
            f"  a unit on moto: mean {statistics.fmean(u[1] for u in night.units):.2f} s; the largest "
            f"({biggest[0]:,} users) {biggest[1]:.1f} s, {biggest[2]:.1f} s CPU"
        )
    columns = ("requests", 10), ("/user", 9), ("/unit", 8), ("RRU", 11), ("WRU", 9), ("KB read", 10)
    print(f"  {'service operation target':58}" + "".join(f"{name:>{width}}" for name, width in columns))
    for key, stats in night.requests.items():
        print(
            f"  {key:58}{stats['requests']:>10,.0f}{stats['requests'] / night.users:>9.4f}"
            f"{stats['requests'] / max(units, 1):>8.2f}{stats['read_units']:>11,.1f}{stats['write_units']:>9,.0f}"
            f"{stats['bytes_read'] / 1024:>10,.0f}"
        )


def as_json(night: Night) -> dict[str, Any]:
    """The night, its units summed up (bench/nightly_extrapolation.py reads these)."""
    units = night.units
    summary = {
        "count": len(units),
        "users": sum(unit[0] for unit in units),
        "seconds": sum(unit[1] for unit in units),
        "cpu_seconds": sum(unit[2] for unit in units),
        "largest": max(units, default=(0, 0.0, 0.0)),
    }
    return {**vars(night), "units": summary}


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


# Main -----------------------------------------------------------------------------------------


class Record:
    """What was measured so far, printed and (--json) written after every night and size: a
    benchmark stopped half-way keeps what it measured."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "nights": []}
        self.results["load_before"] = load_note()

    def night(self, night: Night) -> None:
        print_night(night)
        self.results["nights"].append(as_json(night))
        self.write()

    def sizes(self, when: str, sizes: dict[str, float]) -> None:
        print(
            f"  stored item sizes {when} (bytes, DynamoDB's rules): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in sizes.items())
        )
        self.results.setdefault("sizes", {})[when] = sizes
        self.write()

    def write(self) -> None:
        self.results["load_after"] = load_note()
        if self.path:
            with open(self.path, "w") as out:
                json.dump(self.results, out, indent=1)


def one_experiment(moto: MotoServer, args: argparse.Namespace, batch: int, record: Record) -> None:
    """One experiment's first night at W workers and its second night; again seeded, at W=1;
    then (--steady-users) one whose values were stored already: its second night."""
    seconds = seed(moto, {"big": args.users})
    print(f"seeded {args.users:,} users and their purchases in {seconds:.0f} s", flush=True)
    record.sizes("seeded", stored_sizes(moto, ["big"]))
    record.night(run_night("first night", NOW, args.workers, args.users, 1, batch))
    record.sizes("after the first night", stored_sizes(moto, ["big"]))
    record.night(run_night("second night", NOW + timedelta(days=1), args.workers, args.users, 1, batch))
    w1_users = args.w1_users or args.users
    seconds = seed(moto, {"big": w1_users})
    print(f"\nseeded {w1_users:,} users and their purchases in {seconds:.0f} s", flush=True)
    record.night(run_night("first night", NOW, 1, w1_users, 1, batch))
    if args.steady_users:
        seconds = seed(moto, {"steady": args.steady_users}, with_values=True)
        print(f"\nseeded {args.steady_users:,} users with stored values in {seconds:.0f} s", flush=True)
        record.night(run_night("second night (values seeded)", NOW + timedelta(days=1), args.workers,
                               args.steady_users, 1, batch))  # fmt: skip
        record.sizes("seeded with values", stored_sizes(moto, ["steady"]))


def many_experiments(moto: MotoServer, args: argparse.Namespace, batch: int, record: Record) -> None:
    """--experiments experiments of --experiment-users users: their first and second nights, or
    (--many-seeded) the second night of users whose values were stored already."""
    many = {f"e{n:03d}": args.experiment_users for n in range(args.experiments)}
    total = args.experiments * args.experiment_users
    seconds = seed(moto, many, with_values=args.many_seeded)
    print(f"\nseeded {args.experiments} experiments of {args.experiment_users:,} users in {seconds:.0f} s", flush=True)
    if not args.many_seeded:
        record.night(run_night("first night", NOW, args.workers, total, args.experiments, batch))
    label = "second night (values seeded)" if args.many_seeded else "second night"
    record.night(run_night(label, NOW + timedelta(days=1), args.workers, total, args.experiments, batch))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="the one experiment's exposed users (0: none)")
    parser.add_argument("--w1-users", type=int, default=None, help="the W=1 night's users (default: --users)")
    parser.add_argument("--steady-users", type=int, default=0, help="an experiment seeded with stored values")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--experiments", type=int, default=100, help="0: none")
    parser.add_argument("--experiment-users", type=int, default=1000)
    parser.add_argument("--many-seeded", action="store_true", help="the experiments' values stored already")
    parser.add_argument("--json", default=None, help="write the measurements here")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    moto = MotoServer()
    started = time.perf_counter()
    record = Record(args.json)
    print(record.results["load_before"], flush=True)
    try:
        configure_environment(moto)
        os.environ["NIGHTLY_QUEUE_URL"] = create_stack(moto)
        MAIN_COUNTER.install()
        from abacus_local.template import Template

        batch = next(m for m in Template().queue_mappings() if m.function == "NightlyWorkerFunction").batch_size
        record.results["batch_size"] = batch
        if args.users:
            one_experiment(moto, args, batch, record)
        if args.experiments:
            many_experiments(moto, args, batch, record)
    finally:
        moto.stop()
    record.results["total_seconds"] = time.perf_counter() - started
    record.write()
    print(f"\n{record.results['load_after']}; the whole benchmark took {record.results['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
