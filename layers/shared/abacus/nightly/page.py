"""One page of an experiment's users, read and written: which of them an analysis counts, who sent
metric events since the last run (the by-receipt index), each one's events (one Query, only for
users whose stored values no longer hold) and their values stored back for the next night; their
sums (abacus.nightly.sums). The arithmetic is abacus.nightly.values'; abacus.nightly.computation stores
the page's sums.

Only ResultsFunction and NightlyWorkerFunction import this module: they have the stats layer."""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import cast

from abacus.core import keys, retention
from abacus.experiments import bandit_weights, definitions
from abacus.experiments.exposures import refusal
from abacus.experiments.metrics_spec import MetricSpec, components
from abacus.experiments.spec import ExperimentFields
from abacus.nightly import values
from abacus.nightly.sums import PageSums
from abacus.nightly.values import Run, UserValues
from abacus.storage import assignments, events, persons
from abacus.storage.assignments import AssignmentItem
from abacus.storage.events import user_events
from abacus.storage.experiments import ExperimentItem

# Events received this long before the last run are looked at again: an ingest request stamps its
# receipt time before its write lands, and the index lags the table by a moment.
RECEIPT_MARGIN = timedelta(minutes=10)
# Users whose values are computed at once, each a Query of their events then a write to their shard
# key: a shard is worked one page at a time, so this caps the writes on that key (8 at ~5 ms: about
# 530 write units a second, half the partition limit; 16 reached it. bench/RESULTS.md).
PARALLEL_USERS = 8


def user_values(run: Run, user: AssignmentItem, exposed_at: datetime, ids: frozenset[str] = frozenset()) -> UserValues:
    """The user's value of each metric as of the cut-off, counting from their first exposure
    (`exposed_at`), and over the pre-exposure days before it: the stored ones when current or
    final, else computed from the user's events (one Query, from the start of the oldest window
    still open) and stored for the next night, unless what is stored already says the same."""
    if values.values_are_current(user, run.metrics, run.cutoff, run.key, run.active):
        return UserValues(user.metric_values, user.pre_values or [])
    final = values.final_values(run, user, exposed_at)
    if (complete := final.complete(run.pre_days)) is not None:
        return complete
    start = values.events_start(run, exposed_at, final)
    retention.check_kept(start, run.now)
    names = values.event_names(run.metrics)
    # A person's events under every id (one Query each, at most persons.MAX_IDS), in time order.
    found = sorted(
        (
            event
            for one in sorted(ids or {user.distinct_id})
            for event in user_events(keys.user_id(run.project_id, one), names, start)
        ),
        key=lambda event: event.timestamp,
    )
    computed, pending = values.computed_values(run, exposed_at, found, final)
    if not values.stored_values_still_hold(user, computed, run.key, pending):
        assignments.save_values(user, computed.values, computed.pre_values, run.cutoff, run.key, pending, run.now)
    return computed


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


def persons_of(project_id: str, users: Iterable[AssignmentItem]) -> dict[str, persons.Person]:
    """The person of each user (their assignment is keyed by the person's root id): one eventually
    consistent BatchGetItem per 100, an item only for persons of several ids."""
    return persons.persons(project_id, [user.distinct_id for user in users])


def within_queries(users: list[AssignmentItem], found: dict[str, persons.Person], budget: int) -> list[AssignmentItem]:
    """The first of `users` whose Queries of events (one per id of their person) fit `budget`:
    a page's work stays bounded however many ids its persons have. Never none: one person's ids
    (at most persons.MAX_IDS) fit any budget."""
    kept: list[AssignmentItem] = []
    queries = 0
    for user in users:
        queries += len(found[user.distinct_id].ids) if user.distinct_id in found else 1
        if kept and queries > budget:
            break
        kept.append(user)
    return kept


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
        and user.merged_into is None  # moved into the person it joined, and counted there
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
    found: dict[str, persons.Person] | None = None,
) -> PageSums:
    """The sums of these users (counted_users of some of the experiment's; `found`: their persons,
    persons_of, when read already): each one's stored values where current, else recomputed from
    their events. Users who sent metric events since the
    last run (`since`: the last snapshot's computation, or without one the earliest stored values
    of these users) are read from the by-receipt index, from the shards that hold `shard`."""
    spec = definitions.definition(experiment)
    metrics = spec.all_metrics()
    pre_days = values.pre_exposure_days(spec)
    sums = PageSums([v.key for v in spec.variants], metrics, len(spec.breakdowns))
    counted = counted_users(experiment, spec, users, cutoff)
    if since is None:
        since = _first_stored_computation(experiment, counted)
    active = active_users(experiment.project_id, metrics, since, now, shard)
    # Persons of several ids: their events are read under each. Their other ids' events are filed
    # under those ids' shards of the by-receipt index, which this page does not read: their values
    # are computed every run (one Query per id) rather than only when they sent events.
    if found is None:
        found = persons_of(experiment.project_id, counted)
    ids = {user.distinct_id: found[user.distinct_id].ids for user in counted if len(found[user.distinct_id].ids) > 1}
    active |= ids.keys()
    key = values.metrics_key(metrics, pre_days)
    run = Run(experiment.project_id, components(metrics), cutoff, key, active, pre_days, since, now)
    # Users whose values must be recomputed each wait on two requests: many at a time.
    with ThreadPoolExecutor(max_workers=PARALLEL_USERS) as pool:

        def compute(user: AssignmentItem) -> UserValues:
            return user_values(run, user, cast(datetime, user.exposed_at), ids.get(user.distinct_id, frozenset()))

        all_values = pool.map(compute, counted)
        # A bandit's users are counted in the phase of their assignment too (bandit_weights.py).
        starts = bandit_weights.phase_starts(experiment) if bandit_weights.allocation_of(spec) else None
        for user, computed in zip(counted, all_values, strict=True):
            several = len(user.variants_exposed()) > 1
            phase = bandit_weights.phase_at(starts, user.assigned_at) if starts is not None else None
            sums.add_user(
                user.variant, computed, bool(pre_days), user.exposed_at, user.breakdown_values, several, phase
            )
    return sums


def _first_stored_computation(experiment: ExperimentItem, users: list[AssignmentItem]) -> datetime | None:
    """Without a snapshot, when the earliest stored values were computed: a run that failed before
    writing its snapshot may have stored some, and events received since then may not be in them.
    Values stored without that time count from the launch."""
    times = [user.values_computed_at or experiment.started_at for user in users if user.metric_values is not None]
    known = [time for time in times if time is not None]
    return min(known) if known else None
