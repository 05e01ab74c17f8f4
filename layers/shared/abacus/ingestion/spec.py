"""The request body of POST /events (validated at the edge by Powertools, with pydantic), and each
event's own schema and limits, which ingest checks one event at a time."""

import json
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictInt, field_validator

from abacus.assignment.spec import DistinctId
from abacus.experiments.metrics_spec import Strict


class EventSpec(Strict):
    """One event of a batch; validated one by one so that a bad event rejects only itself."""

    model_config = ConfigDict(extra="ignore")
    uuid: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    event: Annotated[str, Field(min_length=1, max_length=200)]
    distinct_id: DistinctId
    timestamp: StrictInt | str | None = None
    properties: dict[str, Any] | None = None

    @field_validator("properties")
    @classmethod
    def properties_fit_storage(cls, properties: dict[str, Any] | None) -> dict[str, Any] | None:
        # An event is one DynamoDB item (at most 400 KB), and deep nesting serves no metric.
        if properties is not None:
            if _depth(properties) > MAX_PROPERTIES_DEPTH:
                raise ValueError(f"nested deeper than {MAX_PROPERTIES_DEPTH} levels")
            if len(json.dumps(properties)) > MAX_PROPERTIES_BYTES:
                raise ValueError(f"larger than {MAX_PROPERTIES_BYTES // 1024} KB")
        return properties


MAX_PROPERTIES_DEPTH = 32
MAX_PROPERTIES_BYTES = 64 * 1024


def _depth(value: object) -> int:
    """How deeply lists and objects nest in `value` (iteratively: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            if deepest > MAX_PROPERTIES_DEPTH:
                break
            stack.extend((child, depth + 1) for child in children)
    return deepest


class EventBatch(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "phc_project_token",
                    "events": [
                        {"uuid": "0f6c1c1e-purchase-42", "event": "purchase", "distinct_id": "user-42"},
                        {"event": "purchase", "distinct_id": "user-7", "properties": {"amount": 30}},
                    ],
                }
            ]
        }
    )
    token: Annotated[str, Field(min_length=1, max_length=200)]
    events: Annotated[list[Any], Field(min_length=1)]  # at most 1,000: more is a 413, checked at ingest
