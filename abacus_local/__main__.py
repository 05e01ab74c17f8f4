"""python -m abacus_local demo | dev | serve [--port N]"""

import argparse
import signal
import sys
import threading

from abacus_local.stack import LocalStack


def serve(port: int | None, banner: bool) -> int:
    with LocalStack(port) as stack:
        creds = stack.credentials
        if banner:
            print(
                f"""Abacus local stack on {stack.url}  (Ctrl-C stops it)
  project token  {creds.token}
  admin key      {creds.admin_key}
  DynamoDB       {stack.dynamodb_url} (moto)

  curl -s -X POST {stack.url}/experiments -H 'Authorization: Bearer {creds.admin_key}' \\
    -d '{{"key": "hello", "name": "Hello", "variants": [{{"key": "control", "weight": 50}}, \\
         {{"key": "test", "weight": 50}}], "primary_metric": {{"event": "purchase"}}}}'
  curl -s -X POST {stack.url}/experiments/hello/launch -H 'Authorization: Bearer {creds.admin_key}'
  curl -s -X POST {stack.url}/assign -d '{{"token": "{creds.token}", "distinct_id": "user-1"}}'
  curl -s -X POST {stack.url}/events -d '{{"token": "{creds.token}", \\
    "events": [{{"event": "purchase", "distinct_id": "user-1"}}]}}'
  curl -s {stack.url}/experiments/hello/results -H 'Authorization: Bearer {creds.admin_key}'
  aws lambda invoke --endpoint-url {stack.url} --function-name ResultsFunction \\
    --payload fileb://events/nightly.json /dev/stdout""",
                flush=True,
            )
        else:
            print(f"ready {stack.url}", flush=True)
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
    return serve(args.port, banner=args.command == "dev")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
