"""The cost of a bandit's reweighting (issue 34): DynamoDB requests, read units and time of one
recompute and the reweighting that follows it, for one bandit as its exposed users grow.

A bandit is recomputed every `reweight_every_hours` (hourly by default) besides the nightly run:
the nightly job's run of that one experiment up to now (abacus.nightly.computation), then, in the
same merge, the reweighting (abacus.nightly.reweight: one BatchGetItem of its phases and one
transaction writing the next phase and the experiment). Steady state, as on most hours: every
user's values were computed before and few sent events since, so the run Queries the bandit's
exposed users (their stored values) and the by-receipt index, and reads no raw event; a user with
new events adds a Query of their events and an UpdateItem (bench/nightly_cost.py measures that per
user). moto's in-memory DynamoDB, in process: the requests and read units are what DynamoDB
would bill; the time is this machine's, one process (the deployed worker runs 16 shards at once).

Run: .venv/bin/python bench/bandit_cost.py [largest users]
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

NOW = datetime.now(UTC).replace(microsecond=0)
VARIANTS = ["control", "b", "c", "d"]
RATES = {"control": 0.05, "b": 0.05, "c": 0.08, "d": 0.05}  # c converts best


def measure(run) -> tuple[float, dict]:
    """Time, requests by operation, and the read units of its Queries (eventually consistent: half
    a unit per 4 KB; a compressed page's bytes counted as stored) and BatchGetItems (per item)."""
    calls: dict[str, int] = {}
    read = {"units": 0.0}
    original = base.Connection.dispatch

    def counting(self, operation, data):
        answer = original(self, operation, data)
        calls[operation] = calls.get(operation, 0) + 1
        if operation == "Query":
            read["units"] += len(json.dumps(answer.get("Items", []), default=lambda raw: "x" * len(raw))) / 4096 * 0.5
        if operation == "BatchGetItem":  # each key asked, found or not (under 4 KB): a unit consistent, half one not
            for wanted in data["RequestItems"].values():
                read["units"] += len(wanted["Keys"]) * (1.0 if wanted.get("ConsistentRead") else 0.5)
        return answer

    with patch.object(base.Connection, "dispatch", counting):
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
    return elapsed, {"requests": calls, "read_units": read["units"]}


def bandit(key: str):
    from abacus.experiments import definitions
    from abacus.experiments.spec import ExperimentCreate

    spec = ExperimentCreate.model_validate(
        {
            "key": key,
            "name": key,
            "variants": [{"key": v, "weight": 25} for v in VARIANTS],
            "primary_metric": {"event": "order"},
            "cuped": False,
            "allocation": {"kind": "bandit"},
        }
    )
    definitions.create("p", spec, NOW - timedelta(days=3))
    return definitions.apply("p", key, "launch", NOW - timedelta(days=2))


def users_with_values(item, count: int) -> None:
    """`count` exposed users over the bandit's two days, each with values a previous run computed."""
    from abacus.experiments import definitions
    from abacus.nightly import values
    from abacus.storage.assignments import AssignmentItem

    spec = definitions.definition(item)
    key = values.metrics_key(spec.all_metrics(), values.pre_exposure_days(spec))
    computed = NOW - timedelta(hours=1)
    with AssignmentItem.batch_write() as batch:
        for i in range(count):
            variant = VARIANTS[i % len(VARIANTS)]
            exposed = item.started_at + timedelta(seconds=(i * 172_000) // count)
            converted = float((i // len(VARIANTS)) % 1000 < RATES[variant] * 1000)
            batch.save(
                AssignmentItem(
                    item.assignment_partition(f"user-{i}"), f"user-{i}", variant=variant,
                    assigned_at=exposed, exposed_at=exposed, metric_values=[converted], values_exposed_at=exposed,
                    values_cutoff=computed, values_metrics=key, values_pending=False, values_computed_at=computed,
                )
            )  # fmt: skip


def one_bandit(users: int) -> None:
    with mock_aws():
        create_tables(Template(), boto3.client("dynamodb", region_name="us-east-1"))
        from abacus.experiments import bandit_weights, definitions
        from abacus.storage.results import SnapshotItem
        from abacus_local import nightly_inline

        item = bandit("headline")
        users_with_values(item, users)
        SnapshotItem(  # the run before, an hour ago: events since then are the by-receipt index's
            item.experiment_id,
            (NOW - timedelta(days=1)).date().isoformat(),
            cutoff=NOW - timedelta(hours=1),
            computed_at=NOW - timedelta(hours=1),
            analysis={"variants": [], "secondary_metrics": []},
        ).save()
        started = time.perf_counter()
        elapsed, cost = measure(lambda: nightly_inline.compute_snapshot(item, NOW, NOW))
        after = definitions.get("p", "headline")
        shares = bandit_weights.points(after, definitions.definition(after))
        print(
            f"1 bandit, {users:>9,} exposed users: {elapsed:6.2f} s, {cost['read_units']:8.1f} read units, "
            f"requests {cost['requests']}; phase {bandit_weights.phase_number(after)}, shares "
            f"{ {k: v / 100 for k, v in shares.items()} } ({time.perf_counter() - started:.1f} s in all)"
        )


def main() -> int:
    largest = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for users in (n for n in (10_000, 100_000, 1_000_000) if n <= largest):
        one_bandit(users)
    return 0


if __name__ == "__main__":
    sys.exit(main())
