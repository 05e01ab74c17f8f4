"""`make demo`: start the local stack, run a two-variant experiment through it over real HTTP,
run the nightly job as EventBridge invokes it, and print the results."""

import json
import os
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta

import boto3
from botocore.config import Config
from tqdm import tqdm

from abacus_local.client import AbacusClient
from abacus_local.stack import REGION, LocalStack
from abacus_local.template import ROOT

EXPERIMENT = {
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
    # As long as the function may run (its Timeout), and never retried: a retry would run it twice.
    config = Config(read_timeout=900, retries={"total_max_attempts": 1})
    lambda_client = boto3.client("lambda", region_name=REGION, endpoint_url=stack.url, config=config)
    answer = lambda_client.invoke(FunctionName="ResultsFunction", Payload=json.dumps(nightly_event(fire_time)))
    payload = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise RuntimeError(f"the nightly job failed: {payload}")
    return payload


def percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.2%}"


def format_results(results: dict) -> str:
    """The results as a person reads them: a table of variants, then the verdict."""
    sequential = " (always-valid, mSPRT)" if results.get("sequential") else ""
    lines = [
        f"Results of '{results['experiment']}' for {results['date']} "
        f"(metric: {results['metric']['event']}, alpha {results['alpha']}{sequential})",
        "",
        f"{'variant':<12}{'exposures':>10}{'conversions':>13}{'rate':>9}{'P(best)':>9}   "
        f"{'lift (95% CI)':<28}{'p-value':>8}",
    ]
    for row in results["variants"]:
        if "lift" in row:
            relative, interval = row["lift"]["relative"], row["lift"]["relative_ci"]
            lift = percent(relative, signed=True)
            if interval:
                lift += f" [{percent(interval[0], True)}, {percent(interval[1], True)}]"
            p_value = f"{row['p_value']:.4f}" if row["p_value"] is not None else "n/a"
        else:
            lift, p_value = "(control)", ""
        lines.append(
            f"{row['key']:<12}{row['exposures']:>10}{row['conversions']:>13}{percent(row['mean']):>9}"
            f"{row['probability_to_be_best']:>9.1%}   {lift:<28}{p_value:>8}"
        )
    verdict = results["verdict"]
    decision = verdict["decision"] + (f" '{verdict['variant']}'" if verdict.get("variant") else "")
    srm = results["srm"]
    lines += [
        "",
        f"Sample ratio check: p = {srm['p_value']:.3f}" + (" MISMATCH" if srm["mismatch"] else " (ok)"),
        f"Verdict: {decision}: {verdict['reason']}.",
    ]
    return "\n".join(lines)


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
        print(format_results(client.results(EXPERIMENT["key"])))
    print("\nThe local stack has stopped.")
    return 0


def main() -> int:
    return run_demo(users=int(os.environ.get("ABACUS_DEMO_USERS", "3000")))
