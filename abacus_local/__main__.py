"""python -m abacus_local demo | dev | serve [--port N]"""

import argparse
import json
import signal
import sys
import threading

from abacus_local.stack import REGION, LocalStack
from abacus_local.template import ROOT

# Tonight's run of the nightly job (03:00 UTC tomorrow: it analyses today), from events/nightly.json.
NIGHTLY_TIME = json.loads((ROOT / "events" / "nightly.json").read_text())["time"]
TONIGHT = f"""sed "s/{NIGHTLY_TIME[:10]}/$(date -u -d tomorrow +%F)/" events/nightly.json"""


def banner(stack: LocalStack) -> str:
    """What `dev` prints: the credentials, the environment AWS tools need, and commands to try,
    each of which works pasted alone (its URL, keys and environment written out in it: no
    variable of an earlier line, no `export` needed), from the repository's folder."""
    creds = stack.credentials
    exports = " ".join(f"{name}={value}" for name, value in stack.client_environment().items())
    # The operator's command line needs DynamoDB's (and SQS's) endpoint, and the stack's region
    # whatever the shell sets; on loopback it needs no credentials (storage/local_endpoint.py).
    cli = f"AWS_REGION={REGION} AWS_ENDPOINT_URL={stack.dynamodb_url} .venv/bin/python -m abacus"
    queue = stack.queue_urls["NightlyWorkQueue"]
    admin = f"-H 'Authorization: Bearer {creds.admin_key}'"
    return f"""Abacus local stack on {stack.url}  (Ctrl-C stops it)
  console        {stack.url}/console  (sign in with the admin key)
  project token  {creds.token}
  admin key      {creds.admin_key}
  flags key      {creds.flags_key}  (PostHog server SDKs' personal_api_key: local evaluation)
  DynamoDB, SQS  {stack.dynamodb_url} (moto)

  # For the AWS CLI, boto3 and your own scripts (a region, any credentials, the endpoints); the
  # commands below need none of it, each works pasted alone in this folder:
  export {exports}

  curl -s -X POST {stack.url}/experiments {admin} \\
    -d '{{"key": "hello", "name": "Hello", "variants": [{{"key": "control", "weight": 50}},
         {{"key": "test", "weight": 50}}], "primary_metric": {{"event": "purchase"}}}}'
  curl -s -X POST {stack.url}/experiments/hello/launch {admin}
  curl -s -X POST {stack.url}/assign \\
    -d '{{"token": "{creds.token}", "distinct_id": "user-1", "experiments": ["hello"]}}'
  curl -s -X POST {stack.url}/events -d '{{"token": "{creds.token}",
    "events": [{{"event": "purchase", "distinct_id": "user-1"}}]}}'
  curl -s {stack.url}/experiments/hello/results {admin}
  # The flag definitions PostHog's server SDKs poll to evaluate flags locally (the flags key):
  curl -s {stack.url}/flags/definitions -H 'Authorization: Bearer {creds.flags_key}'
  # The operator's command line (python -m abacus), on this stack's tables:
  {cli} experiment list --project {creds.project_id} --status running
  {cli} key create --project {creds.project_id} --name "Your name"
  # Tonight's nightly job, which analyses today (on macOS: date -u -v+1d +%F), through the local
  # Lambda Invoke API (deployed: aws lambda invoke); it queues the experiment's units, and the
  # stack's NightlyWorkerFunction stores the snapshot a moment later:
  curl -s {stack.url}/2015-03-31/functions/ResultsFunction/invocations \\
    --data-binary @<({TONIGHT})
  {cli} results hello --project {creds.project_id}
  # Or compute them now (data up to now) and wait for the snapshot, its progress on stderr:
  NIGHTLY_QUEUE_URL={queue} {cli} results hello --project {creds.project_id} --recompute"""


def serve(port: int | None, with_banner: bool) -> int:
    with LocalStack(port) as stack:
        print(banner(stack) if with_banner else f"ready {stack.url} {stack.dynamodb_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m abacus_local", description=__doc__)
    parser.add_argument("command", choices=["demo", "dev", "serve"])
    parser.add_argument("--port", type=int, default=None, help="API port (default: ABACUS_PORT or 3000)")
    args = parser.parse_args(argv)
    # SIGTERM stops the stack as Ctrl-C does, through the `with` blocks that shut it down.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.command == "demo":
        from abacus_local.demo import main as demo

        return demo()
    return serve(args.port, with_banner=args.command == "dev")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
