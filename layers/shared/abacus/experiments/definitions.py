"""Creating experiments, changing them, moving them through their statuses, and describing them."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError

from abacus.core import planning, retention
from abacus.core.answers import (
    BanditPhaseEntry,
    Experiment,
    ExperimentFieldsJson,
    ExperimentPage,
    ExperimentWithHistory,
    FieldError,
    HistoryEntry,
    Plan,
)
from abacus.core.cache import TtlCache
from abacus.core.documents import SnapshotAnalysis
from abacus.core.errors import Conflict, Invalid, NotFound, TooLarge, field_errors
from abacus.core.settings import settings
from abacus.experiments import bandit_weights, experiment_layers, lifecycle, plans
from abacus.experiments.spec import CONTROL, ExperimentCreate, ExperimentFields, ExperimentPatch
from abacus.storage import bandit_phases, experiments, layer_allocations, results
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem

# DynamoDB's item limit: an experiment and its history of changes are one item.
TOO_LARGE = "experiment: over the 400 KB an experiment can take; shorten its overrides or description"
# Each project's experiments, for the functions that read them on every request (assign, ingest).
_definitions: TtlCache[str, dict[str, ExperimentItem]] = TtlCache()


class Raced(Conflict):
    """The experiment (or its layer) changed between our read and our write: the change may be sent
    again, where another Conflict is a refusal that would be refused again."""


def project_experiments(project_id: str) -> dict[str, ExperimentItem]:
    """A project's experiments by key, from the cache (one Query per project per TTL)."""
    return _definitions.get(project_id, lambda: {item.key: item for item in experiments.in_project(project_id)})


def definition(item: ExperimentItem) -> ExperimentFields:
    """The experiment's validated definition (variants, targeting, metrics...)."""
    return ExperimentFields.model_validate(item.definition)


def check_windows(spec: ExperimentFields) -> None:
    """Every window the nightly job reads (the pre-exposure one and each metric's) must fit in the
    time events are kept, with the late days and slack that make their values final before their
    events expire (retention.py); 422 naming each one that does not."""
    kept = settings.event_retention_days
    named = [("primary_metric", spec.primary_metric)]
    named += [(f"secondary_metrics[{i}]", metric) for i, metric in enumerate(spec.secondary_metrics)]
    named += [(f"guardrail_metrics[{i}]", metric) for i, metric in enumerate(spec.guardrail_metrics)]
    windows = [("pre_exposure_days", spec.pre_exposure_days)]
    for name, metric in named:
        if metric.kind == "ratio":
            parts = zip(("numerator", "denominator"), metric.components(), strict=True)
            windows += [(f"{name}.{part}.window_days", m.window_days) for part, m in parts]
        else:
            windows.append((f"{name}.window_days", metric.window_days))
    longest = kept - retention.days_needed(0)
    too_long: list[FieldError] = [
        {
            "field": field,
            "message": f"at most {longest} days while events are kept {kept} days (EventRetentionDays): "
            f"{days} days need {retention.days_needed(days)} ({retention.LATE_EVENT_DAYS} for late events, "
            f"{retention.NIGHTS_OF_SLACK} nights of slack)",
        }
        for field, days in windows
        if retention.days_needed(days) > kept
    ]
    if too_long:
        raise Invalid.of(too_long)


def check_schedule(spec: ExperimentFields, now: datetime, changed: set[str] | None = None) -> None:
    """A scheduled launch or stop set (or changed: those in `changed`, when given) must be ahead of
    `now`: one in the past would launch or stop at once, which the launch and stop actions do. 422
    naming each."""
    named = [("starts_at", spec.starts_at, "launch it now instead"), ("ends_at", spec.ends_at, "stop it now instead")]
    past: list[FieldError] = [
        {"field": field, "message": f"{moment.isoformat()} has passed (it is {now.isoformat()}): a time ahead, or {do}"}
        for field, moment, do in named
        if moment is not None and moment <= now and (changed is None or field in changed)
    ]
    if past:
        raise Invalid.of(past)


def create(
    project_id: str, spec: ExperimentCreate, now: datetime, by: str | None = None, duplicated_from: str | None = None
) -> ExperimentItem:
    """A new draft keyed `spec.key`: 409 when the key is taken, saying how it can be freed. The key
    of an archived experiment is taken over (archived_key_free) once its retention has passed, or
    at once with `replace_archived`."""
    check_windows(spec)
    check_schedule(spec, now)
    details = {"duplicated_from": duplicated_from} if duplicated_from else {}
    item = ExperimentItem(
        project_id,
        spec.key,
        status=lifecycle.DRAFT,
        definition=spec.model_dump(mode="json", exclude={"key", "replace_archived"}),
        created_at=now,
        updated_at=now,
        history=[_entry(now, "create", details, by)],
        assignment_shards=settings.assignment_shards,
    )
    try:
        experiments.insert(item)
    except experiments.AlreadyExists:
        _take_key(project_id, item, spec.replace_archived, now)
    except experiments.TooLargeToStore:
        raise TooLarge(TOO_LARGE, field="body") from None
    return item


def _take_key(project_id: str, item: ExperimentItem, replace_archived: bool, now: datetime) -> None:
    """Saves `item` over the archived experiment holding its key, which is retired; 409 saying
    what frees the key when it is held otherwise."""
    key = item.key
    held = experiments.get(project_id, key)
    if held is None:  # deleted meanwhile: the key is free
        return _insert_new(item)
    if held.status != lifecycle.ARCHIVED:
        instead = (
            "delete it (DELETE /experiments/{k}) to free its key"
            if held.status == lifecycle.DRAFT
            else ("archive it once it is complete, or duplicate it under another key (POST /experiments/{k}/duplicate)")
        )
        raise Conflict(
            f"an experiment keyed '{key}' already exists in this project ({_a_status(held.status)}): choose another "
            f"key, change that one with PATCH /experiments/{key}, or {instead.format(k=key)}",
            field="key",
        )
    free_from = archived_key_free(held)
    if not replace_archived and now < free_from:
        raise Conflict(
            f"key '{key}' belongs to an archived experiment until {free_from.date().isoformat()} (archived "
            f"experiments keep their key {settings.event_retention_days} days, the events' retention): choose "
            f'another key, or send "replace_archived": true to take it now (the archived experiment is retired: its '
            "results, history and assignments are kept apart, no longer served, and deleted with the project)",
            field="key",
        )
    try:
        experiments.replace_archived(held, item)
    except experiments.ChangedMeanwhile:
        raise Conflict(f"experiment '{key}' changed meanwhile (another request): send the creation again") from None
    except experiments.TooLargeToStore:
        raise TooLarge(TOO_LARGE, field="body") from None
    return None


def _insert_new(item: ExperimentItem) -> None:
    try:
        experiments.insert(item)
    except experiments.AlreadyExists:
        raise Conflict(f"experiment '{item.key}' was created meanwhile (another request)", field="key") from None


def archived_key_free(item: ExperimentItem) -> datetime:
    """When an archived experiment's key is free for a new one: once its events' retention has
    passed since it was archived, so that nothing the app still sends under the key's old
    definition (late exposure events, a cached flag) can be mistaken for the new one's."""
    return item.updated_at + timedelta(days=settings.event_retention_days)


def _a_status(status: str) -> str:
    return f"an {status}" if status[0] in "aeiou" else f"a {status}"


def delete_draft(project_id: str, key: str) -> None:
    """Deletes a draft, which frees its key; 409 for an experiment that has run (archive it)."""
    item = get(project_id, key)
    if item.status != lifecycle.DRAFT:
        raise Conflict(
            f"cannot delete {_a_status(item.status)} experiment: only a draft, which never ran, can be deleted; "
            + ("stop it first, then archive it" if item.status == lifecycle.RUNNING else "archive it instead")
            + " (its results are kept)",
            field="key",
        )
    try:
        experiments.delete_draft(item)
    except experiments.ChangedMeanwhile:
        raise Conflict(
            f"experiment '{key}' changed meanwhile (another request): GET /experiments/{key} and delete it again if "
            "it is still a draft"
        ) from None


def duplicate(
    project_id: str, key: str, new_key: str, now: datetime, name: str | None = None, by: str | None = None
) -> ExperimentItem:
    """A new draft keyed `new_key` with `key`'s definition (any status), its name changed if given."""
    original = get(project_id, key)
    # The schedule was the original's run: the copy is a draft launched and stopped by hand until set anew.
    fields = {**original.definition, "key": new_key, "starts_at": None, "ends_at": None}
    if name is not None:
        fields["name"] = name
    try:
        spec = ExperimentCreate.model_validate(fields)
    except ValidationError as error:  # a definition stored under older rules
        raise Invalid.of(field_errors(error.errors())) from None
    return create(project_id, spec, now, by, duplicated_from=key)


def get(project_id: str, key: str) -> ExperimentItem:
    item = experiments.get(project_id, key)
    if item is None:
        raise NotFound(f"no experiment keyed '{key}' in this project", field="key")
    return item


def update(project_id: str, key: str, patch: ExperimentPatch, now: datetime, by: str | None = None) -> ExperimentItem:
    """Applies the fields given in `patch`, if the experiment's status lets them change."""
    item = get(project_id, key)
    # Compared with the definition as validated, so a field stored before it existed reads as its default.
    current = definition(item).model_dump(mode="json")
    given = patch.model_dump(mode="json", exclude_unset=True)
    changes = {field: (current.get(field), value) for field, value in given.items() if current.get(field) != value}
    if not changes:
        return item
    lifecycle.check_changes(item.status, changes)
    merged = {**item.definition, **given}
    try:
        merged_spec = ExperimentFields.model_validate(merged)
    except ValidationError as error:
        raise Invalid.of(field_errors(error.errors())) from None
    check_windows(merged_spec)
    check_schedule(merged_spec, now, changed=set(changes))
    item.definition = merged
    _record(item, now, "update", {field: {"from": old, "to": new} for field, (old, new) in changes.items()}, by)
    _save(item)
    return item


def apply(
    project_id: str,
    key: str,
    action: str,
    now: datetime,
    variant: str | None = None,
    started_at: datetime | None = None,
    by: str | None = None,
) -> ExperimentItem:
    """A lifecycle action: launch (dated back to `started_at` if given), stop, ship (with
    `variant`), archive; 409 when the status refuses it."""
    return apply_to(get(project_id, key), action, now, variant, started_at, by)


def apply_to(
    item: ExperimentItem,
    action: str,
    now: datetime,
    variant: str | None = None,
    started_at: datetime | None = None,
    by: str | None = None,
    why: Mapping[str, Any] | None = None,
) -> ExperimentItem:
    """apply() on an experiment as read (a schedule or the automation, which decided on what they
    read): saved only if it is unchanged since (Raced otherwise). `why` adds to the history entry
    what made an automatic action happen. The item is changed in place, even when refused."""
    new_status = lifecycle.next_status(item.status, action)
    details: dict[str, Any] = {"from": item.status, "to": new_status, **(why or {})}
    if action == "launch":
        _launch(item, now, started_at, details)
    if action in ("stop", "ship") and item.stopped_at is None:
        item.stopped_at = now
    if action in ("stop", "ship"):
        _clear(item, "ends_at", details)  # stopped: its scheduled stop is done
    if action == "ship":
        keys_ = [v.key for v in definition(item).variants]
        if variant not in keys_:
            raise Invalid(f"variant: '{variant}' is not one of {keys_}", field="variant")
        item.shipped_variant = variant
        details["variant"] = variant
    layer = _layer_change(item.project_id, item, action)
    item.status = new_status
    _record(item, now, action, details, by)
    if layer is None:
        _save(item)
    else:
        _save_with_layer(layer, item)
    return item


def _launch(item: ExperimentItem, now: datetime, started_at: datetime | None, details: dict[str, Any]) -> None:
    """A launch's start time, its scheduled launch cleared; 409 naming ends_at when its scheduled
    stop has passed (it would be stopped at once)."""
    ends_at = definition(item).ends_at
    if ends_at is not None and ends_at <= now:
        raise Conflict(
            f"ends_at: the scheduled stop ({ends_at.isoformat()}) has passed: clear it or set a later one (PATCH), "
            "then launch",
            field="ends_at",
        )
    item.started_at = _launch_time(started_at, now)
    if started_at is not None:
        details["started_at"] = item.started_at.isoformat()
    _clear(item, "starts_at", details)  # launched: its scheduled launch is done


def clear_schedule(
    item: ExperimentItem, field: str, now: datetime, by: str, action: str, why: Mapping[str, Any]
) -> None:
    """Clears a scheduled launch or stop (`field`) that was refused, and records `action` (the
    refusal) with `why` in the history; Raced when the experiment changed since it was read."""
    details = dict(why)
    _clear(item, field, details)
    _record(item, now, action, details, by)
    try:
        _save(item)
    except TooLarge:  # the history has no room left: cleared all the same, or it is refused every minute
        item.history = item.history[:-1]
        _save(item)


def _clear(item: ExperimentItem, field: str, details: dict[str, Any]) -> None:
    """Clears a scheduled time of the definition, saying so in the history entry's `details`."""
    if item.definition.get(field) is not None:
        details[field] = {"from": item.definition[field], "to": None}
        item.definition = {**item.definition, field: None}


def _layer_change(project_id: str, item: ExperimentItem, action: str) -> layer_allocations.LayerItem | None:
    """The layer's allocations after `action`, for an experiment in a layer: its buckets taken at
    its launch (409 naming layer.share when too few are free), given back when it completes."""
    spec = definition(item)
    if spec.layer is None or (action != "launch" and item.status != lifecycle.RUNNING):
        return None
    layer = layer_allocations.get(project_id, spec.layer.key)
    allocations = layer_allocations.allocations_of(layer)
    if action == "launch":
        try:
            item.layer_buckets = experiment_layers.allocate(allocations, item.key, spec.layer.share)
        except experiment_layers.DoesNotFit as full:
            held = ", ".join(f"'{key}' {share}%" for key, share in sorted(full.holders.items()))
            raise Conflict(
                f"layer.share: layer '{spec.layer.key}' has {full.free}% of its users free (running: {held}), not "
                f"{spec.layer.share}%: lower layer.share to at most {full.free}, or stop one of them first",
                field="layer.share",
            ) from None
        allocations[item.key] = item.layer_buckets
    else:
        allocations.pop(item.key, None)
    layer.allocations = allocations
    return layer


def _save_with_layer(layer: layer_allocations.LayerItem, item: ExperimentItem) -> None:
    try:
        layer_allocations.save_with(layer, item)
    except experiments.ChangedMeanwhile:
        raise Raced(
            f"experiment '{item.key}' or its layer changed meanwhile (another launch or stop): send the action again"
        ) from None


def _launch_time(started_at: datetime | None, now: datetime) -> datetime:
    """When the experiment starts: now, or earlier for one that ran already (its exposures count
    only from then on, see exposures.py); never later, nor before the oldest events that can
    still arrive (retention.py)."""
    if started_at is None:
        return now
    if started_at > now:
        raise Invalid("started_at: in the future; launch then, or now", field="started_at")
    if started_at < now - retention.LATE:
        raise Invalid(
            f"started_at: more than {retention.LATE_EVENT_DAYS} days ago, before any event that can still arrive",
            field="started_at",
        )
    return started_at


def page(project_id: str, limit: int, after: str | None, status: str | None = None) -> ExperimentPage:
    """A page of the project's experiments (of `status` only, when given), in key order."""
    items, next_after = experiments.page(project_id, limit, after, status)
    return {"experiments": [to_api(item, with_history=False) for item in items], "next": next_after}


def listing(
    project_id: str, limit: int, after: str | None, status: str | None = None
) -> tuple[list[tuple[Experiment, SnapshotItem | None]], str | None]:
    """A page of experiments with the latest snapshot of each that ran (the console's list)."""
    items, next_after = experiments.page(project_id, limit, after, status)
    rows = [
        (to_api(item, with_history=False), results.latest(item.experiment_id) if item.started_at else None)
        for item in items
    ]
    return rows, next_after


def served_variant(item: ExperimentItem) -> str:
    """What a complete or archived experiment serves everyone: the shipped variant, else control."""
    return item.shipped_variant or CONTROL


def to_api(item: ExperimentItem, with_history: bool = True) -> Experiment:
    spec = definition(item)
    # pydantic's JSON dump is untyped: ExperimentFieldsJson is its shape.
    fields = cast(ExperimentFieldsJson, spec.model_dump(mode="json"))
    answer: Experiment = {
        "key": item.key,
        "status": item.status,
        **fields,
        "shipped_variant": item.shipped_variant,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
        "started_at": item.started_at.isoformat() if item.started_at else None,
        "stopped_at": item.stopped_at.isoformat() if item.stopped_at else None,
        "layer_buckets": item.layer_buckets,
        "bandit": bandit_weights.state(item, spec),
        **_plan(item, spec),
    }
    if with_history:
        described = cast(ExperimentWithHistory, {**answer, "history": item.history})  # bandit_phases: below
        if answer["bandit"] is not None:
            described["bandit_phases"] = bandit_phases_of(item, spec)
        return described
    return answer


def bandit_phases_of(item: ExperimentItem, spec: ExperimentFields) -> list[BanditPhaseEntry]:
    """A launched bandit's phases, first first: phase 0's equal shares from the launch, then each
    stored one (storage.bandit_phases: BatchGetItems of 100 keys)."""
    keys = [variant.key for variant in spec.variants]
    equal = dict(zip(keys, bandit_weights.equal_points(len(keys)), strict=True))
    first: BanditPhaseEntry = {
        "phase": 0,
        "begins": item.started_at.isoformat() if item.started_at else "",
        "weights": {key: share / bandit_weights.WHOLE for key, share in equal.items()},
        "reason": "the launch: every variant equal",
    }
    stored = bandit_phases.of_experiment(item.experiment_id, bandit_weights.phase_number(item))
    return [first] + [
        {
            "phase": int(phase.phase),
            "begins": phase.begins.isoformat(),
            "weights": {key: int(share) / bandit_weights.WHOLE for key, share in phase.weights.items()},
            "reason": phase.reason,
        }
        for phase in stored
    ]


def _plan(item: ExperimentItem, spec: ExperimentFields) -> Plan:
    """Recommended exposures per variant for the group-sequential test Abacus runs (plans.py): the
    plan the latest results were tested against, or else one from the metric's baseline; once
    running, the days left at the rate so far."""
    snapshot = None
    if item.status != lifecycle.DRAFT:
        snapshot = results.latest(item.experiment_id)
    analysis: SnapshotAnalysis | None = snapshot.analysis if snapshot else None
    rows = analysis["variants"] if analysis else []
    needed = analysis.get("planned_exposures") if analysis else None
    if needed is None:
        control = next((row for row in rows if row["key"] == CONTROL), None)
        observed = None
        if control and control["exposures"] > 1:
            observed = plans.Baseline(control["mean"], control["standard_error"] * control["exposures"] ** 0.5)
        fixed = plans.fixed_horizon_exposures(
            spec.primary_metric, spec.minimum_detectable_effect, len(spec.variants), observed
        )
        needed = plans.sequential_exposures(fixed)
    days_left = _days_left(item, needed, snapshot)
    return {
        "recommended_exposures_per_variant": needed,
        "estimated_days_left": days_left.days,
        "estimated_days_left_reason": days_left.unknown_because,
    }


def _days_left(item: ExperimentItem, needed: int | None, snapshot: SnapshotItem | None) -> planning.DaysLeft:
    """Days to the planned exposures at the rate of the latest results, once they cover a full
    day of exposures; else None and why."""
    if item.status != lifecycle.RUNNING:
        why = "estimated once it has run a full day" if item.status == lifecycle.DRAFT else "it is not running"
        return planning.DaysLeft(None, why)
    if needed is None:
        return planning.DaysLeft(
            None,
            "cannot be estimated without a plan: give the primary metric a baseline, or wait for its first results",
        )
    if snapshot is None or item.started_at is None:
        return planning.DaysLeft(None, "estimated from the nightly results once it has run a full day")
    days = (snapshot.cutoff - item.started_at).total_seconds() / 86400
    return planning.days_left(needed, min(row["exposures"] for row in snapshot.analysis["variants"]), days)


def _record(item: ExperimentItem, now: datetime, action: str, details: dict[str, Any], by: str | None) -> None:
    item.updated_at = now
    item.history = [*item.history, _entry(now, action, details, by)]


def _entry(now: datetime, action: str, details: dict[str, Any], by: str | None) -> HistoryEntry:
    """A history entry: when, what, what changed, and who acted (when known)."""
    entry: HistoryEntry = {"at": now.isoformat(), "action": action}
    if details:
        entry["changes"] = details
    if by:
        entry["by"] = by
    return entry


def _save(item: ExperimentItem) -> None:
    try:
        experiments.save(item)
    except experiments.ChangedMeanwhile:
        raise Raced(
            f"experiment '{item.key}' changed meanwhile (another request): "
            f"GET /experiments/{item.key} and send the change again if it still applies"
        ) from None
    except experiments.TooLargeToStore:
        raise TooLarge(TOO_LARGE, field="body") from None
