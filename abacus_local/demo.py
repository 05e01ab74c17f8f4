"""`make demo`: start the local stack, run a two-variant experiment through it over real HTTP,
run the nightly job as EventBridge invokes it, and print the results."""

import json
import os
import random
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from tqdm import tqdm

from abacus import report
from abacus.documents import ReadyResults
from abacus_local.client import AbacusClient, lambda_client
from abacus_local.stack import LocalStack
from abacus_local.template import ROOT

EXPERIMENT: dict[str, Any] = {
    "key": "new-checkout",
    "name": "One-page checkout",
    "variants": [{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50}],
    "primary_metric": {"event": "purchase"},
    "minimum_detectable_effect": 0.2,
}
# The simulated truth: the new checkout converts 50% better.
TRUE_RATES = {"control": 0.20, "one-page": 0.30}
SEED = 20261125


def simulate_user(client: AbacusClient, index: int) -> list[dict]:
    """Assigns one user and returns the events they go on to send."""
    distinct_id = f"user-{index:05d}"
    variant = client.assign(distinct_id, [EXPERIMENT["key"]])[EXPERIMENT["key"]]
    events = [{"event": "$pageview", "distinct_id": distinct_id, "uuid": f"{distinct_id}-pageview"}]
    # One generator per user: the outcome does not depend on the threads' order.
    if random.Random(SEED * 100_000 + index).random() < TRUE_RATES[variant]:
        events.append({"event": "purchase", "distinct_id": distinct_id, "uuid": f"{distinct_id}-purchase"})
    return events


def nightly_event(fire_time: datetime) -> dict:
    """events/nightly.json as EventBridge sends it, with the time it fires."""
    event = json.loads((ROOT / "events" / "nightly.json").read_text())
    event["time"] = fire_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["id"] = f"local-{fire_time:%Y%m%d}"
    return event


def invoke_nightly(stack: LocalStack, fire_time: datetime) -> dict:
    """Invokes ResultsFunction through the local Lambda Invoke API, as the schedule would."""
    answer = lambda_client(stack.url).invoke(
        FunctionName="ResultsFunction", Payload=json.dumps(nightly_event(fire_time))
    )
    payload = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise RuntimeError(f"the nightly job failed: {payload}")
    return payload


def run_demo(users: int) -> int:
    print("Starting the local stack (moto as DynamoDB, the API from template.yaml) ...", flush=True)
    with LocalStack(log_level="WARNING", metrics=False) as stack:
        creds = stack.credentials
        print(f"API on {stack.url}   token {creds.token}   admin key {creds.admin_key}")
        client = AbacusClient(stack.url, admin_key=creds.admin_key, token=creds.token)
        client.create_experiment(EXPERIMENT)
        client.launch(EXPERIMENT["key"])
        print(f"Experiment '{EXPERIMENT['key']}' created and launched; true rates {TRUE_RATES}")

        events: list[dict] = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = pool.map(lambda i: simulate_user(client, i), range(users))
            for user_events in tqdm(
                outcomes, total=users, desc="Assigning users", unit="user", file=sys.stdout, mininterval=1
            ):
                events.extend(user_events)
        batches = [events[i : i + 500] for i in range(0, len(events), 500)]
        accepted = 0
        for batch in tqdm(batches, desc="Sending events", unit="batch", file=sys.stdout, mininterval=1):
            accepted += client.send_events(batch)["accepted"]
        print(f"{accepted} events accepted")

        # Everything above happened today; tomorrow's 03:00 UTC run is the one that analyses today.
        fire_time = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(3), tzinfo=UTC)
        print(f"Running the nightly job as EventBridge will invoke it at {fire_time:%Y-%m-%d %H:%M} UTC ...")
        summary = invoke_nightly(stack, fire_time)
        print(f"Nightly job: {summary['analysed']} experiment(s) analysed, {summary['failed']} failed")
        print()
        print(report.text(cast(ReadyResults, client.results(EXPERIMENT["key"])), EXPERIMENT["key"]))
        link = client.call("POST", f"/experiments/{EXPERIMENT['key']}/report/link", admin=True)
        page = ROOT / ".abacus" / "demo-report.html"
        page.parent.mkdir(exist_ok=True)
        with urllib.request.urlopen(link["url"], timeout=30) as response:  # noqa: S310 - our own local URL
            page.write_bytes(response.read())
        print(f"\nThe report page: {page}\n(while a stack runs, its signed link works for 15 minutes: {link['url']})")
    print("\nThe local stack has stopped.")
    return 0


def main() -> int:
    return run_demo(users=int(os.environ.get("ABACUS_DEMO_USERS", "3000")))
