"""Deciding which variant a user sees, stickily, and recording their first exposure."""

from datetime import datetime

from abacus import hashing, keys, lifecycle
from abacus.errors import NotFound
from abacus.schemas import CONTROL, AssignRequest
from abacus.storage import assignments
from abacus.storage import experiments as experiment_store
from abacus.storage.experiments import ExperimentItem


def assign(project_id: str, request: AssignRequest, now: datetime) -> dict[str, str | None]:
    """{experiment key: variant, or None when the user is not in it} for the requested experiments
    (default: every running one). Running experiments store the first variant and exposure."""
    if request.experiments is None:
        experiments = experiment_store.running_in_project(project_id)
    else:
        experiments = [_experiment(project_id, key) for key in dict.fromkeys(request.experiments)]
    return {item.key: _variant_for(project_id, item, request, now) for item in experiments}


def _experiment(project_id: str, key: str) -> ExperimentItem:
    item = experiment_store.get(project_id, key)
    if item is None:
        raise NotFound(f"no experiment keyed '{key}' in this project", field="experiments")
    return item


def _variant_for(project_id: str, item: ExperimentItem, request: AssignRequest, now: datetime) -> str | None:
    if item.status == lifecycle.COMPLETE:
        return CONTROL
    if item.status != lifecycle.RUNNING:
        return None
    split = [(variant.key, int(variant.weight)) for variant in item.variants]
    variant = hashing.pick_variant(item.key, request.distinct_id, split)
    stored = assignments.assign(
        keys.experiment_id(project_id, item.key), request.distinct_id, variant, now, expose=request.expose
    )
    return stored.variant
