"""Warm assignments per second of AssignFunction's handler against the floor: the bare DynamoDB
request each assignment needs (one UpdateItem), sent with boto3 to the same moto backend.

Both run in this process against moto's in-memory DynamoDB (mock_aws), with the definition cache
on (ABACUS_CACHE_SECONDS=30), so the handler's steady state is measured: validation, routing,
credentials and definitions from the cache, hashing, and its one UpdateItem.

Run: .venv/bin/python bench/assign_throughput.py [assignments]
"""

import json
import os
import sys
import time

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "ABACUS_CACHE_SECONDS": "30",
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)

import boto3
from moto import mock_aws

from abacus_local.dynamodb import create_tables
from abacus_local.lambdas import LocalContext, load_handler
from abacus_local.template import ROOT, Template


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    template = Template()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(template, client)
        from abacus import projects

        projects.create("Bench", project_id="bench", token="phc_bench", admin_key="abacus_bench")
        handler = load_handler(template.functions()["AssignFunction"])
        context = LocalContext("AssignFunction", 256, 10, "us-east-1")
        admin = load_handler(template.functions()["ResultsFunction"])  # the admin routes are its
        admin_event = json.loads((ROOT / "events" / "create_experiment.json").read_text())
        admin_event["headers"]["authorization"] = "Bearer abacus_bench"
        assert admin(admin_event, context)["statusCode"] == 201
        launch = json.loads((ROOT / "events" / "launch_experiment.json").read_text())
        launch["headers"]["authorization"] = "Bearer abacus_bench"
        assert admin(launch, context)["statusCode"] == 200

        event = json.loads((ROOT / "events" / "assign.json").read_text())
        bodies = [
            json.dumps({"token": "phc_bench", "distinct_id": f"user-{i}", "experiments": ["new-checkout"]})
            for i in range(count)
        ]
        event["body"] = bodies[0]
        handler(event, context)  # warm: cache filled
        started = time.perf_counter()
        for body in bodies:
            event["body"] = body
            handler(event, context)
        handler_rate = count / (time.perf_counter() - started)

        started = time.perf_counter()
        for i in range(count):
            client.update_item(
                TableName="AssignmentsTable",
                Key={"experiment_id": {"S": "bench#floor"}, "distinct_id": {"S": f"user-{i}"}},
                UpdateExpression="SET variant = if_not_exists(variant, :v),"
                " assigned_at = if_not_exists(assigned_at, :t), exposed_at = if_not_exists(exposed_at, :t)",
                ExpressionAttributeValues={":v": {"S": "control"}, ":t": {"S": "2026-11-25T00:00:00.000000+0000"}},
                ReturnValues="ALL_NEW",
            )
        floor_rate = count / (time.perf_counter() - started)
    print(f"{count} warm assignments, one running experiment, moto in-process (mock_aws)")
    print(f"  handler: {handler_rate:8.0f} assignments/s")
    print(f"  floor:   {floor_rate:8.0f} UpdateItem/s (the one request an assignment needs)")
    print(f"  handler / floor: {handler_rate / floor_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
