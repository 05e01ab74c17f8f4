"""Creating experiments and moving them through their stages."""

from datetime import datetime

from abacus import lifecycle
from abacus.errors import Conflict, NotFound
from abacus.schemas import ExperimentCreate
from abacus.storage import experiments as store
from abacus.storage.experiments import ExperimentItem, MetricAttribute, VariantAttribute


def create(project_id: str, spec: ExperimentCreate, now: datetime) -> ExperimentItem:
    item = ExperimentItem(
        project_id,
        spec.key,
        name=spec.name,
        status=lifecycle.DRAFT,
        variants=[VariantAttribute(key=v.key, weight=v.weight) for v in spec.variants],
        primary_metric=MetricAttribute(**spec.primary_metric.model_dump()),
        minimum_detectable_effect=spec.minimum_detectable_effect,
        created_at=now,
    )
    try:
        store.insert(item)
    except store.AlreadyExists:
        raise Conflict(f"an experiment keyed '{spec.key}' already exists in this project", field="key") from None
    return item


def get(project_id: str, key: str) -> ExperimentItem:
    item = store.get(project_id, key)
    if item is None:
        raise NotFound(f"no experiment keyed '{key}' in this project", field="key")
    return item


def apply(project_id: str, key: str, action: str, now: datetime) -> ExperimentItem:
    """Applies a lifecycle action ('launch', 'stop'); 409 when the stage does not allow it."""
    item = get(project_id, key)
    new_status = lifecycle.next_status(item.status, action)
    try:
        store.change_status(item, expected=item.status, new=new_status, at=now)
    except store.StatusChanged:
        raise Conflict(f"experiment '{key}' changed stage meanwhile; fetch it and try again") from None
    return item


def to_api(item: ExperimentItem) -> dict:
    return {
        "key": item.key,
        "name": item.name,
        "status": item.status,
        "variants": [{"key": v.key, "weight": int(v.weight)} for v in item.variants],
        "primary_metric": {
            "event": item.primary_metric.event,
            "kind": item.primary_metric.kind,
            "window_days": int(item.primary_metric.window_days),
        },
        "minimum_detectable_effect": float(item.minimum_detectable_effect),
        "created_at": item.created_at.isoformat(),
        "started_at": item.started_at.isoformat() if item.started_at else None,
        "stopped_at": item.stopped_at.isoformat() if item.stopped_at else None,
    }
