"""A bounded load test against a running stack: concurrent clients, each in a loop, assign a user
(recording the exposure) and send that user's purchase, sometimes sending the same batch twice.
Users come from a shared pool, so that clients assign the same users at the same time.

What it returns lets a caller check that nothing was lost or counted twice: the distinct users
assigned, the distinct purchases sent, and each route's latencies and non-200 answers."""

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
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


def run(url: str, token: str, clients: int, seconds: float, users: int = 2000, seed: int = 1) -> LoadReport:
    report = LoadReport(clients, seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def one_client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        client = AbacusClient(url, token=token, timeout=60)

        def send(route: str, body: dict) -> tuple[int, dict]:
            try:
                return client.request("POST", route, body)
            except OSError as error:  # a connection refused or reset counts as an error too
                return 0, {"error": str(error)}

        while time.monotonic() < deadline:
            user = f"user-{rng.randrange(users)}"
            started = time.perf_counter()
            status, body = send("/assign", {"token": token, "distinct_id": user})
            record("assign", started, status, body, user=user)
            if status != 200:
                continue
            purchase = {
                "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
                "event": "purchase",
                "distinct_id": user,
                "timestamp": datetime.now(UTC).isoformat(),
            }
            batch = {"token": token, "events": [purchase]}
            for _ in range(2 if rng.random() < 0.2 else 1):  # a client resending, its answer lost
                started = time.perf_counter()
                status, body = send("/events", batch)
                record("events", started, status, body, purchase=purchase)

    def record(route: str, started: float, status: int, body: dict, user=None, purchase=None) -> None:
        elapsed = time.perf_counter() - started
        with lock:
            report.latencies[route].append(elapsed)
            if status != 200:
                report.errors[f"{route} {status}"] += 1
            elif user is not None:
                report.users.add(user)
                report.variants[user].add(body["assignments"][EXPERIMENT])
            elif purchase is not None:
                report.purchases[purchase["uuid"]] = purchase["distinct_id"]

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report
