"""How late an event may arrive, and so when a user's value of a metric can no longer change and
how long raw events must be kept for the nightly job to count every one of them.

An event is accepted up to LATE_EVENT_DAYS after its timestamp (ingestion/ingest.py). So once a run
starts more than that after a window's end, no event can change the window any more: a value
stored by an earlier run, which every later event of the user would have made the nightly job
recompute, is final and is never recomputed, whatever events the user sends later (those the
raw events it was counted from may have expired by then). Until then a value may be recomputed
from the raw events, which must still all be there: events are kept EventRetentionDays after
their timestamp, which must cover every window a running experiment reads, plus the late days,
plus NIGHTS_OF_SLACK nightly runs (the one that first sees a window settled, and one more in case
it fails). Experiments are validated against it (experiments.py), the template's minimum lets
the default windows fit, and a computation that would read expired events refuses
(EventsExpired) rather than count fewer events.
"""

from datetime import datetime, timedelta

from abacus.core.settings import settings

LATE_EVENT_DAYS = 14
NIGHTS_OF_SLACK = 2
LATE = timedelta(days=LATE_EVENT_DAYS)
# A run's start less this is when it can be sure an event received before is visible to it: an
# ingest request stamps its receipt time before its write lands (nightly.RECEIPT_MARGIN's reason).
_IN_FLIGHT = timedelta(minutes=10)


class EventsExpired(Exception):
    """The raw events a computation needs are past the retention period."""


def days_needed(window_days: int) -> int:
    """The retention a window of `window_days` needs: the window, the late days and the slack."""
    return window_days + LATE_EVENT_DAYS + NIGHTS_OF_SLACK


def settled(window_end: datetime, since: datetime | None) -> bool:
    """Whether nothing received after the run at `since` can fall in a window ending at `window_end`."""
    return since is not None and since - _IN_FLIGHT >= window_end + LATE


def check_kept(start: datetime, now: datetime) -> None:
    """EventsExpired when events stamped from `start` may have expired by `now`."""
    horizon = now - timedelta(days=settings.event_retention_days)
    if start <= horizon:
        raise EventsExpired(
            f"events stamped before {horizon.date().isoformat()} have expired (EventRetentionDays "
            f"{settings.event_retention_days}): the values that need them cannot be recomputed"
        )
