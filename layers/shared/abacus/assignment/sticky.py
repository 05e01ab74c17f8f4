"""Deciding which variant a user sees, stickily, and recording their first exposure.

Per requested experiment: an override wins; a draft answers only overrides (for previewing); a
complete or archived experiment serves everyone its shipped variant (or control); a running one
checks its buckets of its layer and the rollout (no request for users outside them) and the
targeting (a user outside it keeps the variant they were exposed to: one GetItem), then stores
the user's first variant and first exposure with one UpdateItem. Definitions come from a short-lived cache, so in
steady state an assignment makes one DynamoDB request per experiment the user is in, and one to
find the person of the id (identity/).

A user is a person (identity/): their variant is stored, hashed and looked up under the person's
root id, whichever of their ids asks, and their stored person properties ($set) are targeted, the
request's own properties winning. A request carrying `$anon_distinct_id` (posthog-js reloading its
flags after identify) first joins that id to its distinct_id, so the person keeps the variant the
anonymous id was shown.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import JsonValue

from abacus.assignment import live_check
from abacus.assignment.spec import AssignRequest
from abacus.core import breakdowns, hashing
from abacus.core.errors import NotFound
from abacus.experiments import bandit_weights, definitions, experiment_layers, holdouts, lifecycle, targeting, units
from abacus.experiments.metrics_spec import Scalar
from abacus.experiments.spec import CONTROL, ExperimentFields
from abacus.identity import joins
from abacus.storage import assignments, persons
from abacus.storage.experiments import ExperimentItem
from abacus.storage.persons import Person

Properties = Mapping[str, Scalar | list[Scalar] | None]


def assign(project_id: str, request: AssignRequest, now: datetime) -> dict[str, str | None]:
    """{experiment key: variant, or None when the user is not in it} for the requested experiments
    (default: every running one)."""
    known = definitions.project_experiments(project_id)
    if request.experiments is None:
        chosen = [item for item in known.values() if item.status == lifecycle.RUNNING]
    else:
        missing = [key for key in request.experiments if key not in known]
        if missing:
            raise NotFound(f"no experiment keyed '{missing[0]}' in this project", field="experiments")
        chosen = [known[key] for key in dict.fromkeys(request.experiments)]
    person = person_of(project_id, request.distinct_id, request.anon_distinct_id, now)
    answer = {item.key: variant_for(project_id, item, request, now, person) for item in chosen}
    if request.exposes:
        _expose_to_holdouts(project_id, chosen, request, now, person)
    return answer


def person_of(project_id: str, distinct_id: str, anon_distinct_id: str | None, now: datetime) -> Person:
    """The person of a request's id (one eventually consistent read), joined first to
    `anon_distinct_id` when it carries one (then read strongly consistent, to see the join)."""
    if anon_distinct_id is not None and anon_distinct_id != distinct_id:
        joins.join(project_id, anon_distinct_id, distinct_id, now, anonymous=anon_distinct_id)
        return persons.person(project_id, distinct_id, consistent=True)
    return persons.person(project_id, distinct_id)


def _expose_to_holdouts(
    project_id: str, chosen: list[ExperimentItem], request: AssignRequest, now: datetime, person: Person
) -> None:
    """A user who sees an experiment a holdout covers is exposed to the holdout too (held out or
    not): that is who its results compare. One more GetItem (and a first exposure's UpdateItem)."""
    known = definitions.project_experiments(project_id).values()
    covering = {
        holdout.key: holdout
        for item in chosen
        if item.status != lifecycle.DRAFT
        for holdout in holdouts.covering(item, known)
    }
    for key, holdout in covering.items():
        if key not in {item.key for item in chosen}:
            variant_for(project_id, holdout, request, now, person)


def payloads(project_id: str, variants: Mapping[str, str | None]) -> dict[str, JsonValue]:
    """{experiment key: the payload of the user's variant, or None} for the answer of /assign."""
    known = definitions.project_experiments(project_id)
    return {key: variant_payload(known[key], variant) for key, variant in variants.items()}


def variant_payload(item: ExperimentItem, variant: str | None) -> JsonValue:
    """The payload of one of the experiment's variants (None: no variant, or none given)."""
    if variant is None:
        return None
    return next((v.payload for v in definitions.definition(item).variants if v.key == variant), None)


def stateless_variant(
    item: ExperimentItem,
    spec: ExperimentFields,
    distinct_id: str,
    properties: Properties,
    covering: Sequence[ExperimentItem] = (),
    now: datetime | None = None,
) -> str | None:
    """/assign's answer for a user it has stored nothing for (what local evaluation publishes, in
    local_evaluation.py): an override; a complete or archived experiment's served variant (control
    for a user one of the `covering` holdouts holds out); nothing from a draft; else, within its
    layer's buckets, the rollout and the targeting, control for a user held out, or the variant the
    user's hash picks (a bandit's: with its shares at `now`, default its latest phase's)."""
    if distinct_id in spec.overrides:
        return spec.overrides[distinct_id]
    if item.status in (lifecycle.COMPLETE, lifecycle.ARCHIVED):
        return CONTROL if holdouts.holding_out(covering, distinct_id) else definitions.served_variant(item)
    if item.status != lifecycle.RUNNING or not _within_its_share(item, spec, distinct_id):
        return None
    if not targeting.matches(spec.targeting, properties):
        return None
    if holdouts.holding_out(covering, distinct_id):
        return CONTROL
    return _hashed_variant(item, spec, distinct_id, now)


def _within_its_share(item: ExperimentItem, spec: ExperimentFields, distinct_id: str) -> bool:
    """In the experiment's buckets of its layer, if it has one, and in its rollout: hashes alone."""
    if spec.layer is not None and not experiment_layers.holds(item.layer_buckets, spec.layer.key, distinct_id):
        return False
    return hashing.in_rollout(item.key, distinct_id, spec.rollout_percentage)


def _hashed_variant(item: ExperimentItem, spec: ExperimentFields, distinct_id: str, now: datetime | None) -> str:
    return hashing.pick_variant(item.key, distinct_id, bandit_weights.assignment_weights(item, spec, now))


def variant_for(
    project_id: str, item: ExperimentItem, request: AssignRequest, now: datetime, person: Person | None = None
) -> str | None:
    """The variant of the request's user (`person`: theirs, found by person_of; None: the id
    alone), or of their group in a group experiment (units.py)."""
    spec = definitions.definition(item)
    covering = holdouts.covering(item, definitions.project_experiments(project_id).values())
    root = person.root if person is not None else request.distinct_id
    if request.distinct_id in spec.overrides:  # answered, never stored: no exposure (exposures.py)
        return spec.overrides[request.distinct_id]
    found = units.unit_of(spec, root, request.groups)
    if found is None:
        return None  # a group experiment, and no group of its type: no variant, as PostHog answers
    unit, hashed = found
    properties = _targeted_properties(spec, request, person)
    if unit in spec.overrides or item.status != lifecycle.RUNNING or not _within_its_share(item, spec, hashed):
        return stateless_variant(item, spec, hashed, properties, covering)
    partition = item.assignment_partition(unit)
    # Read first: a returning user (most calls) costs one eventually consistent read, no write. A
    # stale read is safe: the write below stores nothing a racing call stored first.
    stored = assignments.get(partition, unit)
    if stored is not None and stored.exposed_at is not None:
        # Sticky: an exposed user keeps their variant, whatever this request's properties or a
        # changed targeting say (leaving would bias the results).
        return stored.variant
    if not targeting.matches(spec.targeting, properties):
        return None  # never exposed, and outside the targeting: out
    if holdouts.holding_out(covering, hashed):
        return CONTROL  # held out: control, never stored, never an exposure (exposures.py)
    if stored is not None and not request.exposes:
        return stored.variant
    return _store_assignment(project_id, item, spec, partition, found, properties, request.exposes, now)


def _targeted_properties(spec: ExperimentFields, request: AssignRequest, person: Person | None) -> Properties:
    """What the targeting sees: a group's properties in a group experiment; else the person's
    stored properties with the request's own over them."""
    if spec.group_type is not None:
        return request.group_properties.get(spec.group_type, {})
    return {**person.properties, **request.properties} if person is not None else request.properties


def _store_assignment(
    project_id: str,
    item: ExperimentItem,
    spec: ExperimentFields,
    partition: str,
    unit: units.Unit,
    properties: Properties,
    expose: bool,
    now: datetime,
) -> str:
    """The unit's variant, stored unless it has one, and with `expose` its first exposure."""
    variant = _hashed_variant(item, spec, unit.hashed, now)
    values = breakdowns.values_of(spec.breakdowns, properties) if spec.breakdowns else None
    stored = assignments.assign(partition, unit.stored_as, variant, now, expose, values)
    if expose and stored.exposed_at == now:  # this call's own time: it set the first exposure
        live_check.record_first_exposure(item, stored.variant, now)
        if spec.group_type is None:
            # The id was the person's root when read; if a join took it meanwhile, the exposure moves on.
            joins.settle(project_id, [(item, unit.stored_as)], now)
    return stored.variant
