"""Where `make demo`'s time goes: the demo's week, timed by phase (stack start, assigning, sending
events, each night's job), with each process's CPU time (the moto server, each function's
execution environments, this process) and, with --count, the DynamoDB requests by operation
(moto's request recorder; recording slows moto, so the timed run and the counted run differ).

Run: .venv/bin/python bench/demo_profile.py [--count] [users]
"""

import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from itertools import repeat
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from abacus_local import demo
from abacus_local.client import AbacusClient
from abacus_local.stack import LocalStack, free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
phases: dict[str, float] = defaultdict(float)


@contextmanager
def timed(phase: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[phase] += time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (and of its children it waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def processes_cpu(stack: LocalStack) -> dict[str, float]:
    found = {"this process (gateway, demo client)": cpu_seconds(os.getpid())}
    if stack._moto is not None:
        found["moto server"] = cpu_seconds(stack._moto.pid)
    for name, function in stack.functions.items():
        for number, environment in enumerate(function._all):
            found[f"{name} environment {number + 1}"] = cpu_seconds(environment.process.pid)
    return found


def run_week(stack: LocalStack, client: AbacusClient, users: int, first_day: datetime) -> None:
    per_day = users // demo.DAYS
    with ThreadPoolExecutor(max_workers=demo.CLIENTS) as pool:
        for day in range(demo.DAYS):
            day_start = first_day + timedelta(days=day)
            ids = [f"user-{index:05d}" for index in range(day * per_day, (day + 1) * per_day)]
            with timed("assign (HTTP, 8 clients)"):
                found = list(pool.map(demo.simulate_user, repeat(client), ids, repeat(day_start)))
            events = [event for user_events in found for event in user_events]
            with timed("send events (HTTP)"):
                for start in range(0, len(events), demo.EVENT_BATCH):
                    client.send_events(events[start : start + demo.EVENT_BATCH])
            with timed(f"nightly job, day {day + 1}"):
                demo.invoke_nightly(stack, day_start + timedelta(days=1, hours=3))
            with timed("results (HTTP)"):
                client.results(demo.KEY)


def count_requests(recording: Path) -> Counter[str]:
    operations: Counter[str] = Counter()
    for line in recording.read_text().splitlines():
        target = json.loads(line)["headers"].get("X-Amz-Target", "?")
        operations[target.rsplit(".", 1)[-1]] += 1
    return operations


def main(count: bool, users: int) -> None:
    recording = Path(tempfile.mkdtemp()) / "moto_recording"
    if count:  # the moto server inherits these
        os.environ.update({"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)})
    started = time.perf_counter()
    with LocalStack(port=free_port(), log_level="WARNING", metrics=False, cache_seconds=30) as stack:
        phases["stack start (moto, tables, project)"] = time.perf_counter() - started
        client = AbacusClient(stack.url, admin_key=stack.credentials.admin_key, token=stack.credentials.token)
        client.create_experiment(demo.EXPERIMENT)
        # As the demo does: launched as of the week's first day (exposures before a launch do not count).
        first_day = datetime.combine(datetime.now(UTC).date() - timedelta(days=demo.DAYS), time_of_day(0), tzinfo=UTC)
        client.launch(demo.KEY, started_at=first_day)
        run_week(stack, client, users, first_day)
        cpu = processes_cpu(stack)
    total = time.perf_counter() - started
    print(f"{users} users over {demo.DAYS} days: {total:.1f} s wall")
    for phase, seconds in phases.items():
        print(f"  {phase:40} {seconds:7.1f} s")
    print("CPU seconds by process:")
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        print(f"  {name:40} {seconds:7.1f}")
    if count:
        operations = count_requests(recording)
        print(f"DynamoDB requests: {sum(operations.values())}")
        for operation, number in operations.most_common():
            print(f"  {operation:20} {number:6}")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--count"]
    main("--count" in sys.argv, int(arguments[0]) if arguments else 2100)
