"""The nightly job's arithmetic: each exposed user's metric values up to the cut-off (stored ones
reused when current), their sums per variant (sufficient statistics, which add up over pages of
users), and the snapshot abacus.stats makes of them. abacus.nightly.runs splits an experiment
into pages of users and runs them, in one process or fanned out over SQS.

Only ResultsFunction imports this module: it is the one function with the stats layer."""

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple, cast

from abacus.core import breakdowns, keys, numbers, retention
from abacus.core.documents import (
    Breakdown,
    CapReport,
    FunnelStepCounts,
    MetricAnalysis,
    MetricJson,
    MetricKind,
    RatioTotals,
    Snapshot,
    SnapshotAnalysis,
    VariantAnalysis,
)
from abacus.experiments import definitions, lifecycle, plans, targeting
from abacus.experiments.exposures import refusal
from abacus.experiments.metrics_spec import Cap, FunnelStep, GuardrailSpec, MetricSpec, components
from abacus.experiments.spec import CONTROL, ExperimentFields
from abacus.nightly import breakdown_analysis, breakdown_sums, capping
from abacus.stats import guardrails, srm
from abacus.stats.analysis import CONVERSION, MEAN, Settings, VariantData, analyse
from abacus.stats.ratio import RatioSums, linearized
from abacus.storage import assignments, events
from abacus.storage import experiments as experiment_store
from abacus.storage import results as result_store
from abacus.storage.assignments import AssignmentItem
from abacus.storage.events import EventItem, user_events
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem

# Metric kinds whose per-user value is 0 or 1: they are analysed as conversion rates.
CONVERTED = ("conversion", "funnel")
# Events received this long before the last run are looked at again: an ingest request stamps its
# receipt time before its write lands, and the index lags the table by a moment.
RECEIPT_MARGIN = timedelta(minutes=10)
# Users whose values are computed at once, each a Query of their events then a write to their shard
# key: a shard is worked one page at a time, so this caps the writes on that key (8 at ~5 ms: about
# 530 write units a second, half the partition limit; 16 reached it. bench/RESULTS.md).
PARALLEL_USERS = 8


def cutoff_for(scheduled_time: datetime) -> datetime:
    """Data up to the start of the scheduled day (UTC) are analysed: a 03:00 run covers yesterday."""
    return datetime.combine(scheduled_time.astimezone(UTC).date(), time(0), tzinfo=UTC)


def snapshot_date(cutoff: datetime) -> str:
    """A snapshot is named for the last day of data it covers: a midnight cut-off covers the day
    before; a cut-off during a day (a recompute now) covers that day so far."""
    return (cutoff - timedelta(microseconds=1)).date().isoformat()


def cutoff_of_date(date: str) -> datetime:
    """The cut-off of the snapshot named `date`: the midnight after it (UTC)."""
    return datetime.combine(datetime.fromisoformat(date).date() + timedelta(days=1), time(0), tzinfo=UTC)


def _matches(wanted: MetricSpec | FunnelStep, event: EventItem) -> bool:
    """Whether the event is the one a metric or a funnel's step names, and meets its filters."""
    return event.event == wanted.event and (
        not wanted.filters or targeting.all_hold(wanted.filters, event.event_properties())
    )


def _counts(metric: MetricSpec, event: EventItem) -> bool:
    """Whether the metric counts this event (a funnel: any of its steps)."""
    if metric.steps is not None:
        return any(_matches(step, event) for step in metric.steps)
    return _matches(metric, event)


def _user_value(metric: MetricSpec, events: list[EventItem], start: datetime, end: datetime) -> float:
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


def _did_in_order(steps: list[FunnelStep], events: list[EventItem]) -> bool:
    """Whether the events hold the steps in order, each step a different event at the same time as
    the one before or later. Matching each step to the earliest event that can take it leaves the
    most events for the steps after it, so it finds the steps whenever they are there; the events of
    one instant are matched to the next steps together (_steps_at_one_instant), so that the order
    they were stored in does not matter."""
    reached = 0
    by_time: dict[datetime, list[EventItem]] = {}
    for event in events:
        by_time.setdefault(event.timestamp, []).append(event)
    for moment in sorted(by_time):
        reached += _steps_at_one_instant(steps[reached:], by_time[moment])
        if reached == len(steps):
            return True
    return False


def _steps_at_one_instant(steps: list[FunnelStep], events: list[EventItem]) -> int:
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


def _values_are_current(
    user: AssignmentItem, metrics: list[MetricSpec], cutoff: datetime, key: str, active: set[str]
) -> bool:
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


class _Final(NamedTuple):
    """The stored values no event can change any more (retention.py): per metric, or None."""

    values: list[float | None]
    pre_values: list[float] | None

    def complete(self, pre_days: int) -> UserValues | None:
        values = [value for value in self.values if value is not None]
        if len(values) < len(self.values) or (pre_days and self.pre_values is None):
            return None
        return UserValues(values, self.pre_values or [])


def user_values(run: Run, user: AssignmentItem, exposed_at: datetime) -> UserValues:
    """The user's value of each metric as of the cut-off, counting from their first exposure
    (`exposed_at`), and over the pre-exposure days before it: the stored ones when current or
    final, else computed from the user's events (one Query, from the start of the oldest window
    still open) and stored for the next night, unless what is stored already says the same."""
    if _values_are_current(user, run.metrics, run.cutoff, run.key, run.active):
        return UserValues(user.metric_values, user.pre_values or [])
    final = _final_values(run, user, exposed_at)
    if (complete := final.complete(run.pre_days)) is not None:
        return complete
    pre_start = exposed_at - timedelta(days=run.pre_days)
    start = pre_start if run.pre_days and final.pre_values is None else exposed_at
    retention.check_kept(start, run.now)
    names = sorted({name for metric in run.metrics for name in metric.event_names()})
    events = list(user_events(keys.user_id(run.project_id, user.distinct_id), names, start))
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
        pre_values = (
            [_user_value(metric, events, pre_start, exposed_at) for metric in run.metrics] if run.pre_days else []
        )
    computed = UserValues(values, pre_values)
    if not _stored_values_still_hold(user, computed, run.key, pending):
        assignments.save_values(user, values, pre_values, run.cutoff, run.key, pending, run.now)
    return computed


def _final_values(run: Run, user: AssignmentItem, exposed_at: datetime) -> _Final:
    """Stored values whose windows (and pre-exposure window) had settled before the last run: that
    run found them current, and no event received since can fall in their windows."""
    stored = user.metric_values
    if stored is None or user.values_metrics != run.key or user.values_exposed_at != exposed_at:
        return _Final([None] * len(run.metrics), None)
    if not all(numbers.summable(value) for value in [*stored, *(user.pre_values or [])]):
        return _Final([None] * len(run.metrics), None)  # cached before values were bounded
    whole = user.values_cutoff
    values: list[float | None] = []
    for metric, value in zip(run.metrics, stored, strict=True):
        end = exposed_at + timedelta(days=metric.window_days)
        covered = user.values_pending is False or (whole is not None and whole >= end)
        values.append(value if covered and end <= run.cutoff and retention.settled(end, run.since) else None)
    pre = user.pre_values if user.pre_values and retention.settled(exposed_at, run.since) else None
    return _Final(values, pre)


def _stored_values_still_hold(user: AssignmentItem, computed: UserValues, key: str, pending: bool) -> bool:
    """A user recomputed because they sent events (a second purchase for a conversion metric) often
    has the values stored already. With no events past the new cut-off, the stored values, kept
    with their earlier cut-off, stay current for every later one (`_values_are_current`): writing
    them again would change nothing that is counted, and costs a write."""
    return (
        not pending
        and user.values_pending is False
        and user.metric_values == computed.values
        and (user.pre_values or []) == computed.pre_values
        and user.values_metrics == key
        and user.values_exposed_at == user.exposed_at
    )


def active_users(
    project_id: str,
    metrics: list[MetricSpec],
    since: datetime | None,
    now: datetime,
    shard: tuple[int, int | None] = (0, None),
) -> set[str]:
    """Users who sent an event the metrics use, received from `since` (less a margin for writes
    still in flight then, and the index's replication lag) until now; empty when nothing was
    computed before (every user's values are computed then anyway). `shard` (index, count; count
    None: every user) limits it to one shard of the experiment's users, read from the index's
    shards that can hold them."""
    if since is None:
        return set()
    names = {name for metric in metrics for name in metric.event_names()}
    index, count = shard
    received = events.received_between(project_id, since - RECEIPT_MARGIN, now, user_shard=shard)
    return {
        item.distinct_id
        for item in received
        if item.event in names and (count is None or keys.shard_of(item.distinct_id, count) == index)
    }


class _Sums:
    """One metric's running sums per variant: of the values, their squares, and with a
    pre-exposure window, of the pre-exposure values, their squares and value times pre-value.
    A capped metric's values are capped: at its value as they are added (`capped` counts the
    users lowered), or at its percentile once every user is in (their histograms, capping.py).
    For the skewness correction (abacus.stats.skewness), the sums of cubes: of the values, of the
    pre-exposure values, and the two mixed ones (value^2 pre-value, value pre-value^2); None once a
    page stored before they were kept is added in (the total is then unknown)."""

    FIELDS = ("values", "squares", "pre", "pre_squares", "cross", "capped")
    CUBE_FIELDS = ("cubes", "pre_cubes", "cross_value_squared", "cross_pre_squared")

    def __init__(self, variant_keys: list[str], cap: Cap | None = None) -> None:
        self.values = dict.fromkeys(variant_keys, 0.0)
        self.squares = dict.fromkeys(variant_keys, 0.0)
        self.pre = dict.fromkeys(variant_keys, 0.0)
        self.pre_squares = dict.fromkeys(variant_keys, 0.0)
        self.cross = dict.fromkeys(variant_keys, 0.0)
        self.capped = dict.fromkeys(variant_keys, 0.0)
        self.cap_value = cap.value if cap is not None else None
        self.histograms: dict[str, capping.Histogram] | None = None
        if cap is not None and cap.percentile is not None:
            self.histograms = {variant: capping.Histogram() for variant in variant_keys}
        # A percentile cap's values are capped from the histograms, which keep no cubes: none kept.
        kept = None if self.histograms is not None else variant_keys
        self.cubes: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)
        self.pre_cubes: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)
        self.cross_value_squared: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)
        self.cross_pre_squared: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)

    def add(self, variant: str, value: float, pre_value: float | None) -> float:
        """Adds a user's value; returns it as counted (capped)."""
        if self.histograms is not None:
            self.histograms[variant].add(value, pre_value or 0.0)
        if self.cap_value is not None and value > self.cap_value:
            value = self.cap_value
            self.capped[variant] += 1
        self.values[variant] += value
        self.squares[variant] += value * value
        if pre_value is not None:
            self.pre[variant] += pre_value
            self.pre_squares[variant] += pre_value * pre_value
            self.cross[variant] += pre_value * value
        self._add_cubes(variant, value, pre_value)
        return value

    def _add_cubes(self, variant: str, value: float, pre_value: float | None) -> None:
        if self.cubes is not None:
            self.cubes[variant] = self.cubes.get(variant, 0.0) + value * value * value
        if pre_value is None:
            return
        for name, term in (
            ("pre_cubes", pre_value * pre_value * pre_value),
            ("cross_value_squared", value * value * pre_value),
            ("cross_pre_squared", value * pre_value * pre_value),
        ):
            if (sums := getattr(self, name)) is not None:
                sums[variant] = sums.get(variant, 0.0) + term

    def merge(self, other: "_Sums") -> None:
        for name in self.FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            for variant, total in theirs.items():
                mine[variant] = mine.get(variant, 0.0) + total
        for name in self.CUBE_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, None if mine is None or theirs is None else _added(mine, theirs))
        if other.histograms is not None:
            if self.histograms is None:
                self.histograms = {}
            for variant, histogram in other.histograms.items():
                self.histograms.setdefault(variant, capping.Histogram()).merge(histogram)

    def to_json(self, bins_each: int) -> dict[str, Any]:
        stored: dict[str, Any] = {name: getattr(self, name) for name in self.FIELDS}
        for name in self.CUBE_FIELDS:  # zeros left out: a breakdown's many segments hold mostly zeros
            if (sums := getattr(self, name)) is not None:
                stored[name] = _nonzero(sums)
        if self.histograms is not None:
            for histogram in self.histograms.values():
                histogram.limit(bins_each)
            stored["histograms"] = {variant: h.to_json() for variant, h in self.histograms.items()}
        return stored

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> "_Sums":
        sums = cls([])
        for name in cls.FIELDS:  # pages stored before caps have no `capped`
            setattr(sums, name, {variant: float(total) for variant, total in stored.get(name, {}).items()})
        for name in cls.CUBE_FIELDS:  # pages stored before cubes were kept have none: unknown
            cubes = stored.get(name)
            setattr(sums, name, None if cubes is None else {variant: float(total) for variant, total in cubes.items()})
        if "histograms" in stored:
            sums.histograms = {v: capping.Histogram.from_json(h) for v, h in stored["histograms"].items()}
        return sums

    def percentile_cap(self, metric: MetricSpec) -> float | None:
        """The cap of a metric capped at a percentile, from every user's value (None: no users)."""
        if metric.cap is None or metric.cap.percentile is None or self.histograms is None:
            return None
        return capping.percentile_cap(list(self.histograms.values()), metric.cap.percentile)

    def variant_data(
        self, metric: MetricSpec, variant: str, exposures: int, with_covariate: bool, cap: float | None
    ) -> VariantData:
        """What abacus.stats analyses of a variant; `cap`: the metric's percentile cap."""
        pre_sum = self.pre.get(variant, 0.0) if with_covariate else None
        pre_squares = self.pre_squares.get(variant, 0.0) if with_covariate else None
        cross = self.cross.get(variant, 0.0) if with_covariate else None
        cubes = self._cubes(variant, with_covariate)
        if metric.kind in CONVERTED:
            conversions = round(self.values.get(variant, 0.0))
            return VariantData(variant, exposures, conversions, 0.0, 0.0, pre_sum, pre_squares, cross, *cubes)
        values, squares = self.values.get(variant, 0.0), self.squares.get(variant, 0.0)
        if cap is not None and self.histograms is not None:
            values, squares, capped_cross, _ = capping.capped_sums(self.histograms[variant], cap)
            cross = capped_cross if with_covariate else None
        return VariantData(variant, exposures, 0, values, squares, pre_sum, pre_squares, cross, *cubes)

    def _cubes(self, variant: str, with_covariate: bool) -> tuple[float | None, ...]:
        """VariantData's sum_cubes, pre_sum_cubes, cross_sum_outcome_squared, cross_sum_pre_squared."""
        found = [None if (sums := getattr(self, name)) is None else sums.get(variant, 0.0) for name in self.CUBE_FIELDS]
        return (found[0], *(found[1:] if with_covariate else (None, None, None)))

    def lowered(self, variant: str, cap: float | None) -> int:
        """Users whose value the cap lowered (`cap`: the metric's percentile cap, if any)."""
        if cap is not None and self.histograms is not None:
            return capping.capped_sums(self.histograms[variant], cap)[3]
        return round(self.capped.get(variant, 0.0))


def _nonzero(sums: dict[str, float]) -> dict[str, float]:
    return {variant: total for variant, total in sums.items() if total != 0}


def _floats(stored: dict[str, Any]) -> dict[str, float]:
    return {variant: float(total) for variant, total in stored.items()}


def _added(mine: dict[str, float], theirs: dict[str, float]) -> dict[str, float]:
    return {variant: mine.get(variant, 0.0) + theirs.get(variant, 0.0) for variant in mine.keys() | theirs.keys()}


class PageSums:
    """The sufficient statistics of some of an experiment's users (a page of a shard, or all):
    exposures per variant, each component's sums (components()) and, per ratio metric, the sum of
    its numerator times its denominator. Sums of pages add up to the experiment's."""

    def __init__(self, variant_keys: list[str], metrics: list[MetricSpec], breakdowns: int = 0) -> None:
        self.exposures: Counter[str] = Counter()
        self.exposures_by_day: dict[str, Counter[str]] = {}  # first exposures per UTC day and variant
        self.metrics = [_Sums(variant_keys, metric.cap) for metric in components(metrics)]
        self.ratios = _ratio_positions(metrics)  # (numerator, denominator) component indexes
        self.ratio_cross = [dict.fromkeys(variant_keys, 0.0) for _ in self.ratios]
        # Per ratio, the sums of numerator^2 denominator and numerator denominator^2 (the skewness
        # correction's, abacus.stats.ratio); None once a page stored before them is added in.
        self.ratio_cubes: list[list[dict[str, float]]] | None = [
            [dict.fromkeys(variant_keys, 0.0), dict.fromkeys(variant_keys, 0.0)] for _ in self.ratios
        ]
        # Per breakdown, the primary metric's sums per value (breakdown_sums.py).
        self.breakdowns: list[breakdown_sums.Segments[PageSums]] = []
        self.primary_components = len(metrics[0].components()) if metrics else 1
        if breakdowns:
            segment = [breakdown_sums.segment_metric(metrics[0])]
            make = lambda: PageSums(variant_keys, segment)  # noqa: E731 (one line, used right here)
            self.breakdowns = [breakdown_sums.Segments(make) for _ in range(breakdowns)]

    def add_user(
        self,
        variant: str,
        computed: UserValues,
        with_covariate: bool,
        exposed_at: datetime | None = None,
        breakdown_values: list[Any] | None = None,
    ) -> None:
        self.exposures[variant] += 1
        if exposed_at is not None:
            self.exposures_by_day.setdefault(exposed_at.astimezone(UTC).date().isoformat(), Counter())[variant] += 1
        counted = [
            self.metrics[index].add(variant, value, computed.pre_values[index] if with_covariate else None)
            for index, value in enumerate(computed.values)
        ]
        for index, ((numerator, denominator), cross) in enumerate(zip(self.ratios, self.ratio_cross, strict=True)):
            n, d = counted[numerator], counted[denominator]
            cross[variant] += n * d
            if self.ratio_cubes is not None:
                squares_cross, cross_squares = self.ratio_cubes[index]
                squares_cross[variant] += n * n * d
                cross_squares[variant] += n * d * d
        if self.breakdowns:
            first = self.primary_components
            primary = UserValues(computed.values[:first], computed.pre_values[:first])
            for index, segments in enumerate(self.breakdowns):
                value = breakdown_values[index] if breakdown_values and index < len(breakdown_values) else None
                segments.of(value).add_user(variant, primary, with_covariate)

    def merge(self, other: "PageSums") -> None:
        self.exposures.update(other.exposures)
        for day, counts in other.exposures_by_day.items():
            self.exposures_by_day.setdefault(day, Counter()).update(counts)
        for mine, theirs in zip(self.metrics, other.metrics, strict=True):
            mine.merge(theirs)
        for my_cross, their_cross in zip(self.ratio_cross, other.ratio_cross, strict=True):
            for variant, total in their_cross.items():
                my_cross[variant] = my_cross.get(variant, 0.0) + total
        if self.ratio_cubes is None or other.ratio_cubes is None:
            self.ratio_cubes = None
        else:
            self.ratio_cubes = [
                [_added(mine, theirs) for mine, theirs in zip(my_pair, their_pair, strict=True)]
                for my_pair, their_pair in zip(self.ratio_cubes, other.ratio_cubes, strict=True)
            ]
        for my_segments, their_segments in zip(self.breakdowns, other.breakdowns, strict=False):
            my_segments.merge(their_segments)

    def to_json(self) -> dict[str, Any]:
        """As a page stores them: percentile caps' histograms share capping.PAGE_BINS, and each
        breakdown keeps its page's most common values (breakdown_sums.PAGE_VALUES)."""
        histograms = sum(len(sums.histograms) for sums in self.metrics if sums.histograms is not None)
        bins_each = max(capping.MIN_BINS, capping.PAGE_BINS // max(1, histograms))
        stored: dict[str, Any] = {"exposures": dict(self.exposures)}
        stored["metrics"] = [sums.to_json(bins_each) for sums in self.metrics]
        stored["exposures_by_day"] = {day: dict(counts) for day, counts in self.exposures_by_day.items()}
        if self.ratios:
            stored["ratio_cross"] = self.ratio_cross
            if self.ratio_cubes is not None:
                stored["ratio_cubes"] = [[_nonzero(part) for part in pair] for pair in self.ratio_cubes]
        if self.breakdowns:
            stored["breakdowns"] = [
                segments.to_json(breakdown_sums.PAGE_VALUES, PageSums.to_json) for segments in self.breakdowns
            ]
        return stored

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> "PageSums":
        sums = cls([], [])
        sums.exposures = Counter({variant: int(count) for variant, count in stored["exposures"].items()})
        sums.exposures_by_day = {  # pages stored before exposures were counted by day have none
            day: Counter({variant: int(count) for variant, count in counts.items()})
            for day, counts in stored.get("exposures_by_day", {}).items()
        }
        sums.metrics = [_Sums.from_json(metric) for metric in stored["metrics"]]
        sums.ratio_cross = [
            {variant: float(total) for variant, total in cross.items()} for cross in stored.get("ratio_cross", [])
        ]
        cubes = stored.get("ratio_cubes", [] if not sums.ratio_cross else None)  # None: stored before them
        sums.ratio_cubes = None if cubes is None else [[_floats(part) for part in pair] for pair in cubes]
        sums.breakdowns = [
            breakdown_sums.Segments.from_json(segments, PageSums.from_json) for segments in stored.get("breakdowns", [])
        ]
        return sums

    def statistics(self, metrics: list[MetricSpec], variant_keys: list[str], pre_days: int) -> list[list[VariantData]]:
        """Per metric, per variant: what abacus.stats analyses, capped values where capped; a
        ratio as the delta method linearizes it (abacus.stats.ratio)."""
        analysed = []
        for metric, (first, ratio) in zip(metrics, _positions(metrics), strict=True):
            if ratio is None:
                sums = self.metrics[first + len(metric.components()) - 1]  # a funnel's: its last step
                cap = sums.percentile_cap(metric)
                exposures = self.exposures
                analysed.append([sums.variant_data(metric, v, exposures[v], bool(pre_days), cap) for v in variant_keys])
            else:
                analysed.append([linearized(self.ratio_sums(first, ratio, v)) for v in variant_keys])
        return analysed

    def ratio_sums(self, first: int, ratio: int, variant: str) -> RatioSums:
        numerator, denominator = self.metrics[first], self.metrics[first + 1]
        return RatioSums(
            variant,
            self.exposures[variant],
            numerator.values.get(variant, 0.0),
            numerator.squares.get(variant, 0.0),
            denominator.values.get(variant, 0.0),
            denominator.squares.get(variant, 0.0),
            self.ratio_cross[ratio].get(variant, 0.0),
            *self._ratio_cubes(numerator, denominator, ratio, variant),
        )

    def _ratio_cubes(self, numerator: _Sums, denominator: _Sums, ratio: int, variant: str) -> list[float | None]:
        """RatioSums' cubes and mixed sums (None each where they were not all kept)."""
        if numerator.cubes is None or denominator.cubes is None or self.ratio_cubes is None:
            return [None, None, None, None]
        squares_cross, cross_squares = self.ratio_cubes[ratio]
        return [
            numerator.cubes.get(variant, 0.0),
            denominator.cubes.get(variant, 0.0),
            squares_cross.get(variant, 0.0),
            cross_squares.get(variant, 0.0),
        ]

    def ratio_totals(
        self, metrics: list[MetricSpec], index: int, variant_keys: list[str]
    ) -> dict[str, RatioTotals] | None:
        """A ratio metric's numerator and denominator sums per variant (None: not a ratio)."""
        first, ratio = _positions(metrics)[index]
        if ratio is None:
            return None
        totals = {v: self.ratio_sums(first, ratio, v) for v in variant_keys}
        return {v: {"numerator": t.numerator, "denominator": t.denominator} for v, t in totals.items()}

    def funnel_steps(self, metrics: list[MetricSpec], index: int, variant_keys: list[str]) -> list[FunnelStepCounts]:
        """A funnel metric's users per variant who got as far as each step ([]: not a funnel)."""
        metric = metrics[index]
        first = _positions(metrics)[index][0]
        return [
            {
                **cast(FunnelStepCounts, step.model_dump(mode="json", exclude_defaults=True)),
                "conversions": {v: round(self.metrics[first + reached].values.get(v, 0.0)) for v in variant_keys},
            }
            for reached, step in enumerate(metric.steps or [])
        ]

    def cap_report(self, metrics: list[MetricSpec], index: int, variant_keys: list[str]) -> CapReport | None:
        """What the `index`-th metric's cap was and whom it lowered (None: the metric has no cap)."""
        metric = metrics[index]
        first = _positions(metrics)[index][0]
        if metric.kind == "ratio":  # a ratio's parts take a cap value each: the first one capped
            capped = [(n, part) for n, part in enumerate(metric.components()) if part.cap is not None]
            if not capped:
                return None
            position, part = capped[0]
            sums = self.metrics[first + position]
            parts: CapReport = {"value": part.cap.value if part.cap else None, "users_capped": {}}
            parts["users_capped"] = {v: sums.lowered(v, None) for v in variant_keys}
            parts["part"] = "numerator" if position == 0 else "denominator"
            return parts
        if metric.cap is None:
            return None
        sums = self.metrics[first]
        cap = metric.cap.value if metric.cap.value is not None else sums.percentile_cap(metric)
        report: CapReport = {"value": cap, "users_capped": {v: sums.lowered(v, cap) for v in variant_keys}}
        if metric.cap.percentile is not None:
            report["percentile"] = metric.cap.percentile
        return report


def _positions(metrics: list[MetricSpec]) -> list[tuple[int, int | None]]:
    """Per metric: the index of its first component (components()), and a ratio's among ratios."""
    positions: list[tuple[int, int | None]] = []
    component = ratios = 0
    for metric in metrics:
        positions.append((component, ratios if metric.kind == "ratio" else None))
        ratios += metric.kind == "ratio"
        component += len(metric.components())
    return positions


def _ratio_positions(metrics: list[MetricSpec]) -> list[tuple[int, int]]:
    """Each ratio metric's numerator and denominator component indexes."""
    return [(first, first + 1) for first, ratio in _positions(metrics) if ratio is not None]


def counted_users(
    experiment: ExperimentItem, spec: ExperimentFields, users: Iterable[AssignmentItem], cutoff: datetime
) -> list[AssignmentItem]:
    """The users an analysis counts: exposed before the cut-off to a variant the experiment has,
    and not refused since (exposures stored before the rules were, or a user made an override)."""
    variant_keys = {v.key for v in spec.variants}
    return [
        user
        for user in users
        if user.exposed_at is not None
        and user.exposed_at < cutoff
        and user.variant in variant_keys
        and refusal(experiment, spec, user.distinct_id, user.exposed_at) is None
    ]


def users_sums(
    experiment: ExperimentItem,
    users: list[AssignmentItem],
    cutoff: datetime,
    since: datetime | None,
    now: datetime,
    shard: tuple[int, int | None] = (0, None),
) -> PageSums:
    """The sums of these users (counted_users of some of the experiment's): each one's stored values
    where current, else recomputed from their events. Users who sent metric events since the
    last run (`since`: the last snapshot's computation, or without one the earliest stored values
    of these users) are read from the by-receipt index, from the shards that hold `shard`."""
    spec = definitions.definition(experiment)
    metrics = spec.all_metrics()
    pre_days = pre_exposure_days(spec)
    sums = PageSums([v.key for v in spec.variants], metrics, len(spec.breakdowns))
    counted = counted_users(experiment, spec, users, cutoff)
    if since is None:
        since = _first_stored_computation(experiment, counted)
    active = active_users(experiment.project_id, metrics, since, now, shard)
    key = metrics_key(metrics, pre_days)
    run = Run(experiment.project_id, components(metrics), cutoff, key, active, pre_days, since, now)
    # Users whose values must be recomputed each wait on two requests: many at a time.
    with ThreadPoolExecutor(max_workers=PARALLEL_USERS) as pool:
        all_values = pool.map(lambda user: user_values(run, user, cast(datetime, user.exposed_at)), counted)
        for user, computed in zip(counted, all_values, strict=True):
            sums.add_user(user.variant, computed, bool(pre_days), user.exposed_at, user.breakdown_values)
    return sums


def metric_statistics(
    project_id: str,
    experiment: ExperimentItem,
    metrics: list[MetricSpec],
    cutoff: datetime,
    since: datetime | None = None,
    now: datetime | None = None,
) -> list[list[VariantData]]:
    """Per metric, per variant, over every exposed user at once: exposures (first exposure before
    the cut-off) and the sums and sums of squares of the users' values (see users_sums). The
    nightly job computes the same in pages (abacus.nightly.runs) and adds them up."""
    spec = definitions.definition(experiment)
    users = list(assignments.exposed_users(experiment.assignment_partitions()))
    sums = users_sums(experiment, users, cutoff, since, now or datetime.now(UTC))
    return sums.statistics(metrics, [v.key for v in spec.variants], pre_exposure_days(spec))


def _first_stored_computation(experiment: ExperimentItem, users: list[AssignmentItem]) -> datetime | None:
    """Without a snapshot, when the earliest stored values were computed: a run that failed before
    writing its snapshot may have stored some, and events received since then may not be in them.
    Values stored without that time count from the launch."""
    times = [user.values_computed_at or experiment.started_at for user in users if user.metric_values is not None]
    known = [time for time in times if time is not None]
    return min(known) if known else None


def launched_before(experiment: ExperimentItem, cutoff: datetime) -> bool:
    """Whether the experiment ran before the cut-off: exposures count from its launch on, so a
    cut-off at or before the launch has nothing to count, and gets no snapshot."""
    return experiment.started_at is not None and experiment.started_at < cutoff


def _days_running(experiment: ExperimentItem, cutoff: datetime) -> float | None:
    """Days from the launch to the cut-off (None before a launch: no rate to plan days left from)."""
    if experiment.started_at is None:
        return None
    return max(0.0, (cutoff - experiment.started_at).total_seconds() / 86400)


def analyse_and_store(
    experiment: ExperimentItem, cutoff: datetime, started: datetime, sums: PageSums
) -> SnapshotItem | None:
    """The experiment's snapshot for `cutoff` from its users' sums (computed by the run that
    started at `started`), stored unless a run started later stored one for the same day already.
    A stopped experiment counts the users exposed before it stopped, their events within their
    windows as they close after it; its snapshot is final (and the nightly job done with it) once
    no event can change any of those windows."""
    spec = definitions.definition(experiment)
    metrics = spec.all_metrics()
    experiment_id = keys.experiment_id(experiment.project_id, experiment.key)
    # The group-sequential test's earlier looks: one snapshot per night the job ran (one Query).
    date = snapshot_date(cutoff)
    earlier = [item.analysis for item in result_store.history(experiment_id) if item.date < date]
    statistics = sums.statistics(metrics, [v.key for v in spec.variants], pre_exposure_days(spec))
    final = _windows_all_final(experiment, metrics, cutoff, started)
    analyses: list[MetricAnalysis] = []
    for index, (metric, variants) in enumerate(zip(metrics, statistics, strict=True)):
        keys_ = sorted(v.key for v in variants)
        looks = [
            look
            for snapshot in earlier
            if (look := _metric_of(snapshot, index)) is not None
            and sorted(row["key"] for row in look["variants"]) == keys_
        ]
        settings = Settings(
            control=CONTROL,
            weights={v.key: float(v.weight) for v in spec.variants},
            mde=spec.minimum_detectable_effect,
            days_running=_days_running(experiment, cutoff),
            cuped=spec.cuped,
            planned_exposures=plans.planned_exposures(metric, spec, looks, _observed_control(metric, variants)),
            previous_looks=[_variant_data(look) for look in looks],
            # A ratio's variant without a denominator yet counts no exposure: the check counts users.
            srm_exposures=[sums.exposures[v.key] for v in spec.variants] if metric.kind == "ratio" else None,
        )
        analysis = analyse(CONVERSION if metric.kind in CONVERTED else MEAN, variants, settings)
        # pydantic's JSON dump is untyped: MetricJson is its shape.
        metric_json = cast(MetricJson, metric.model_dump(mode="json", exclude_none=True))
        if not metric.filters:
            del metric_json["filters"]  # as snapshots stored before metrics had filters have it
        metric_analysis = cast(MetricAnalysis, {**analysis, "metric": metric_json})
        if (cap := sums.cap_report(metrics, index, [v.key for v in spec.variants])) is not None:
            metric_analysis["cap"] = cap
        if (ratio := sums.ratio_totals(metrics, index, [v.key for v in spec.variants])) is not None:
            metric_analysis["ratio"] = ratio
        if steps := sums.funnel_steps(metrics, index, [v.key for v in spec.variants]):
            metric_analysis["funnel_steps"] = steps
        analyses.append(metric_analysis)
    primary_and_secondary = _snapshot_analysis(spec, analyses, sums)
    snapshot = SnapshotItem(
        experiment_id,
        date,
        cutoff=cutoff,
        computed_at=started,
        analysis=primary_and_secondary,
        final=final,
    )
    if not result_store.put_unless_newer(snapshot):
        return None
    if final:
        experiment_store.mark_results_final(experiment)
    return snapshot


def _windows_all_final(experiment: ExperimentItem, metrics: list[MetricSpec], cutoff: datetime, now: datetime) -> bool:
    """Whether a stopped experiment's windows have all closed by the cut-off, and no late event can
    change them any more (retention.py): every exposure came before the stop."""
    if experiment.status != lifecycle.COMPLETE or experiment.stopped_at is None:
        return False
    longest = max(metric.window_days for metric in components(metrics))
    last_window_end = experiment.stopped_at + timedelta(days=longest)
    return cutoff >= last_window_end and retention.settled(last_window_end, now)


def _observed_control(metric: MetricSpec, variants: list[VariantData]) -> plans.Baseline | None:
    """The control's mean and per-user standard deviation so far (None before two exposures)."""
    control = next(v for v in variants if v.key == CONTROL)
    n = control.exposures
    if n < 2:
        return None
    if metric.kind in CONVERTED:
        rate = control.conversions / n
        return plans.Baseline(rate, math.sqrt(rate * (1 - rate)))
    mean = control.sum / n
    return plans.Baseline(mean, math.sqrt(max(0.0, (control.sum_squares - control.sum * mean) / (n - 1))))


def _snapshot_analysis(spec: ExperimentFields, analyses: list[MetricAnalysis], sums: PageSums) -> SnapshotAnalysis:
    """The primary metric's analysis with the others beside it, the verdict held back by any
    guardrail the winner harms, and the exposures per day with their sample ratio checks."""
    secondary_end = 1 + len(spec.secondary_metrics)
    snapshot = cast(SnapshotAnalysis, {**analyses[0], "secondary_metrics": analyses[1:secondary_end]})
    if spec.guardrail_metrics:
        snapshot = _with_guardrails(snapshot, spec.guardrail_metrics, analyses[secondary_end:])
    if spec.breakdowns:
        snapshot["breakdowns"] = _breakdowns(spec, sums)
    if sums.exposures_by_day:
        variant_keys = [v.key for v in spec.variants]
        days = [(day, [counts[key] for key in variant_keys]) for day, counts in sorted(sums.exposures_by_day.items())]
        snapshot["exposures_by_day"] = srm.by_day(days, [float(v.weight) for v in spec.variants])
    return snapshot


def _breakdowns(spec: ExperimentFields, sums: PageSums) -> list[Breakdown]:
    """The primary metric per value of each breakdown property: the most common values, then the
    rest as "other" (abacus.nightly.breakdown_analysis), each with mSPRT's always-valid p-values."""
    variant_keys = [v.key for v in spec.variants]
    weights = {v.key: float(v.weight) for v in spec.variants}
    settings = Settings(control=CONTROL, weights=weights, mde=spec.minimum_detectable_effect, cuped=spec.cuped)
    pre_days = pre_exposure_days(spec)
    metric = breakdown_sums.segment_metric(spec.primary_metric)
    kind: MetricKind = "conversion" if metric.kind in CONVERTED else "mean"
    results = []
    for name, segments in zip(spec.breakdowns, sums.breakdowns, strict=True):
        shown, other = segments.top(breakdowns.TOP_VALUES, PageSums(variant_keys, [metric]))
        groups = [_group(shown_value, False, metric, variant_keys, pre_days) for shown_value in shown]
        if other is not None:
            groups.append(_group(breakdown_sums.Shown(None, other, True), True, metric, variant_keys, pre_days))
        results.append(breakdown_analysis.breakdown(name, kind, groups, settings))
    return results


def _group(
    shown: "breakdown_sums.Shown[PageSums]", other: bool, metric: MetricSpec, variant_keys: list[str], pre_days: int
) -> breakdown_analysis.Group:
    variants = shown.sums.statistics([metric], variant_keys, pre_days)[0]
    srm_exposures = [shown.sums.exposures[key] for key in variant_keys] if metric.kind == "ratio" else None
    return breakdown_analysis.Group(shown.value, other, shown.complete, variants, srm_exposures)


def _with_guardrails(
    snapshot: SnapshotAnalysis, specs: list[GuardrailSpec], analyses: list[MetricAnalysis]
) -> SnapshotAnalysis:
    """The snapshot with each guardrail's analysis and status per treatment, and the primary
    metric's verdict held back where its winner harms a guardrail (abacus.stats.guardrails)."""
    harmed_by: dict[str, list[str]] = {}
    for spec, analysis in zip(specs, analyses, strict=True):
        treatments = [row for row in analysis["variants"] if row["key"] != CONTROL]
        statuses = {row["key"]: guardrails.status(row, spec.margin, spec.bad_direction) for row in treatments}
        analysis["guardrail"] = {"margin": spec.margin, "bad_direction": spec.bad_direction, "status": statuses}
        for row in treatments:
            if statuses[row["key"]] == "harmed":
                harmed_by.setdefault(row["key"], []).append(_harm_words(spec, row))
    verdict = guardrails.hold_back(snapshot["verdict"], snapshot["variants"], harmed_by)
    return {**snapshot, "verdict": verdict, "guardrail_metrics": analyses}


def _harm_words(spec: GuardrailSpec, row: VariantAnalysis) -> str:
    """How a treatment harms a guardrail, in words: "guardrail errors (count) +12.0% [+5.0%,
    +19.0%], beyond its 2% margin"."""
    lift = row.get("lift")
    low, high = (lift["relative_ci"] if lift else None) or (0.0, 0.0)
    name = f"{spec.event} ({spec.kind})" if spec.kind not in ("ratio", "funnel") else f"a {spec.kind} guardrail"
    change = (lift["relative"] if lift else None) or 0.0
    return f"guardrail {name} {change:+.1%} [{low:+.1%}, {high:+.1%}], beyond its {spec.margin:.0%} margin"


def _metric_of(snapshot: SnapshotAnalysis, index: int) -> MetricAnalysis | None:
    """The analysis of the experiment's `index`-th metric (0: the primary, then the secondary
    ones, then the guardrails) in a stored snapshot."""
    flat = [snapshot, *snapshot.get("secondary_metrics", []), *snapshot.get("guardrail_metrics", [])]
    return flat[index] if index < len(flat) else None


def _variant_data(analysis: MetricAnalysis) -> list[VariantData]:
    """The sufficient statistics a stored analysis was computed from."""
    return [
        VariantData(
            row["key"],
            row["exposures"],
            row.get("conversions", 0),
            row.get("sum", 0.0),
            row.get("sum_squares", 0.0),
            row.get("pre_sum"),
            row.get("pre_sum_squares"),
            row.get("cross_sum"),
            row.get("sum_cubes"),
            row.get("pre_sum_cubes"),
            row.get("cross_sum_outcome_squared"),
            row.get("cross_sum_pre_squared"),
        )
        for row in analysis["variants"]
    ]


def snapshot_to_api(snapshot: SnapshotItem, experiment_key: str) -> Snapshot:
    analysis: SnapshotAnalysis = snapshot.analysis
    return {
        "experiment": experiment_key,
        "date": snapshot.date,
        "cutoff": snapshot.cutoff.isoformat(),
        "computed_at": snapshot.computed_at.isoformat(),
        "final": bool(snapshot.final),
        **analysis,
    }
