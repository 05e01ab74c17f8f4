"""One checkout's side of bench/cold_first_answer.py: it runs inside that checkout (its own
abacus_local, template.yaml, functions and layers: the parent starts it with cwd and PYTHONPATH
there), sets up a local stack's data once, then times one fresh Lambda execution environment
(abacus_local.lambdas.ExecutionEnvironment: `python -m abacus_local.runtime`, which imports the
handler) per command read on stdin: its init (spawn to ready), its first request and its second.

Setup: the local stack (moto server as AWS, the tables, queues and the project), an experiment
launched yesterday with a few exposed users and purchases, its results computed, a console
session signed in with the admin key; then the stack's queue pollers and schedules are stopped
and its warm environments ended, so that nothing else runs while an environment is timed.

Commands, one a line: `flags` (AssignFunction: POST /flags/ as posthog-js sends it, a new
visitor each time), `sign-in` (ResultsFunction: GET /console/sign-in), `experiment-page`
(ResultsFunction: GET /console/experiments/{key}, signed in); each answered with one JSON line
{"init_ms", "first_ms", "second_ms"} on the descriptor given as --answers (stdout holds the
functions' logs: the environments write theirs to this process's). Each answer is checked (a
200, the experiment's variant, the page asked for): a bench that times an error page measures
nothing.

Nothing here imports the bench package (the BEFORE checkout's bench/ is not this one), and the
checkout's own modules are imported only in main(), once the parent has set the path.
"""

import argparse
import base64
import itertools
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

KEY = "cold-checkout"
EXPERIMENT: dict[str, Any] = {
    "key": KEY,
    "name": "Cold checkout",
    "variants": [{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50}],
    "primary_metric": {"event": "purchase"},
}
USERS = 40
POSTHOG_JS_VERSION = "1.449.2"  # tests/sdk-js/package-lock.json's
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SHOP = "https://shop.example"


def posthog_js_flags_body(token: str, distinct_id: str) -> tuple[str, bytes]:
    """(query, body) of posthog-js's flags request: POST /flags/?v=2&compression=base64 with its
    JSON base64-encoded in a form field, as it sends it when the API offers no gzip."""
    document = {
        "token": token,
        "distinct_id": distinct_id,
        "groups": {},
        "person_properties": {"$lib": "web", "$lib_version": POSTHOG_JS_VERSION},
        "group_properties": {},
        "timezone": "Europe/Berlin",
    }
    data = base64.b64encode(json.dumps(document).encode()).decode()
    return "v=2&compression=base64", urlencode({"data": data}).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def sign_in(url: str, admin_key: str) -> str:
    """The console's session cookie ("name=value"), signed in with the admin key as a browser does."""
    request = urllib.request.Request(  # noqa: S310 - the local stack's own http URL
        f"{url}/console/sign-in",
        data=urlencode({"admin_key": admin_key}).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        urllib.request.build_opener(_NoRedirect).open(request, timeout=60)
    except urllib.error.HTTPError as answer:
        if answer.code == 303 and answer.headers.get("set-cookie"):
            return answer.headers["set-cookie"].split(";", 1)[0]
        raise RuntimeError(f"signing in answered {answer.code}: {answer.read()[:300]!r}") from None
    raise RuntimeError("signing in answered without a session cookie")


class Bench:
    def __init__(self) -> None:
        from abacus_local.stack import LocalStack, free_port
        from abacus_local.template import Template

        self.port = free_port()
        deployed_cache = int(Template().parameters["CacheSeconds"]["Default"])
        # As deployed: the template's cache (the local stack's default is none), metrics on.
        self.stack = LocalStack(port=self.port, log_level="WARNING", cache_seconds=deployed_cache)
        self.visitors = itertools.count()
        self.cookie = ""

    def set_up(self) -> None:
        from abacus_local.client import AbacusClient
        from abacus_local.lambdas import close_all

        stack = self.stack
        stack.start()
        creds = stack.credentials
        client = AbacusClient(stack.url, admin_key=creds.admin_key, token=creds.token)
        client.create_experiment(EXPERIMENT)
        yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        client.launch(KEY, started_at=yesterday)
        events = []
        for n in range(USERS):
            user = f"cold-user-{n}"
            variant = client.assign(user, [KEY], expose=False)[KEY]
            seen = (yesterday + timedelta(hours=1, minutes=n)).isoformat()
            exposure = {"experiment": KEY, "variant": variant}
            events.append({"event": "$exposure", "distinct_id": user, "timestamp": seen, "properties": exposure})
            if n % 3 == 0:
                events.append({"event": "purchase", "distinct_id": user, "timestamp": seen})
        client.send_events(events)
        client.call("POST", f"/experiments/{KEY}/results", admin=True)  # the run goes through the queue
        stack.wait_for_queues()
        results = client.results(KEY)
        if results.get("status") != "ready":
            raise RuntimeError(f"the experiment's results were not computed: {results}")
        self.cookie = sign_in(stack.url, creds.admin_key)
        # Nothing else runs from here on: no queue polled, no schedule fired, no warm environment.
        for poller in stack.pollers:
            poller.stop()
        for schedule in stack.schedules:
            schedule.stop()
        close_all(list(stack.functions.values()))

    def event(self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> dict:
        """The API Gateway HTTP API (payload 2.0) event the local gateway makes of this request."""
        from abacus_local.gateway import http_api_event

        for route in self.stack.template.routes():
            match = route.pattern.match(raw_path)
            if match and route.method == method:
                full = {"host": f"127.0.0.1:{self.port}", **headers}
                if body:
                    full["content-length"] = str(len(body))
                return http_api_event(route, method, raw_path, query, full, body, match)
        raise LookupError(f"no route for {method} {raw_path}")

    def flags_event(self, distinct_id: str) -> dict:
        query, body = posthog_js_flags_body(self.stack.credentials.token, distinct_id)
        headers = {
            "user-agent": CHROME,
            "content-type": "application/x-www-form-urlencoded",
            "accept": "*/*",
            "origin": SHOP,
            "referer": f"{SHOP}/",
            "sec-fetch-site": "cross-site",
            "sec-fetch-mode": "cors",
            "sec-fetch-dest": "empty",
        }
        return self.event("POST", "/flags/", query, headers, body)

    def page_event(self, raw_path: str, signed_in: bool) -> dict:
        headers = {
            "user-agent": CHROME,
            "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "sec-fetch-site": "same-origin" if signed_in else "none",
            "sec-fetch-mode": "navigate",
            "sec-fetch-dest": "document",
        }
        if signed_in:
            headers["cookie"] = self.cookie
        return self.event("GET", raw_path, "", headers, b"")

    def requests(self, command: str) -> tuple[str, list[dict], Callable[[Any], None]]:
        """The function, its two requests' events and the check of each answer, for a command."""
        if command == "flags":
            visitor = f"cold-visitor-{next(self.visitors)}"
            variants = {variant["key"] for variant in EXPERIMENT["variants"]}

            def flags_check(answer: Any) -> None:
                body = json.loads(answer.get("body") or "{}")
                variant = body.get("flags", {}).get(KEY, {}).get("variant")
                if answer.get("statusCode") != 200 or variant not in variants:
                    raise RuntimeError(f"/flags/ did not answer the experiment's variant: {str(answer)[:500]}")

            return "AssignFunction", [self.flags_event(visitor), self.flags_event(visitor)], flags_check
        if command == "sign-in":
            pages = [self.page_event("/console/sign-in", signed_in=False) for _ in range(2)]
            return "ResultsFunction", pages, page_check('name="admin_key"')
        if command == "experiment-page":
            path = f"/console/experiments/{KEY}"
            pages = [self.page_event(path, signed_in=True) for _ in range(2)]
            return "ResultsFunction", pages, page_check(EXPERIMENT["name"])
        raise ValueError(f"unknown command {command!r}")

    def handlers(self) -> dict[str, dict[str, Any]]:
        """Each function's handler file and its sys.path in Lambda (its code, then its layers'
        source folders), for the parent's cold import probe."""
        return {
            name: {
                "handler": str(spec.code_dir / f"{spec.module.replace('.', '/')}.py"),
                "path": [str(spec.code_dir), *map(str, spec.layers)],
            }
            for name, spec in self.stack.template.functions().items()
        }

    def cold_environment(self, command: str) -> dict[str, float]:
        from abacus_local.lambdas import ExecutionEnvironment

        name, events, check = self.requests(command)
        function = self.stack.functions[name]
        started = time.perf_counter()
        environment = ExecutionEnvironment(
            function.spec, function.region, function.environment, function.policy, function.timeout_slack
        )
        ready = time.perf_counter()
        try:
            times = []
            for event in events:
                sent = time.perf_counter()
                answer = environment.invoke(event)
                times.append((time.perf_counter() - sent) * 1000)
                check(answer)
        finally:
            environment.close()
        return {"init_ms": (ready - started) * 1000, "first_ms": times[0], "second_ms": times[1]}


def page_check(expected: str) -> Callable[[Any], None]:
    def check(answer: Any) -> None:
        if answer.get("statusCode") != 200 or expected not in (answer.get("body") or ""):
            raise RuntimeError(f"the console page did not answer (200 with {expected!r}): {str(answer)[:500]}")

    return check


COMMANDS = ("flags", "sign-in", "experiment-page")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/first_answer_worker.py")
    parser.add_argument("--answers", type=int, required=True, help="file descriptor the answers go to")
    args = parser.parse_args()
    answers = os.fdopen(args.answers, "w", buffering=1)
    bench = Bench()
    try:
        bench.set_up()
        for command in COMMANDS:  # once, untimed: bytecode written, files cached, answers checked
            bench.cold_environment(command)
        answers.write(json.dumps({"ready": True, "functions": bench.handlers()}) + "\n")
        for line in sys.stdin:
            command = line.strip()
            try:
                answers.write(json.dumps(bench.cold_environment(command)) + "\n")
            except Exception as error:  # noqa: BLE001 - reported to the parent, which stops
                answers.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
    finally:
        bench.stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
