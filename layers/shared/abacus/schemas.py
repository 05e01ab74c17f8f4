"""The API's request bodies, validated at the edge by Powertools (pydantic)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
VARIANT_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CONTROL = "control"

Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="lowercase letters, digits, '-' and '_'")]
DistinctId = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantSpec(Strict):
    key: Annotated[str, Field(pattern=VARIANT_KEY_PATTERN)]
    weight: Annotated[StrictInt, Field(ge=0, le=100)]


class MetricSpec(Strict):
    event: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["conversion"] = "conversion"
    window_days: Annotated[StrictInt, Field(ge=1, le=90)] = 14


class ExperimentCreate(Strict):
    key: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    variants: Annotated[list[VariantSpec], Field(min_length=2, max_length=10)]
    primary_metric: MetricSpec
    # The smallest relative lift worth detecting: it sizes the sample and tunes the sequential test.
    minimum_detectable_effect: Annotated[float, Field(gt=0, le=10)] = 0.05

    @field_validator("variants")
    @classmethod
    def variants_are_a_split(cls, variants: list[VariantSpec]) -> list[VariantSpec]:
        keys = [variant.key for variant in variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be unique")
        if keys.count(CONTROL) != 1:
            raise ValueError(f"exactly one variant must be keyed '{CONTROL}'")
        total = sum(variant.weight for variant in variants)
        if total != 100:
            raise ValueError(f"variant weights must sum to 100, not {total}")
        return variants


class AssignRequest(Strict):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    distinct_id: DistinctId
    experiments: Annotated[list[Slug] | None, Field(max_length=100)] = None
    expose: StrictBool = True


class EventSpec(Strict):
    """One event of a batch; validated one by one so that a bad event rejects only itself."""

    model_config = ConfigDict(extra="ignore")
    uuid: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    event: Annotated[str, Field(min_length=1, max_length=200)]
    distinct_id: DistinctId
    timestamp: StrictInt | str | None = None
    properties: dict | None = None


class EventBatch(Strict):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    events: Annotated[list[Any], Field(min_length=1, max_length=1000)]
