"""A layer's allocations, kept in the projects table: `layer#<project>#<layer key>` holds which
running experiment holds which buckets (experiments/experiment_layers.py), with a version.

A launch or a completion in a layer writes the allocations and the experiment in one DynamoDB
transaction, each conditional on its version: two experiments launching into the same layer at
once cannot both take the same buckets, and neither write happens without the other.
"""

from pynamodb.attributes import JSONAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from abacus.core.settings import settings
from abacus.storage.base import TableMeta, condition_failed, delete_each
from abacus.storage.experiments import ChangedMeanwhile, ExperimentItem

Ranges = list[list[int]]  # [[first bucket, bucket after the last], ...]


class LayerItem(Model):
    class Meta(TableMeta):
        table_name = settings.projects_table

    pk = UnicodeAttribute(hash_key=True)
    # {experiment key: [[first bucket, end], ...]} for the layer's running experiments.
    allocations = JSONAttribute(default=dict)
    version = VersionAttribute()


def _pk(project_id: str, layer_key: str) -> str:
    return f"layer#{project_id}#{layer_key}"


def get(project_id: str, layer_key: str) -> LayerItem:
    """The layer's allocations (strongly consistent: a launch decides from them), or a new item."""
    try:
        return LayerItem.get(_pk(project_id, layer_key), consistent_read=True)
    except DoesNotExist:
        return LayerItem(_pk(project_id, layer_key), allocations={})


def save_with(layer: LayerItem, experiment: ExperimentItem) -> None:
    """Writes the layer's allocations and the experiment together, or neither (ChangedMeanwhile
    when either changed since it was read)."""
    connection = Connection(
        region=TableMeta.region,
        read_timeout_seconds=TableMeta.read_timeout_seconds,
        connect_timeout_seconds=TableMeta.connect_timeout_seconds,
        max_retry_attempts=TableMeta.max_retry_attempts,
    )
    try:
        with TransactWrite(connection=connection) as transaction:
            transaction.save(layer)
            transaction.save(experiment)
    except TransactWriteError as error:
        if condition_failed(error):
            raise ChangedMeanwhile(experiment.key) from error
        raise


def allocations_of(layer: LayerItem) -> dict[str, Ranges]:
    return dict(layer.allocations or {})


def delete(project_id: str, layer_keys: set[str]) -> int:
    """Deletes a project's layers (with the project)."""
    return delete_each(LayerItem, [LayerItem(_pk(project_id, key)) for key in sorted(layer_keys)])
