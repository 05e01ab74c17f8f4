"""Concurrency (issue #7): N clients (default 50) against the local stack for a bounded time,
each assigning a user from a shared pool and sending that user's purchase (a fifth of batches
sent twice). Prints each route's requests per second, p50 and p99 latency, the errors, and
whether the nightly job's results count every exposure and every purchase exactly once.

The local stack is moto's server plus the functions in this machine's processes (4 execution
environments per function): the latencies are those of this laptop-scale stack, not of Lambda.

Run: .venv/bin/python bench/load_test.py [clients] [seconds]
"""

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


from abacus_local import loadtest
from abacus_local.client import AbacusClient, lambda_client
from abacus_local.stack import free_port
from abacus_local.template import ROOT

TOKEN, ADMIN_KEY = "phc_load_token", "abacus_load_admin"


def main(clients: int, seconds: float) -> None:
    env = os.environ | {"ABACUS_TOKEN": TOKEN, "ABACUS_ADMIN_KEY": ADMIN_KEY, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "abacus_local", "serve", "--port", str(free_port())]
    stack = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert stack.stdout is not None
        url = stack.stdout.readline().split()[1]
        # The functions log to the stack's output: read it all, or a full pipe would stall them.
        threading.Thread(target=stack.stdout.read, daemon=True).start()
        admin = AbacusClient(url, admin_key=ADMIN_KEY, token=TOKEN)
        loadtest.prepare(admin)
        report = loadtest.run(url, TOKEN, clients, seconds)
        print(report.summary())
        event = json.loads((ROOT / "events" / "nightly.json").read_text())
        event["time"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        lambda_client(url).invoke(FunctionName="ResultsFunction", Payload=json.dumps(event))
        results = admin.results(loadtest.EXPERIMENT)
        exposures = sum(row["exposures"] for row in results["variants"])
        counted = round(sum(r["mean"] * r["exposures"] for r in results["secondary_metrics"][0]["variants"]))
        sticky = all(len(variants) == 1 for variants in report.variants.values())
        print(
            f"results: {exposures} exposures for {len(report.users)} users assigned; "
            f"{counted} purchases counted of {len(report.purchases)} sent; variants sticky: {sticky}"
        )
    finally:
        stack.terminate()
        stack.wait(timeout=30)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, float(sys.argv[2]) if len(sys.argv) > 2 else 30)
