"""The template's `rate(...)` Schedule events fired as EventBridge fires them: each function with
one is invoked with a Scheduled Event (events/nightly.json's shape) every period, or every
ABACUS_LOCAL_RATE_SECONDS seconds when that is set (tests set it small). Cron schedules (the
nightly job) stay manual, as `python -m abacus results --recompute` and the console run them."""

import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
ACCOUNT_ID = "123456789012"


def rate_seconds(expression: str) -> int | None:
    """A `rate(N unit)` expression's period in seconds; None for anything else (a cron)."""
    found = RATE.match(expression.strip())
    return int(found[1]) * SECONDS[found[2].rstrip("s")] if found else None


def scheduled_event(rule: str, region: str, now: datetime) -> dict[str, Any]:
    """The event EventBridge gives a function its rule invokes."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule}"],
        "detail": {},
    }


class RateSchedule:
    """Invokes `invoke(event)` every `period_s` seconds, the first a period after start, until
    stopped; an invocation that fails is reported and the next one comes all the same."""

    def __init__(
        self,
        function: str,
        period_s: float,
        region: str,
        invoke: Callable[[dict[str, Any]], Any],
        on_error: Callable[[Exception], None] = lambda error: None,
    ):
        self.function = function
        self.period_s = period_s
        self.region = region
        self.invoke = invoke
        self.on_error = on_error
        self.invocations = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{function}", daemon=True)

    def start(self) -> "RateSchedule":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.invoke(scheduled_event(f"{self.function}-schedule", self.region, datetime.now(UTC)))
            except Exception as error:  # noqa: BLE001 - as EventBridge: the next period invokes it again
                self.on_error(error)
            self.invocations += 1


def rate_schedules(
    schedules: Mapping[str, str],
    region: str,
    invokers: Mapping[str, Callable[[dict[str, Any]], Any]],
    period_override_s: float | None = None,
    on_error: Callable[[str], Callable[[Exception], None]] = lambda name: lambda error: None,
) -> list[RateSchedule]:
    """A RateSchedule per function whose schedule ({function: expression}) is a rate, every
    `period_override_s` seconds when given; not started."""
    found = []
    for function, expression in sorted(schedules.items()):
        period = rate_seconds(expression)
        if period is not None:
            every = period_override_s if period_override_s is not None else period
            found.append(RateSchedule(function, every, region, invokers[function], on_error(function)))
    return found
