"""The nightly job's cost (issue #6): time and DynamoDB read units for one experiment as its
exposed users grow, and for 100 running experiments.

Steady state, as on most nights: every user's values were computed before and no new events came,
so the job Queries the experiment's exposed users (their stored values) and the by-receipt index,
and reads no raw event. A first night (or a user with new events) adds one Query of that user's
events and one UpdateItem: measured separately, per user. moto's in-memory DynamoDB, in process.

Run: .venv/bin/python bench/nightly_cost.py [largest users]
"""

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "b",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)

import boto3
from moto import mock_aws
from pynamodb.connection import base

from abacus_local.dynamodb import create_tables
from abacus_local.template import Template

NOW = datetime(2026, 11, 25, 3, tzinfo=UTC)
CUTOFF = datetime(2026, 11, 25, tzinfo=UTC)


def experiment(key: str):
    from abacus.experiments import definitions
    from abacus.experiments.spec import ExperimentCreate

    spec = ExperimentCreate.model_validate(
        {
            "key": key,
            "name": key,
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "order"},
            "secondary_metrics": [{"event": "order", "kind": "sum", "property": "amount"}],
        }
    )
    definitions.create("p", spec, NOW - timedelta(days=10))
    return definitions.apply("p", key, "launch", NOW - timedelta(days=10))


def stored_key(spec) -> str:
    """What the nightly job requires stored values to have been computed for (CUPED's window too)."""
    from abacus.nightly import values

    metrics = [spec.primary_metric, *spec.secondary_metrics]
    return values.metrics_key(metrics, values.pre_exposure_days(spec))


def users_with_values(item, count: int, metrics_key: str) -> None:
    """`count` exposed users of the experiment `item` whose values a previous night computed."""
    from abacus.storage.assignments import AssignmentItem

    exposed = NOW - timedelta(days=5)
    with AssignmentItem.batch_write() as batch:
        for i in range(count):
            batch.save(
                AssignmentItem(
                    item.assignment_partition(f"user-{i}"), f"user-{i}", variant=("control", "b")[i % 2],
                    assigned_at=exposed, exposed_at=exposed,
                    metric_values=[float(i % 3 == 0), 12.5 * (i % 3 == 0)], values_exposed_at=exposed,
                    values_cutoff=CUTOFF - timedelta(days=1), values_metrics=metrics_key, values_pending=False,
                    pre_values=[0.0, 0.0],
                )
            )  # fmt: skip


def measure(run) -> tuple[float, dict]:
    calls: dict[str, int] = {}
    items = {"read": 0, "bytes": 0}
    original = base.Connection.dispatch

    def counting(self, operation, data):
        answer = original(self, operation, data)
        calls[operation] = calls.get(operation, 0) + 1
        if operation == "Query":
            items["read"] += answer.get("ScannedCount", 0)
            items["bytes"] += len(json.dumps(answer.get("Items", [])))
        return answer

    with patch.object(base.Connection, "dispatch", counting):
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
    # Eventually consistent Query: half a read unit per 4 KB read.
    return elapsed, {"requests": calls, "items_read": items["read"], "read_units": items["bytes"] / 4096 * 0.5}


def one_experiment(users: int) -> None:
    with mock_aws():
        create_tables(Template(), boto3.client("dynamodb", region_name="us-east-1"))
        from abacus.experiments import definitions
        from abacus_local import nightly_inline

        item = experiment("e")
        spec = definitions.definition(item)
        users_with_values(item, users, stored_key(spec))
        from abacus.storage.results import SnapshotItem

        SnapshotItem(
            "p#e",
            "2026-11-23",
            cutoff=CUTOFF - timedelta(days=1),
            computed_at=NOW - timedelta(days=1),
            analysis={"variants": [], "secondary_metrics": []},  # no earlier look: only when it ran
        ).save()
        elapsed, cost = measure(lambda: nightly_inline.compute_snapshot(item, CUTOFF, NOW))
        print(f"1 experiment, {users:>7} exposed users: {elapsed:6.2f} s, {cost['read_units']:8.1f} read units, "
              f"{cost['items_read']} items read, requests {cost['requests']}")  # fmt: skip


def first_night_per_user(users: int) -> None:
    with mock_aws():
        create_tables(Template(), boto3.client("dynamodb", region_name="us-east-1"))
        from abacus.storage import assignments
        from abacus_local import nightly_inline

        item = experiment("f")
        for i in range(users):
            user = f"user-{i}"
            assignments.assign(
                item.assignment_partition(user), user, ("control", "b")[i % 2], NOW - timedelta(days=5), expose=True
            )
        elapsed, cost = measure(lambda: nightly_inline.compute_snapshot(item, CUTOFF, NOW))
        print(f"first night, {users} users: {elapsed / users * 1000:.2f} ms and requests per user "
              f"{ {k: round(v / users, 2) for k, v in cost['requests'].items()} }")  # fmt: skip


def many_experiments(count: int, users: int) -> None:
    with mock_aws():
        create_tables(Template(), boto3.client("dynamodb", region_name="us-east-1"))
        from abacus.experiments import definitions
        from abacus_local import nightly_inline

        for n in range(count):
            item = experiment(f"e{n}")
            spec = definitions.definition(item)
            users_with_values(item, users, stored_key(spec))
        elapsed, cost = measure(
            lambda: nightly_inline.run_all(NOW, NOW, on_failure=lambda e, err: print("failed", e.key, err))
        )
        print(f"{count} running experiments x {users} users: {elapsed:6.2f} s, {cost['read_units']:8.1f} read units, "
              f"requests {cost['requests']}")  # fmt: skip


def main() -> int:
    largest = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    sizes = [n for n in (10_000, 100_000, 1_000_000) if n <= largest]
    for users in sizes:
        one_experiment(users)
    first_night_per_user(1_000)
    many_experiments(100, 1_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
