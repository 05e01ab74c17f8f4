"""A user's values of each metric component (components()), from their events and first exposure:
what counts (an event's name and filters, a funnel's steps in order, a capped or summed property),
within which window (the attribution window from the exposure, the pre-exposure window, the
cut-off), and whether values stored by an earlier night still hold or are final (retention.py).

Pure: no storage. The events and the stored values are whatever fits Event and Stored
(abacus.storage's EventItem and AssignmentItem do); abacus.nightly.page reads and writes them."""

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from abacus.core import numbers, retention
from abacus.experiments import targeting
from abacus.experiments.metrics_spec import FunnelStep, MetricSpec, components
from abacus.experiments.spec import ExperimentFields

# Metric kinds whose per-user value is 0 or 1: they are analysed as conversion rates.
CONVERTED = ("conversion", "funnel")


class Event(Protocol):
    """One of a user's events, as the nightly job reads it (abacus.storage.events.EventItem)."""

    @property
    def event(self) -> str: ...

    @property
    def timestamp(self) -> datetime: ...

    def event_properties(self) -> dict[str, Any]: ...


class Stored(Protocol):
    """A user's exposure and the values an earlier night stored with it, and what they were
    computed from (abacus.storage.assignments.AssignmentItem)."""

    @property
    def distinct_id(self) -> str: ...

    @property
    def exposed_at(self) -> datetime | None: ...

    @property
    def metric_values(self) -> Any: ...  # list[float] | None, as stored (JSON)

    @property
    def pre_values(self) -> Any: ...  # list[float] | None, as stored (JSON)

    @property
    def values_exposed_at(self) -> datetime | None: ...

    @property
    def values_cutoff(self) -> datetime | None: ...

    @property
    def values_metrics(self) -> str | None: ...

    @property
    def values_pending(self) -> bool | None: ...


def _matches(wanted: MetricSpec | FunnelStep, event: Event) -> bool:
    """Whether the event is the one a metric or a funnel's step names, and meets its filters."""
    return event.event == wanted.event and (
        not wanted.filters or targeting.all_hold(wanted.filters, event.event_properties())
    )


def _counts(metric: MetricSpec, event: Event) -> bool:
    """Whether the metric counts this event (a funnel: any of its steps)."""
    if metric.steps is not None:
        return any(_matches(step, event) for step in metric.steps)
    return _matches(metric, event)


def _user_value(metric: MetricSpec, events: Sequence[Event], start: datetime, end: datetime) -> float:
    """One user's value of a metric from their events: did it (1/0), did every step in order
    (1/0), how many times, or the sum."""
    matching = [e for e in events if start <= e.timestamp < end and _counts(metric, e)]
    if metric.kind == "conversion":
        return 1.0 if matching else 0.0
    if metric.steps is not None:
        return 1.0 if _did_in_order(metric.steps, matching) else 0.0
    if metric.kind == "count":
        return float(len(matching))
    total = 0.0
    for event in matching:
        value = event.event_properties().get(metric.property or "")
        if numbers.summable(value):  # a number, within the bound (numbers.py says why)
            total += value
    return total


def _did_in_order(steps: list[FunnelStep], events: Sequence[Event]) -> bool:
    """Whether the events hold the steps in order, each step a different event at the same time as
    the one before or later. Matching each step to the earliest event that can take it leaves the
    most events for the steps after it, so it finds the steps whenever they are there; the events of
    one instant are matched to the next steps together (_steps_at_one_instant), so that the order
    they were stored in does not matter."""
    reached = 0
    by_time: dict[datetime, list[Event]] = {}
    for event in events:
        by_time.setdefault(event.timestamp, []).append(event)
    for moment in sorted(by_time):
        reached += _steps_at_one_instant(steps[reached:], by_time[moment])
        if reached == len(steps):
            return True
    return False


def _steps_at_one_instant(steps: list[FunnelStep], events: Sequence[Event]) -> int:
    """How many of `steps`, from the first on, events of one instant can take, one step an event.
    A maximum matching (augmenting paths): a step may take an event an earlier step holds if that
    step can move to another, so a home page view and a checkout view at the same instant take
    `view` then `view where page = checkout` whichever of them was stored first."""
    fits = [[index for index, event in enumerate(events) if _matches(step, event)] for step in steps]
    holder: dict[int, int] = {}  # event index -> the step that takes it

    def take(step: int, tried: set[int]) -> bool:
        for index in fits[step]:
            if index not in tried:
                tried.add(index)
                if index not in holder or take(holder[index], tried):
                    holder[index] = step
                    return True
        return False

    for step in range(len(steps)):
        if not take(step, set()):
            return step
    return len(steps)


def metrics_key(metrics: list[MetricSpec], pre_days: int = 0) -> str:
    """A fingerprint of the metrics' definitions and the pre-exposure window (0: none): stored
    values are reused only for the same ones."""
    canonical = json.dumps([_definition(m) for m in components(metrics)])
    if pre_days:
        canonical += f"#pre{pre_days}"
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _definition(metric: MetricSpec) -> dict[str, Any]:
    """What a metric's values depend on. Fields added since values were first stored count only
    when set, so that the values stored for a metric without them stay current."""
    definition = metric.model_dump(mode="json", include={"event", "kind", "property", "window_days"})
    if metric.filters:
        definition["filters"] = [f.model_dump(mode="json") for f in metric.filters]
    if metric.steps is not None:
        definition["steps"] = [step.model_dump(mode="json") for step in metric.steps]
    return definition


def pre_exposure_days(spec: ExperimentFields) -> int:
    """Days of the pre-exposure window the nightly job measures; 0 when CUPED is off."""
    return spec.pre_exposure_days if spec.cuped else 0


def event_names(metrics: list[MetricSpec]) -> list[str]:
    """The events the metrics count, sorted: those a user's Query reads."""
    return sorted({name for metric in metrics for name in metric.event_names()})


def values_are_current(user: Stored, metrics: list[MetricSpec], cutoff: datetime, key: str, active: set[str]) -> bool:
    """Stored values hold for `cutoff` when nothing they depend on changed since they were computed:
    the same first exposure and metrics, a cut-off no later than `cutoff`, and either a user who
    converted in every metric (more events cannot undo a conversion, and a later cut-off only
    widens the window) or one with no events received since, computed for the same cut-off or an
    earlier one past which the user had no events yet."""
    if user.metric_values is None or user.values_metrics != key or user.values_exposed_at != user.exposed_at:
        return False
    if not all(numbers.summable(value) for value in [*user.metric_values, *(user.pre_values or [])]):
        return False  # cached before values beyond the bound were ignored: computed again without them
    computed_for = user.values_cutoff
    if computed_for is None or computed_for > cutoff:
        return False
    if _converted_in_every_metric(metrics, user.metric_values):
        return True
    if user.distinct_id in active:
        return False
    return computed_for == cutoff or not user.values_pending


def _converted_in_every_metric(metrics: list[MetricSpec], values: list[float]) -> bool:
    return all(metric.kind in CONVERTED and value == 1.0 for metric, value in zip(metrics, values, strict=True))


class UserValues(NamedTuple):
    """A user's value of each metric, and of each over the pre-exposure window (empty without one)."""

    values: list[float]
    pre_values: list[float]


class Run(NamedTuple):
    """What one computation of an experiment's statistics shares across its users."""

    project_id: str
    metrics: list[MetricSpec]
    cutoff: datetime
    key: str  # metrics_key: what stored values must have been computed for
    active: set[str]  # users who sent the metrics' events since the last run
    pre_days: int
    since: datetime | None  # when the last run started: stored values are current as of it
    now: datetime


class Final(NamedTuple):
    """The stored values no event can change any more (retention.py): per metric, or None."""

    values: list[float | None]
    pre_values: list[float] | None

    def complete(self, pre_days: int) -> UserValues | None:
        values = [value for value in self.values if value is not None]
        if len(values) < len(self.values) or (pre_days and self.pre_values is None):
            return None
        return UserValues(values, self.pre_values or [])


def final_values(run: Run, user: Stored, exposed_at: datetime) -> Final:
    """Stored values whose windows (and pre-exposure window) had settled before the last run: that
    run found them current, and no event received since can fall in their windows."""
    stored = user.metric_values
    if stored is None or user.values_metrics != run.key or user.values_exposed_at != exposed_at:
        return Final([None] * len(run.metrics), None)
    if not all(numbers.summable(value) for value in [*stored, *(user.pre_values or [])]):
        return Final([None] * len(run.metrics), None)  # cached before values were bounded
    whole = user.values_cutoff
    values: list[float | None] = []
    for metric, value in zip(run.metrics, stored, strict=True):
        end = exposed_at + timedelta(days=metric.window_days)
        covered = user.values_pending is False or (whole is not None and whole >= end)
        values.append(value if covered and end <= run.cutoff and retention.settled(end, run.since) else None)
    pre = user.pre_values if user.pre_values and retention.settled(exposed_at, run.since) else None
    return Final(values, pre)


def events_start(run: Run, exposed_at: datetime, final: Final) -> datetime:
    """From when the user's events are read: the start of the oldest window still open (the
    pre-exposure window's unless its values are final, else the exposure)."""
    if run.pre_days and final.pre_values is None:
        return exposed_at - timedelta(days=run.pre_days)
    return exposed_at


def computed_values(run: Run, exposed_at: datetime, events: Sequence[Event], final: Final) -> tuple[UserValues, bool]:
    """The user's values from their events (`final` ones kept), and whether some event the metrics
    count lies past the cut-off within its window (pending: a later cut-off may count it)."""
    values: list[float] = []
    pending = False
    for metric, kept in zip(run.metrics, final.values, strict=True):
        window_end = exposed_at + timedelta(days=metric.window_days)
        values.append(
            kept if kept is not None else _user_value(metric, events, exposed_at, min(window_end, run.cutoff))
        )
        pending = pending or any(run.cutoff <= e.timestamp < window_end and _counts(metric, e) for e in events)
    pre_values = final.pre_values
    if pre_values is None:
        pre_start = exposed_at - timedelta(days=run.pre_days)
        pre_values = (
            [_user_value(metric, events, pre_start, exposed_at) for metric in run.metrics] if run.pre_days else []
        )
    return UserValues(values, pre_values), pending


def stored_values_still_hold(user: Stored, computed: UserValues, key: str, pending: bool) -> bool:
    """A user recomputed because they sent events (a second purchase for a conversion metric) often
    has the values stored already. With no events past the new cut-off, the stored values, kept
    with their earlier cut-off, stay current for every later one (`values_are_current`): writing
    them again would change nothing that is counted, and costs a write."""
    return (
        not pending
        and user.values_pending is False
        and user.metric_values == computed.values
        and (user.pre_values or []) == computed.pre_values
        and user.values_metrics == key
        and user.values_exposed_at == user.exposed_at
    )
