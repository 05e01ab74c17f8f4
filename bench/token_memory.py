"""What made-up project tokens leave in an execution environment's memory (issue 28).

IngestFunction's handler, on moto's in-memory DynamoDB, with the deployed CacheSeconds (30): first
`tokens` requests to /events, each with a new made-up token of 200 characters (the longest a
route takes), then 60 gzip requests to /batch/, each with a new made-up token of 0.9 MB (the
report's case). After each step, the memory allocated since the start that is still held
(tracemalloc, after a garbage collection), and how many entries the token caches hold.

Run: .venv/bin/python bench/token_memory.py [tokens]
"""

import base64
import gc
import gzip
import json
import os
import sys
import tracemalloc
from typing import Any

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

from abacus_local.dynamodb import create_tables
from abacus_local.lambdas import LocalContext, load_handler
from abacus_local.template import ROOT, Template

EVENT = json.loads((ROOT / "events" / "post_events.json").read_text())
BATCH = json.loads((ROOT / "events" / "posthog_batch.json").read_text())


def held() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def cached() -> str:
    from abacus.http import api

    counts = {"known": len(api._tokens._entries)}
    if hasattr(api, "_unknown_keys"):  # not before issue 28: unknown tokens were cached as known ones
        counts["unknown"] = len(api._unknown_keys._entries)
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def events_request(token: str) -> dict[str, Any]:
    body = {"token": token, "events": [{"event": "purchase", "distinct_id": "user-1"}]}
    return {**EVENT, "body": json.dumps(body), "isBase64Encoded": False}


def gzip_request(token: str) -> dict[str, Any]:
    body = gzip.compress(json.dumps({"api_key": token, "batch": [{"event": "e", "distinct_id": "u"}]}).encode())
    headers = {**BATCH["headers"], "content-encoding": "gzip"}
    return {**BATCH, "headers": headers, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def main(tokens: int) -> None:
    template = Template()
    with mock_aws():
        create_tables(template, boto3.client("dynamodb", region_name="us-east-1"))
        from abacus import projects

        projects.create("Bench", project_id="bench", token="phc_bench", admin_key="abacus_bench")
        ingest = load_handler(template.functions()["IngestFunction"])
        context = LocalContext("IngestFunction", 256, 10, "us-east-1")
        statuses: set[int] = set()
        tracemalloc.start()
        statuses.add(ingest(events_request("phc_bench"), context)["statusCode"])
        start = held()
        print("made-up tokens of 200 characters, one request each (caches: entries held)")
        for n in range(tokens):
            statuses.add(ingest(events_request(f"phc_{n:06d}".ljust(200, "x")), context)["statusCode"])
            if (n + 1) % (tokens // 4) == 0:
                print(f"  after {n + 1:>6,}: {(held() - start) / 1e6:7.2f} MB held; caches: {cached()}")
        before = held()
        print("gzip requests with a new 0.9 MB token each (the handler keeps its last request until the next)")
        for n in range(60):
            statuses.add(ingest(gzip_request(f"phc_{n:02d}".ljust(900_000, "x")), context)["statusCode"])
            if n + 1 in (1, 20, 40, 60):
                print(f"  after {n + 1:>6}: {(held() - before) / 1e6:7.2f} MB more held; caches: {cached()}")
        print(f"statuses answered: {sorted(statuses)}")
        tracemalloc.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
