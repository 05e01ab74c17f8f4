"""`make demo`: start the local stack and run a two-variant experiment through it for a simulated
week over real HTTP: each day new users are assigned (POST /assign), see the page (their exposure
arrives as an `$exposure` event stamped that day, with their browser, as an SDK reports it) and
some go through the checkout funnel to a purchase; the nightly job runs after each day as
EventBridge invokes it at 03:00 UTC. Half the users arrive signed in; the other half are exposed
while anonymous and sign up before the checkout (posthog-js's identify: an `$identify` joining the
anonymous id to the new account's), so half of the buyers were anonymous when they were exposed,
and their purchases count for that exposure: Abacus counts people, not ids. The primary metric is
the funnel, beside it revenue per order (a ratio, each user's revenue capped) and checkout errors
as a guardrail, broken down by browser.
Beside it runs a bandit (issue 34): four headlines, one of which gets clearly more sign-ups; each
night's run reweights it, and its traffic moves to the best headline day by day.
Then the results, and the report page whose charts show the week."""

import json
import math
import os
import random
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from typing import Any, cast

from abacus.core.documents import ReadyResults
from abacus.results.report import text_report
from abacus_local.client import REQUEST_TIMEOUT_S, AbacusClient, lambda_client
from abacus_local.stack import LocalStack
from abacus_local.template import ROOT
from abacus_local.webhook_receiver import WebhookReceiver

KEY = "new-checkout"
EXPERIMENT: dict[str, Any] = {
    "key": KEY,
    "name": "One-page checkout",
    "hypothesis": "Fewer steps between the cart and the payment, more purchases, no more errors",
    "variants": [{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50}],
    # The funnel from the cart to the purchase: the test is on its last step.
    "primary_metric": {
        "kind": "funnel",
        "steps": [{"event": "view_cart"}, {"event": "start_checkout"}, {"event": "purchase"}],
        "window_days": 7,
    },
    "secondary_metrics": [
        {  # Revenue per order, each user's revenue capped at 1,000: a bulk order cannot swing it.
            "kind": "ratio",
            "numerator": {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"value": 1000}},
            "denominator": {"event": "purchase", "kind": "count"},
        }
    ],
    # Checkout errors must not rise by more than 10%.
    "guardrail_metrics": [{"event": "checkout_error", "kind": "count", "margin": 0.1, "bad_direction": "increase"}],
    "breakdowns": ["$browser"],
    "minimum_detectable_effect": 0.2,
}
# A bandit of four headlines: each user is shown one (POST /assign, then the $exposure event) and
# signs up at its rate; every night's run moves traffic toward the headline that converts best.
BANDIT_KEY = "headline"
SIGN_UP_RATES = {"control": 0.06, "bold": 0.06, "question": 0.15, "numbers": 0.07}
BANDIT: dict[str, Any] = {
    "key": BANDIT_KEY,
    "name": "Headline (bandit)",
    "hypothesis": "Send more visitors to the headline that gets more sign-ups, while finding it",
    "variants": [{"key": key, "weight": 25} for key in SIGN_UP_RATES],
    "primary_metric": {"event": "sign_up", "window_days": 1},
    "cuped": False,
    # Reweighted after every nightly run (its own schedule: once a day here), at most 25 points a time.
    "allocation": {"kind": "bandit", "burn_in": 20, "floor": 0.02, "max_step": 0.25, "reweight_every_hours": 24},
}
# The simulated truth: the share of users who go on from each step to the next (view the cart,
# start the checkout, pay). The one-page checkout loses fewer users at its checkout: about 30% of
# its users buy, against 20%; errors and order values are alike.
STEP_RATES = {"control": (0.6, 0.6, 0.555), "one-page": (0.6, 0.8, 0.625)}
ERROR_RATE = 0.1
SIGNING_UP = 0.5  # the share of users exposed anonymously, who sign up before the checkout
BROWSERS = ("Chrome", "Safari", "Firefox", "Edge")
DAYS = 7
SEED = 20261125
CLIENTS = 8  # the app's concurrent requests
BANDIT_LEAD_SECONDS = 1
EVENT_BATCH = 200  # events a request, as an SDK flushes them


def _event(
    name: str, distinct_id: str, at: datetime, properties: dict[str, Any] | None = None, of: str = ""
) -> dict[str, Any]:
    """An event as an SDK sends it; its uuid names the user, the event and (`of`) what it is of: a
    user's exposure to the bandit is another event than their exposure to the experiment."""
    return {
        "event": name,
        "distinct_id": distinct_id,
        "uuid": f"{distinct_id}-{name}{of}",
        "timestamp": at.isoformat(),
        "properties": properties or {},
    }


def simulate_user(client: AbacusClient, distinct_id: str, day_start: datetime) -> list[dict[str, Any]]:
    """Assigns one user (the app fetches the variant) and returns the events they go on to send:
    their exposure when they see the page that day (with their browser), anonymously for half of
    them, who then sign up (an $identify); the funnel's steps as far as they get, sometimes an
    error, and a purchase's amount (now and then a bulk order)."""
    # One generator per user: the outcome does not depend on the threads' order.
    rng = random.Random(f"{SEED}-{distinct_id}")
    signs_up = random.Random(f"{SEED}-sign-up-{distinct_id}").random() < SIGNING_UP
    seen_as = f"anonymous-{distinct_id}" if signs_up else distinct_id
    variant = client.assign(seen_as, [KEY], expose=False)[KEY]
    assert variant is not None, "a running experiment without targeting assigns everyone"
    at = day_start + timedelta(hours=rng.uniform(0, 20))
    exposure = {"experiment": KEY, "variant": variant, "$browser": rng.choice(BROWSERS)}
    events = [_event("$exposure", seen_as, at, exposure)]
    if signs_up:  # the new account's id from here on, joined to the anonymous one
        events.append(_event("$identify", distinct_id, at + timedelta(seconds=30), {"$anon_distinct_id": seen_as}))
    if rng.random() < ERROR_RATE:
        events.append(_event("checkout_error", distinct_id, at + timedelta(minutes=rng.uniform(1, 60))))
    for step, rate in zip(("view_cart", "start_checkout", "purchase"), STEP_RATES[variant], strict=True):
        if rng.random() >= rate:
            break
        at += timedelta(minutes=rng.uniform(1, 60))
        amount = round(rng.lognormvariate(4, 0.5), 2) if rng.random() > 0.01 else 25_000.0
        events.append(_event(step, distinct_id, at, {"amount": amount} if step == "purchase" else None))
    return events + _headline_events(client, seen_as, day_start, rng)


def _headline_events(
    client: AbacusClient, seen_as: str, day_start: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    """The bandit's: the headline the user is shown today (its current shares), their exposure,
    and a sign-up at that headline's rate."""
    headline = client.assign(seen_as, [BANDIT_KEY], expose=False)[BANDIT_KEY]
    assert headline is not None, "a running bandit without targeting assigns everyone"
    at = day_start + timedelta(hours=rng.uniform(0, 20))
    events = [_event("$exposure", seen_as, at, {"experiment": BANDIT_KEY, "variant": headline}, of=f"-{BANDIT_KEY}")]
    if rng.random() < SIGN_UP_RATES[headline]:
        events.append(_event("sign_up", seen_as, at + timedelta(minutes=rng.uniform(1, 30))))
    return events


def nightly_event(fire_time: datetime) -> dict[str, Any]:
    """events/nightly.json as EventBridge sends it, with the time it fires."""
    event: dict[str, Any] = json.loads((ROOT / "events" / "nightly.json").read_text())
    event["time"] = fire_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["id"] = f"local-{fire_time:%Y%m%d}"
    return event


def invoke_nightly(stack: LocalStack, fire_time: datetime) -> dict[str, Any]:
    """Invokes ResultsFunction through the local Lambda Invoke API, as the schedule would, and waits
    while NightlyWorkerFunction works the units it queued (through the queue's event source mapping)."""
    answer = lambda_client(stack.url).invoke(
        FunctionName="ResultsFunction", Payload=json.dumps(nightly_event(fire_time))
    )
    payload: dict[str, Any] = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise RuntimeError(f"the nightly job failed: {payload}")
    stack.wait_for_queues()
    return payload


def run_day(
    client: AbacusClient, pool: ThreadPoolExecutor, day_start: datetime, users: range, buyers: list[bool]
) -> int:
    """One day's users assigned and their events sent; the number of events stored. `buyers` gets,
    for each buyer, whether they were anonymous when exposed."""
    ids = [f"user-{index:05d}" for index in users]
    events = [event for found in pool.map(lambda i: simulate_user(client, i, day_start), ids) for event in found]
    signed_up = {event["distinct_id"] for event in events if event["event"] == "$identify"}
    buyers += [event["distinct_id"] in signed_up for event in events if event["event"] == "purchase"]
    accepted = 0
    for start in range(0, len(events), EVENT_BATCH):
        answer = client.send_events(events[start : start + EVENT_BATCH])
        assert not answer["rejected"], answer["rejected"]
        accepted += answer["accepted"]
    return accepted


def day_line(day: int, results: dict[str, Any]) -> str:
    rows = {row["key"]: row for row in results["variants"]}
    rates = "   ".join(
        f"{key} {row['conversions']}/{row['exposures']} = {row['mean']:.1%}" for key, row in rows.items()
    )
    # The lift with tonight's interval (the design's own bar), beside the decision it gives: not
    # P(best), which reads as a decision when the sequential test has not reached one.
    lift = rows["one-page"].get("lift") or {}
    low, high = lift.get("relative_ci") or (None, None)
    interval = f" [{low:+.0%}, {high:+.0%}]" if low is not None and high is not None else ""
    shown = f"one-page {lift['relative']:+.0%}{interval}" if lift.get("relative") is not None else "one-page n/a"
    # Each person counted once, with the purchases made after signing up: exposures are people.
    return f"day {day + 1} ({results['date']}): {rates}   {shown}   -> {results['verdict']['decision']}"


def bandit_line(client: AbacusClient) -> str:
    """The bandit after a night: each headline's probability to be best and its share of new users."""
    shares = client.call("GET", f"/experiments/{BANDIT_KEY}", admin=True)["bandit"]
    report = client.results(BANDIT_KEY).get("bandit") or {}
    best = {row["key"]: row["probability_best"] for row in report.get("variants", [])}
    shown = "  ".join(
        f"{key} {share:.0%}" + (f" (P(best) {best[key]:.0%})" if key in best else "")
        for key, share in shares["weights"].items()
    )
    return f"bandit '{BANDIT_KEY}', phase {shares['phase']}, share of new users: {shown}"


def simulate_week(stack: LocalStack, client: AbacusClient, users: int, first_day: datetime) -> None:
    per_day = users // DAYS
    buyers: list[bool] = []
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for day in range(DAYS):
            started = time.perf_counter()
            day_start = first_day + timedelta(days=day)
            accepted = run_day(client, pool, day_start, range(day * per_day, (day + 1) * per_day), buyers)
            summary = invoke_nightly(stack, day_start + timedelta(days=1, hours=3))
            assert summary["failed"] == 0 and summary["planned"] == 2, summary
            line = day_line(day, client.results(KEY))
            print(f"{line}   ({per_day} users, {accepted} events, {time.perf_counter() - started:.1f} s)", flush=True)
            print(f"        {bandit_line(client)}", flush=True)
            time.sleep(BANDIT_LEAD_SECONDS)  # the new phase begins: tomorrow's users get its shares
    print(
        f"{len(buyers)} buyers, {sum(buyers)} of them anonymous when exposed (signed up before paying): "
        "each counted once, as one person, their purchase with their exposure"
    )


def print_alerts(receiver: WebhookReceiver, secret: str) -> None:
    """The alerts the webhook received, signature checked: what a team's Slack channel would show."""
    alerts = receiver.alerts(secret)
    print(f"\nThe alerts sent (to the AlertsBus and, signed, to the webhook {receiver.url}): {len(alerts)}")
    for alert in alerts:
        print(f"--- {alert['kind']} {alert['decision']} (X-Abacus-Signature checked)")
        print(alert["text"])
    unsigned = len(receiver.posts) - len(alerts)
    if unsigned:
        print(f"({unsigned} deliveries whose signature did not check)")


def save_report(client: AbacusClient) -> None:
    link = client.call("POST", f"/experiments/{KEY}/report/link", admin=True)
    page = ROOT / ".abacus" / "demo-report.html"
    page.parent.mkdir(exist_ok=True)
    with urllib.request.urlopen(link["url"], timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310 - our own local URL
        page.write_bytes(response.read())
    print(f"\nThe report page: {page}\n(while a stack runs, its signed link works for 15 minutes: {link['url']})")


def run_demo(users: int) -> int:
    print("Starting the local stack (moto as DynamoDB, the API from template.yaml) ...", flush=True)
    # No cache, and a bandit's new phase beginning a second after it is set (deployed: the cache's
    # 30 s and a minute more, for SDKs' polls): the simulated days follow each other in seconds.
    os.environ["ABACUS_BANDIT_LEAD_SECONDS"] = str(BANDIT_LEAD_SECONDS)
    # The minute's schedule would start the bandit's own recompute in the middle of the simulated
    # week, counting "today" (days ahead of the simulated ones): here each night's run reweights it.
    os.environ.setdefault("ABACUS_LOCAL_RATE_SECONDS", "3600")
    with LocalStack(log_level="WARNING", metrics=False, cache_seconds=0) as stack, WebhookReceiver() as receiver:
        creds = stack.credentials
        print(f"API on {stack.url}   token {creds.token}   admin key {creds.admin_key}")
        client = AbacusClient(stack.url, admin_key=creds.admin_key, token=creds.token)
        client.create_experiment(EXPERIMENT)
        # Launched as of the simulated week's first day: exposures before a launch do not count.
        first_day = datetime.combine(datetime.now(UTC).date() - timedelta(days=DAYS), time_of_day(0), tzinfo=UTC)
        client.launch(KEY, started_at=first_day)
        client.create_experiment(BANDIT)
        client.launch(BANDIT_KEY, started_at=first_day)
        webhook = client.call("POST", "/webhooks", {"url": receiver.url}, admin=True)
        print(f"Alerts go to a webhook on this machine, {receiver.url} (any https URL, a Slack one, deployed)")
        rates = {variant: f"{math.prod(steps):.0%}" for variant, steps in STEP_RATES.items()}
        print(f"Experiment '{KEY}' created and launched on {first_day:%Y-%m-%d}; true purchase rates {rates}")
        sign_ups = {headline: f"{rate:.0%}" for headline, rate in SIGN_UP_RATES.items()}
        print(f"Bandit '{BANDIT_KEY}' launched with it, four headlines at equal shares; true sign-up rates {sign_ups}")
        print(
            f"A week of traffic, {users // DAYS} new users a day ({SIGNING_UP:.0%} of them exposed anonymously, "
            "then signing up before the checkout), the nightly job after each day:",
            flush=True,
        )
        simulate_week(stack, client, users, first_day)
        print_alerts(receiver, webhook["secret"])
        print()
        print(text_report.text(cast(ReadyResults, client.results(KEY)), KEY))
        save_report(client)
    print("\nThe local stack has stopped.")
    return 0


def main() -> int:
    started = time.perf_counter()
    status = run_demo(users=int(os.environ.get("ABACUS_DEMO_USERS", "1400")))
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return status
