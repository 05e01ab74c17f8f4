"""python -m abacus_local demo | dev | serve [--port N]"""

import argparse
import json
import signal
import sys
import threading

from abacus_local.stack import LocalStack
from abacus_local.template import ROOT

# Tonight's run of the nightly job (03:00 UTC tomorrow: it analyses today), from events/nightly.json.
NIGHTLY_TIME = json.loads((ROOT / "events" / "nightly.json").read_text())["time"]
TONIGHT = f"""sed "s/{NIGHTLY_TIME[:10]}/$(date -u -d tomorrow +%F)/" events/nightly.json"""


def banner(stack: LocalStack) -> str:
    """What `dev` prints: the credentials, the environment AWS tools need, and commands to try."""
    creds = stack.credentials
    exports = " ".join(f"{name}={value}" for name, value in stack.client_environment().items())
    return f"""Abacus local stack on {stack.url}  (Ctrl-C stops it)
  console        {stack.url}/console  (sign in with the admin key)
  project token  {creds.token}
  admin key      {creds.admin_key}
  flags key      {creds.flags_key}  (PostHog server SDKs' personal_api_key: local evaluation)
  DynamoDB, SQS  {stack.dynamodb_url} (moto)

  # For the AWS CLI, boto3 and python -m abacus (a region, any credentials, the endpoints):
  export {exports}

  curl -s -X POST {stack.url}/experiments -H 'Authorization: Bearer {creds.admin_key}' \\
    -d '{{"key": "hello", "name": "Hello", "variants": [{{"key": "control", "weight": 50}},
         {{"key": "test", "weight": 50}}], "primary_metric": {{"event": "purchase"}}}}'
  curl -s -X POST {stack.url}/experiments/hello/launch -H 'Authorization: Bearer {creds.admin_key}'
  curl -s -X POST {stack.url}/assign -d '{{"token": "{creds.token}", "distinct_id": "user-1"}}'
  curl -s -X POST {stack.url}/events -d '{{"token": "{creds.token}",
    "events": [{{"event": "purchase", "distinct_id": "user-1"}}]}}'
  curl -s {stack.url}/experiments/hello/results -H 'Authorization: Bearer {creds.admin_key}'
  # The flag definitions PostHog's server SDKs poll to evaluate flags locally (the flags key):
  curl -s {stack.url}/flags/definitions -H 'Authorization: Bearer {creds.flags_key}'
  # Tonight's nightly job, which analyses today (on macOS: date -u -v+1d +%F); it queues the
  # experiment's units, and the stack's NightlyWorkerFunction stores the snapshot a moment later:
  aws lambda invoke --endpoint-url {stack.url} --function-name ResultsFunction \\
    --payload fileb://<({TONIGHT}) /dev/stdout
  .venv/bin/python -m abacus results hello --project {creds.project_id}
  # Or compute them now (data up to now) and wait for the snapshot, its progress on stderr:
  .venv/bin/python -m abacus results hello --project {creds.project_id} --recompute"""


def serve(port: int | None, with_banner: bool) -> int:
    with LocalStack(port) as stack:
        print(banner(stack) if with_banner else f"ready {stack.url}", flush=True)
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
