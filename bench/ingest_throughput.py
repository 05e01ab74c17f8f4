"""IngestFunction's throughput and DynamoDB cost per event (issue #5).

For a user in 0, 1 and 5 running experiments whose metrics use the event: events per second of
the handler (batches of 100 events from 100 users, in Abacus's format) against the floor, plain
BatchWriteItem of the same items with boto3; both on moto's in-memory DynamoDB in one process.
Every DynamoDB request the handler makes is counted, and write units computed from the items'
sizes (1 WCU per started KB written; conditional failures still cost 1). Then what a million
events cost at on-demand prices.

Run: .venv/bin/python bench/ingest_throughput.py [batches]
"""

import json
import math
import os
import sys
import time
from collections import Counter
from typing import Any
from unittest.mock import patch

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "ABACUS_CACHE_SECONDS": "30",
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)

import boto3
from moto import mock_aws
from pynamodb.connection import base

from abacus.experiments import definitions
from abacus_local.dynamodb import create_tables
from abacus_local.lambdas import LocalContext, load_handler
from abacus_local.template import ROOT, Template

# us-east-1 on-demand and Lambda prices (x86): per million write/read request units, per GB-second,
# per million requests.
PRICE_WRITE_UNIT, PRICE_READ_UNIT = 0.625 / 1e6, 0.125 / 1e6
PRICE_GB_SECOND, PRICE_REQUEST = 0.0000166667, 0.20 / 1e6
MEMORY_GB, EVENTS_PER_REQUEST = 0.256, 100


def _launch_with_exposed_users(admin, context, key: str, users: list[str]) -> None:
    """Creates and launches an experiment through the admin routes (ResultsFunction's), with every
    user exposed to control."""
    from abacus.storage.assignments import AssignmentItem

    for name in ("create_experiment", "launch_experiment"):
        event = json.loads((ROOT / "events" / f"{name}.json").read_text())
        event["headers"]["authorization"] = "Bearer abacus_bench"
        if name == "create_experiment":
            event["body"] = json.dumps(json.loads(event["body"]) | {"key": key})
        else:
            event["rawPath"] = f"/experiments/{key}/launch"
        admin(event, context)
    from abacus.storage.experiments import ExperimentItem

    experiment = ExperimentItem.get("bench", key)
    for distinct_id in users:
        AssignmentItem(experiment.assignment_partition(distinct_id), distinct_id, variant="control").update(
            actions=[AssignmentItem.exposed_at.set(AssignmentItem.exposed_at | _now())]
        )


def scenario(experiments: int, batches: int) -> dict:
    template = Template()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(template, client)
        from abacus import projects
        from abacus.http import api

        # Each scenario is a fresh backend: nothing cached from the one before.
        definitions._definitions.clear()
        api._tokens.clear()

        projects.create("Bench", project_id="bench", token="phc_bench", admin_key="abacus_bench")
        admin = load_handler(template.functions()["ResultsFunction"])
        ingest = load_handler(template.functions()["IngestFunction"])
        context = LocalContext("bench", 256, 10, "us-east-1")
        users = [f"user-{i}" for i in range(100)]
        for index in range(experiments):
            _launch_with_exposed_users(admin, context, f"exp-{index}", users)
        template_event = json.loads((ROOT / "events" / "post_events.json").read_text())
        bodies = []
        for batch in range(batches):
            events = [
                {"event": "purchase", "distinct_id": d, "uuid": f"{batch}-{d}", "properties": {"amount": 19.99}}
                for d in users
            ]
            bodies.append(json.dumps({"token": "phc_bench", "events": events}))
        calls: Counter[str] = Counter()
        original = base.Connection.dispatch

        def counting(self, operation, data):
            calls[operation] += 1
            return original(self, operation, data)

        with patch.object(base.Connection, "dispatch", counting):
            template_event["body"] = bodies[0]
            ingest(template_event, context)  # warm: caches filled
            calls.clear()
            started = time.perf_counter()
            for body in bodies[1:]:
                template_event["body"] = body
                assert ingest(template_event, context)["statusCode"] == 200
            elapsed = time.perf_counter() - started
        events_sent = (batches - 1) * len(users)

        from abacus.storage.events import EventItem

        sample = next(iter(EventItem.scan(limit=1)))
        event_kb = len(json.dumps(sample.serialize())) / 1024
        copied = (
            "event",
            "distinct_id",
            "timestamp",
            "received_at",
            "properties",
            "expires_at",
            "receipt_day",
            "receipt",
        )
        fields = {name: getattr(sample, name) for name in copied}
        # DynamoDB's wire format, which the client's types spell out attribute by attribute.
        floor_items: list[Any] = [
            {"PutRequest": {"Item": EventItem(f"bench#f{i}", f"floor-{i}", **fields).serialize()}}
            for i in range(events_sent)
        ]
        started = time.perf_counter()
        for start in range(0, len(floor_items), 25):
            client.batch_write_item(RequestItems={"EventsTable": floor_items[start : start + 25]})
        floor_elapsed = time.perf_counter() - started
    # Each event is written to the table and copied to the by-receipt index (a small projection).
    write_units = events_sent * (math.ceil(event_kb) + 1) + calls["UpdateItem"]
    read_units = events_sent * 0.5  # BatchGetItem, eventually consistent, one small item each
    return {
        "experiments": experiments,
        "events_per_second": events_sent / elapsed,
        "floor_events_per_second": events_sent / floor_elapsed,
        "requests_per_event": {op: round(n / events_sent, 4) for op, n in sorted(calls.items())},
        "write_units_per_event": write_units / events_sent,
        "read_units_per_event": read_units / events_sent,
        "handler_ms_per_request": elapsed / (batches - 1) * 1000,
    }


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def main() -> int:
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    print(f"{(batches - 1) * 100} events in requests of 100, moto in-process (mock_aws)\n")
    for experiments in (0, 1, 5):
        r = scenario(experiments, batches)
        rate, floor = r["events_per_second"], r["floor_events_per_second"]
        wru, rru, ms = r["write_units_per_event"], r["read_units_per_event"], r["handler_ms_per_request"]
        dynamo = wru * PRICE_WRITE_UNIT + rru * PRICE_READ_UNIT
        lambda_cost = (PRICE_REQUEST + MEMORY_GB * ms / 1000 * PRICE_GB_SECOND) / EVENTS_PER_REQUEST
        print(f"user in {experiments} running experiment(s):")
        print(f"  handler {rate:7.0f} events/s; floor (bare BatchWriteItem) {floor:7.0f} events/s;", end=" ")
        print(f"ratio {rate / floor:.2f}")
        print(f"  DynamoDB requests per event: {r['requests_per_event']}")
        print(f"  write units per event {wru:.2f} (the index's copy included), read units per event {rru:.2f}")
        print(f"  per million events: DynamoDB ${dynamo * 1e6:.2f}", end=" ")
        print(f"= 1e6 x ({wru:.2f} WRU x $0.625/M + {rru:.2f} RRU x $0.125/M)")
        print(f"    Lambda ${lambda_cost * 1e6:.3f}", end=" ")
        print(f"= 1e4 requests x ($0.20/M + 0.256 GB x {ms:.0f} ms x $0.0000166667/GB-s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
