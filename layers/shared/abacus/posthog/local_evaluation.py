"""PostHog's local evaluation: a project's running and complete experiments described as PostHog
multivariate flags, which PostHog's server SDKs poll (every 30 s by default) and evaluate
in-process with the same hashing as /assign (hashing.py).

The translation keeps every answer the same as /assign's for a user not yet exposed:
- overrides come first, one condition group per variant: `distinct_id` in the ids, rollout 100;
- then one group per targeting group (OR), its conditions as person property filters (AND), each
  carrying the experiment's rollout (PostHog checks a rollout per group, Abacus one per
  experiment: the same hash, so the same users); no targeting is one group with no filters;
- a complete experiment serves its shipped variant (else control) to everyone: one group whose
  variant is fixed;
- a running holdout's users held out get control from every experiment it covers (holdouts.py):
  before each group, the same group with a dependency on the holdout's flag evaluating to control;
- an experiment in a layer adds to each group a dependency on the layer's flag, published beside
  it: a multivariate flag whose variants are the layer's segments, so that it evaluates to the
  experiment's key exactly for users in the experiment's buckets (experiment_layers.py).

Operators: eq -> exact [v], neq -> is_not [v], in -> exact, not_in -> is_not, contains ->
icontains, gt/gte/lt/lte -> the same with a number, is_set -> is_set. What the SDK would evaluate
differently is not translated: is_not_set (the SDK cannot tell a property not sent, and calls a
null one set), a numeric comparison with a value that is not a number (Abacus then compares text,
the SDK never matches) and a condition on `distinct_id` (the SDK fills it in with the user's id).
Such an experiment is published with `ensure_experience_continuity`, which makes the SDK ask the
server (/flags/) for it, so its answer is never a different one; `evaluated_by_the_server` lists
them with the reason. So is every running experiment of a project whose ids have been joined
into persons ($identify, aliases: identity/), since a person keeps the variant of their first
exposure under every id, which only the server knows.

A bandit (experiments/bandit_weights.py) publishes its latest shares as its variants' rollout
percentages; once a reweighting has moved them it is published with `ensure_experience_continuity`
too, and listed in `evaluated_by_the_server`: its shares are exact for new users, but a user
exposed in an earlier phase keeps that phase's variant.

A group experiment (`group_type`) is a group flag: `aggregation_group_type_index` in its filters,
the document's `group_type_mapping` naming the type, and the SDK hashes the group's key.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from abacus.experiments import bandit_weights, experiment_layers, holdouts, lifecycle
from abacus.experiments.definitions import definition, served_variant
from abacus.experiments.metrics_spec import Condition
from abacus.experiments.spec import CONTROL, ExperimentFields, payload_text
from abacus.storage.experiments import ExperimentItem
from abacus.storage.layer_allocations import Ranges

PUBLISHED = (lifecycle.RUNNING, lifecycle.COMPLETE)
# Once a project's ids are joined into persons, a running experiment's variant for an id may be the
# one its person was given under another id (stored under the person's root id): only the server
# knows, so the SDKs ask it (PostHog's experience continuity).
PERSONS = "ids of this project are joined into persons: a person keeps their first exposure's variant under every id"
_OPERATORS = {"eq": "exact", "neq": "is_not", "in": "exact", "not_in": "is_not", "contains": "icontains"}
_NUMERIC = ("gt", "gte", "lt", "lte")
# What the SDKs take for a number (posthog-python's _NUMERIC_STRING_PATTERN): Python's float()
# also takes " 1", "1_0", "inf" and "nan".
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


RESHARED = (
    "a bandit that has moved its shares: a user exposed earlier keeps their variant, which their hash may no "
    "longer give (its current shares are published)"
)


class NotExpressible(ValueError):
    """A definition the SDKs would evaluate differently from /assign."""


def definitions(items: Iterable[ExperimentItem], persons_joined: bool = False) -> dict[str, Any]:
    """The answer to the SDKs' definitions poll, for a project's experiments (`persons_joined`:
    whether ids of the project have been joined into persons, identity/)."""
    published = sorted((item for item in items if item.status in PUBLISHED), key=lambda item: item.key)
    group_types = sorted({t for item in published if (t := definition(item).group_type) is not None})
    type_index = {group_type: index for index, group_type in enumerate(group_types)}
    flags, server_only = _layer_flags(published), []
    for item in published:
        try:
            if persons_joined and item.status == lifecycle.RUNNING and definition(item).group_type is None:
                raise NotExpressible(PERSONS)
            flags.append(flag(item, holdouts.covering(item, published), type_index))
            if bandit_weights.may_differ_locally(item, definition(item)):
                server_only.append({"key": item.key, "reason": RESHARED})
        except NotExpressible as reason:
            flags.append(_server_evaluated(item))
            server_only.append({"key": item.key, "reason": str(reason)})
    # property_matching_version 2: exact compares text only ("false" is not "anything not true").
    return {
        "flags": flags,
        "group_type_mapping": {str(index): group_type for group_type, index in type_index.items()},
        "cohorts": {},
        "property_matching_version": 2,
        "evaluated_by_the_server": server_only,
    }


def etag(document: dict[str, Any]) -> str:
    """A strong ETag of the document: the same definitions, the same tag, on every instance."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def not_modified(if_none_match: str | None, current: str) -> bool:
    """Whether an If-None-Match header names the current ETag (weak or strong, or `*`)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or current in tags


def flag(
    item: ExperimentItem, covering: Sequence[ExperimentItem] = (), type_index: dict[str, int] | None = None
) -> dict[str, Any]:
    """One experiment as a PostHog flag (NotExpressible when the SDKs would evaluate it
    differently), the users the `covering` holdouts hold out given control; a group experiment as
    a group flag, with its type's index in the document's `group_type_mapping` (`type_index`)."""
    spec = definition(item)
    if spec.group_type is not None:
        return _group_flag(item, spec, (type_index or {})[spec.group_type])
    if item.status == lifecycle.COMPLETE:
        everyone: dict[str, Any] = {"properties": [], "rollout_percentage": 100, "variant": None}
        groups = [*_held_out(everyone, covering), {**everyone, "variant": served_variant(item)}]
    else:
        groups = [group for each in _targeting_groups(item.key, spec) for group in (*_held_out(each, covering), each)]
    return _flag(item, spec, {"groups": _override_groups(spec) + groups})


def _group_flag(item: ExperimentItem, spec: ExperimentFields, index: int) -> dict[str, Any]:
    """A group experiment as PostHog's group flag: the SDK hashes the group's key, as /assign does
    (units.py). Its targeting and overrides name a person's properties and ids, which a group flag
    cannot test: with either, it is evaluated by the server."""
    if spec.targeting or spec.overrides:
        raise NotExpressible("a group experiment's targeting and overrides are evaluated by the server")
    if item.status == lifecycle.COMPLETE:
        group = {"properties": [], "rollout_percentage": 100, "variant": served_variant(item)}
    else:
        group = {"properties": [], "rollout_percentage": spec.rollout_percentage, "variant": None}
    published = _flag(item, spec, {"groups": [group]})
    published["filters"]["aggregation_group_type_index"] = index
    return published


def _held_out(group: dict[str, Any], covering: Sequence[ExperimentItem]) -> list[dict[str, Any]]:
    """The group's users each holdout holds out (its flag evaluating to control): control."""
    return [
        {**group, "properties": [*group["properties"], _evaluates_to(holdout.key, CONTROL)], "variant": CONTROL}
        for holdout in covering
    ]


def _layer_flags(items: list[ExperimentItem]) -> list[dict[str, Any]]:
    """A flag per layer of the running experiments: its variants are the layer's segments, each
    named after the experiment holding it (experiment_layers.FREE when none does), so that an experiment's
    conditions can require the layer flag to evaluate to its key."""
    allocations: dict[str, dict[str, Ranges]] = {}
    for item in items:
        spec = definition(item)
        if item.status == lifecycle.RUNNING and spec.layer is not None:
            allocations.setdefault(spec.layer.key, {})[item.key] = item.layer_buckets or []
    return [
        {
            "id": None,
            "key": experiment_layers.flag_key(layer_key),
            "name": f"Layer {layer_key} (Abacus: which experiment of the layer a user may be in)",
            "active": True,
            "deleted": False,
            "ensure_experience_continuity": False,
            "filters": {
                "groups": [{"properties": [], "rollout_percentage": 100, "variant": None}],
                "multivariate": {
                    "variants": [
                        {"key": owner, "rollout_percentage": size} for owner, size in experiment_layers.segments(held)
                    ]
                },
                "payloads": {},
            },
        }
        for layer_key, held in sorted(allocations.items())
    ]


def _server_evaluated(item: ExperimentItem) -> dict[str, Any]:
    spec = definition(item)
    return {**_flag(item, spec, {"groups": []}), "ensure_experience_continuity": True}


def _flag(item: ExperimentItem, spec: ExperimentFields, filters: dict[str, Any]) -> dict[str, Any]:
    """A bandit publishes its latest shares; once it has moved them, an exposed user's stored
    variant may differ from what their hash gets now, so the SDK asks the server (continuity)."""
    weights = bandit_weights.assignment_weights(item, spec, None)
    variants = [{"key": key, "name": key, "rollout_percentage": weight} for key, weight in weights]
    return {
        "id": None,
        "key": item.key,
        "name": spec.name,
        "active": True,
        "deleted": False,
        "ensure_experience_continuity": bandit_weights.may_differ_locally(item, spec),
        "version": item.version,
        "filters": {**filters, "multivariate": {"variants": variants}, "payloads": _payloads(spec)},
    }


def _payloads(spec: ExperimentFields) -> dict[str, str]:
    """{variant: its payload as a JSON document in a string}, as PostHog's definitions carry them."""
    return {v.key: payload_text(v.payload) for v in spec.variants if v.payload is not None}


def _override_groups(spec: ExperimentFields) -> list[dict[str, Any]]:
    by_variant: dict[str, list[str]] = {}
    for distinct_id, variant in spec.overrides.items():
        by_variant.setdefault(variant, []).append(distinct_id)
    return [
        {
            "properties": [{"key": "distinct_id", "type": "person", "operator": "exact", "value": ids}],
            "rollout_percentage": 100,
            "variant": variant,
        }
        for variant, ids in by_variant.items()
    ]


def _targeting_groups(key: str, spec: ExperimentFields) -> list[dict[str, Any]]:
    rollout = spec.rollout_percentage
    # In a layer: only users of its buckets, the layer flag evaluating to this experiment's key.
    in_layer = [_in_layer(key, spec.layer.key)] if spec.layer is not None else []
    if not spec.targeting:
        return [{"properties": in_layer, "rollout_percentage": rollout, "variant": None}]
    return [
        {
            "properties": [*in_layer, *(_property(c) for c in group.conditions)],
            "rollout_percentage": rollout,
            "variant": None,
        }
        for group in spec.targeting
    ]


def _in_layer(key: str, layer_key: str) -> dict[str, Any]:
    return _evaluates_to(experiment_layers.flag_key(layer_key), key)


def _evaluates_to(flag_key: str, value: str) -> dict[str, Any]:
    """A PostHog flag dependency: the flag `flag_key` evaluates to `value` for the user."""
    return {
        "key": flag_key,
        "type": "flag",
        "operator": "flag_evaluates_to",
        "value": value,
        "dependency_chain": [flag_key],
    }


def _property(condition: Condition) -> dict[str, Any]:
    """A targeting condition as a PostHog person property filter."""
    if condition.property == "distinct_id":
        raise NotExpressible("targeting on 'distinct_id': the SDKs fill it in with the user's id")
    operator = condition.operator
    if operator == "is_not_set":
        raise NotExpressible("targeting with is_not_set: the SDKs cannot tell a property that was not sent")
    if operator == "is_set":
        return {"key": condition.property, "type": "person", "operator": "is_set", "value": "is_set"}
    if operator in _NUMERIC:
        if not _is_number(condition.value):
            raise NotExpressible(
                f"targeting with {operator} '{condition.value}': not a number, which Abacus compares as text"
            )
        return {"key": condition.property, "type": "person", "operator": operator, "value": condition.value}
    # exact and is_not take a list (any of), icontains one text.
    value = condition.value if operator == "contains" or isinstance(condition.value, list) else [condition.value]
    return {"key": condition.property, "type": "person", "operator": _OPERATORS[operator], "value": value}


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == value and abs(value) != float("inf")
    return isinstance(value, str) and _NUMBER_TEXT.fullmatch(value) is not None
