"""A bounded load test against a running stack: concurrent clients, each in a loop, assign a user
(recording the exposure) and send that user's purchase, sometimes sending the same batch twice.
Users come from a shared pool, so that clients assign the same users at the same time.

What it returns lets a caller check that nothing was lost or counted twice: the distinct users
assigned, the distinct purchases sent, and each route's latencies and non-200 answers."""

import itertools
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from abacus_local.client import AbacusClient

EXPERIMENT = "load-test"


@dataclass
class LoadReport:
    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    purchases: dict[str, str] = field(default_factory=dict)  # uuid: distinct_id
    variants: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def percentile(self, route: str, share: float) -> float:
        ordered = sorted(self.latencies[route])
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    def summary(self) -> str:
        lines = [f"{self.clients} clients for {self.seconds:.0f} s"]
        for route, values in sorted(self.latencies.items()):
            lines.append(
                f"{route:8} {len(values):6} requests {len(values) / self.seconds:7.1f}/s  "
                f"p50 {self.percentile(route, 0.5):6.1f} ms  p99 {self.percentile(route, 0.99):7.1f} ms"
            )
        lines.append(f"errors: {dict(self.errors) or 0}")
        lines.append(f"distinct users assigned: {len(self.users)}, purchases sent: {len(self.purchases)}")
        return "\n".join(lines)


def prepare(client: AbacusClient) -> None:
    """The experiment under load: purchases counted (conversion) and how many (count)."""
    client.create_experiment(
        {
            "key": EXPERIMENT,
            "name": "Load test",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
            "secondary_metrics": [{"event": "purchase", "kind": "count"}],
        }
    )
    client.launch(EXPERIMENT)


class _Clients:
    """The clients' shared state: the report they fill in, under a lock."""

    def __init__(self, url: str, token: str, report: LoadReport, users: int, seed: int, rounds: int | None):
        self.url, self.token, self.report, self.users, self.seed = url, token, report, users, seed
        self.deadline = time.monotonic() + report.seconds
        self.rounds = rounds
        self.lock = threading.Lock()

    def loop(self, number: int) -> None:
        """One client: assign a user, send their purchase (a fifth of the time twice, as a client
        whose answer was lost resends), for its rounds or until the deadline."""
        rng = random.Random(self.seed * 1000 + number)
        client = AbacusClient(self.url, token=self.token, timeout=60)
        rounds = itertools.count() if self.rounds is None else range(self.rounds)
        for _ in rounds:
            if time.monotonic() >= self.deadline:
                break
            user = f"user-{rng.randrange(self.users)}"
            status, body = self.send(
                client, "/assign", {"token": self.token, "distinct_id": user, "experiments": [EXPERIMENT]}
            )
            if status == 200:
                with self.lock:
                    self.report.users.add(user)
                    self.report.variants[user].add(body["assignments"][EXPERIMENT])
            else:
                continue
            purchase = {
                "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
                "event": "purchase",
                "distinct_id": user,
                "timestamp": datetime.now(UTC).isoformat(),
            }
            for _ in range(2 if rng.random() < 0.2 else 1):
                status, _ = self.send(client, "/events", {"token": self.token, "events": [purchase]})
                if status == 200:
                    with self.lock:
                        self.report.purchases[purchase["uuid"]] = purchase["distinct_id"]

    def send(self, client: AbacusClient, route: str, body: dict) -> tuple[int, dict]:
        """(status, answer) of one request, its latency and any error status recorded."""
        started = time.perf_counter()
        try:
            status, answer = client.request("POST", route, body)
        except OSError as error:  # a connection refused or reset counts as an error too
            status, answer = 0, {"error": str(error)}
        with self.lock:
            self.report.latencies[route.strip("/")].append(time.perf_counter() - started)
            if status != 200:
                self.report.errors[f"{route.strip('/')} {status}"] += 1
        return status, answer


def run(
    url: str, token: str, clients: int, seconds: float, users: int = 2000, seed: int = 1, rounds: int | None = None
) -> LoadReport:
    """Runs `clients` concurrent clients, each for `rounds` rounds (a fixed amount of work, the
    same however fast the machine) or, without, for `seconds`. A client that dies (an answer of
    the wrong shape, a bug) fails the run with its exception, rather than leaving fewer running."""
    started = time.monotonic()
    report = LoadReport(clients, seconds)
    shared = _Clients(url, token, report, users, seed, rounds)
    with ThreadPoolExecutor(max_workers=clients) as pool:
        running = [pool.submit(shared.loop, number) for number in range(clients)]
    for client in running:
        client.result()
    report.seconds = time.monotonic() - started
    return report
