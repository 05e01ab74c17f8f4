"""The API's request bodies, validated at the edge by Powertools (pydantic)."""

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from abacus.core import event_properties
from abacus.core.breakdowns import MAX_BREAKDOWNS
from abacus.core.keys import PATTERN_WORDS, SLUG_PATTERN, VARIANT_KEY_PATTERN

CONTROL = "control"


def _whole_number(value: object) -> object:
    """JSON has one number type: 73.0 is the integer 73 (as JSON Schema's "integer" says), while
    1.5, "73" and true are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer, written 73 or 73.0; StrictInt refuses strings and booleans.
WholeNumber = Annotated[StrictInt, BeforeValidator(_whole_number)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description=PATTERN_WORDS[SLUG_PATTERN])]
DistinctId = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


MAX_PAYLOAD_BYTES = 4096


class VariantSpec(Strict):
    key: Annotated[str, Field(pattern=VARIANT_KEY_PATTERN)]
    weight: Annotated[WholeNumber, Field(ge=0, le=100)]
    payload: JsonValue = Field(
        default=None,
        description="Any JSON the app reads for this variant (a button's text, a price, a layout), at most 4 KB: "
        "returned by /assign with `payloads: true`, by /flags/ (PostHog's get_feature_flag_payload) and in the "
        "local evaluation definitions. Frozen while running, like the variants.",
    )

    @field_validator("payload")
    @classmethod
    def payload_fits(cls, payload: JsonValue) -> JsonValue:
        size = len(payload_text(payload).encode()) if payload is not None else 0
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"at most {MAX_PAYLOAD_BYTES:,} bytes as JSON, not {size:,}")
        return payload


def payload_text(payload: JsonValue) -> str:
    """A payload as PostHog's APIs carry it: a JSON document in a string."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _ratio_problems(metric: "MetricSpec") -> list[str]:
    problems = []
    if metric.numerator is None or metric.denominator is None:
        problems.append("a ratio metric takes a numerator and a denominator, each a count or sum metric")
    # Compared with the defaults, not the fields given: a stored definition gives every field.
    defaults: dict[str, object] = {
        "event": None,
        "property": None,
        "filters": [],
        "cap": None,
        "window_days": 14,
        "baseline": None,
    }
    given = [name for name, default in defaults.items() if getattr(metric, name) != default]
    if given:
        problems.append(f"a ratio takes no {', '.join(given)}: give them to its numerator and denominator")
    for name, part in (("numerator", metric.numerator), ("denominator", metric.denominator)):
        if part is not None and part.kind not in ("count", "sum"):
            problems.append(f"{name}: a count or sum metric, not {part.kind}")
        elif part is not None and part.cap is not None and part.cap.percentile is not None:
            problems.append(f"{name}: a ratio's parts take a cap value, not a percentile")
    if metric.numerator is not None and metric.numerator == metric.denominator:
        problems.append("the denominator is the numerator itself: the ratio would always be 1")
    return problems


def _funnel_problems(metric: "MetricSpec") -> list[str]:
    problems = []
    if metric.steps is None:
        problems.append(f"a funnel metric takes steps: 2 to {MAX_FUNNEL_STEPS} events, in the order users do them")
    given = [name for name in ("event", "property", "cap", "baseline_mean", "baseline_sd") if getattr(metric, name)]
    if metric.filters:
        given.append("filters")
    if given:
        problems.append(f"a funnel takes no {', '.join(given)}: give each step its event and filters")
    return problems


def components(metrics: list["MetricSpec"]) -> list["MetricSpec"]:
    """The metrics each user has a value of: a ratio's numerator and denominator, the others
    themselves. The nightly job stores users' values, and sums them, per component."""
    return [part for metric in metrics for part in metric.components()]


Scalar = StrictBool | StrictInt | float | str


class Condition(Strict):
    """One test of a property sent with an assignment."""

    property: Annotated[str, Field(min_length=1, max_length=200)]
    operator: Literal["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "is_set", "is_not_set"]
    value: Scalar | Annotated[list[Scalar], Field(max_length=100)] | None = None

    @model_validator(mode="after")
    def value_fits_the_operator(self) -> "Condition":
        if self.operator in ("is_set", "is_not_set"):
            if self.value is not None:
                raise ValueError(f"'{self.operator}' takes no value")
        elif self.operator in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"'{self.operator}' takes a non-empty list")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"'{self.operator}' takes one value")
        elif self.operator in ("gt", "gte", "lt", "lte") and isinstance(self.value, bool):
            raise ValueError(f"'{self.operator}' takes a number or a string")
        return self


class EventFilter(Condition):
    """A condition on an event's properties: a metric counts only the events that meet all of
    its filters. A property Abacus never stores (event_properties.py) is refused: it would never
    match."""

    @field_validator("property")
    @classmethod
    def stored(cls, name: str) -> str:
        if not event_properties.is_stored(name):
            raise ValueError(f"{event_properties.why_not_stored(name)}: a filter on it would never match")
        return name


Filters = Annotated[list[EventFilter], Field(max_length=20)]


class Cap(Strict):
    """A cap on each user's value of a count or sum metric, so that one customer's bulk order
    cannot swing the test: `value`, or the `percentile` of the experiment's exposed users' values
    above 0 (all variants together, computed each night; a value of 0 or below is never lowered,
    and does not set it): the same cap for every variant."""

    value: Annotated[float, Field(gt=0)] | None = None
    percentile: Annotated[float, Field(ge=0.5, lt=1)] | None = None

    @model_validator(mode="after")
    def one_kind(self) -> "Cap":
        if (self.value is None) == (self.percentile is None):
            raise ValueError("give either value (the cap itself) or percentile (for example 0.99)")
        return self


class FunnelStep(Strict):
    """One step of a funnel: an event, counted only when its properties meet every filter."""

    event: Annotated[str, Field(min_length=1, max_length=200)]
    filters: Filters = []


MAX_FUNNEL_STEPS = 5


class MetricSpec(Strict):
    """What counts after a user's first exposure, within `window_days`: `conversion` (did the
    event at least once), `count` (how many times), `sum` (of the numeric `property`), of the
    events that meet every one of the `filters`; `funnel`: did the user do its `steps` in order;
    or `ratio`: per variant, the sum of its users' `numerator` over the sum of their
    `denominator` (each a count or sum metric)."""

    event: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    kind: Literal["conversion", "count", "sum", "ratio", "funnel"] = "conversion"
    property: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    window_days: Annotated[WholeNumber, Field(ge=1, le=90)] = 14
    # Only the events that meet every filter count (none: every event of the name).
    filters: Filters = []
    cap: Cap | None = None
    numerator: "MetricSpec | None" = None
    denominator: "MetricSpec | None" = None
    # A funnel's steps, 2 to 5, done in this order within the window (the same time may do two).
    steps: Annotated[list[FunnelStep], Field(min_length=2, max_length=MAX_FUNNEL_STEPS)] | None = None
    # Expected values before the experiment, for planning: a rate for conversion metrics, a
    # per-user mean and standard deviation for count and sum metrics.
    baseline: Annotated[float, Field(gt=0, lt=1)] | None = None
    baseline_mean: float | None = None
    baseline_sd: Annotated[float, Field(gt=0)] | None = None

    def components(self) -> list["MetricSpec"]:
        """The metrics whose per-user values this one is made of: a ratio's two; a funnel's
        first step, its first two steps, ..., all its steps (each user's value of each: did they
        get that far); else itself."""
        if self.kind == "ratio" and self.numerator is not None and self.denominator is not None:
            return [self.numerator, self.denominator]
        if self.kind == "funnel" and self.steps is not None:
            # Copies are not validated: a funnel as far as its first step has one.
            reached = range(1, len(self.steps) + 1)
            return [self.model_copy(update={"steps": self.steps[:count]}) for count in reached]
        return [self]

    def event_names(self) -> set[str]:
        """The names of the events this metric's values are counted from."""
        names = {step.event for step in self.steps or []}
        names.update(part.event for part in (self.numerator, self.denominator, self) if part and part.event)
        return names

    @model_validator(mode="after")
    def a_ratio_of_two_counts_or_sums(self) -> "MetricSpec":
        if self.kind == "ratio":
            _refuse(_ratio_problems(self))
        elif self.numerator is not None or self.denominator is not None:
            raise ValueError("only a ratio metric takes a numerator and a denominator")
        elif self.kind == "funnel":
            _refuse(_funnel_problems(self))
        elif self.steps is not None:
            raise ValueError("only a funnel metric takes steps")
        elif self.event is None:
            raise ValueError("event: a metric counts an event (or is a ratio of two metrics, or a funnel of steps)")
        return self

    @model_validator(mode="after")
    def property_fits_the_kind(self) -> "MetricSpec":
        if self.kind in ("ratio", "funnel"):
            return self
        problems = []
        if self.kind == "sum" and self.property is None:
            problems.append("a sum metric needs the property to sum")
        if self.kind != "sum" and self.property is not None:
            problems.append("only a sum metric takes a property")
        if self.kind == "conversion" and (self.baseline_mean is not None or self.baseline_sd is not None):
            problems.append("a conversion metric's baseline is a rate: use baseline")
        if self.kind != "conversion" and self.baseline is not None:
            problems.append(f"a {self.kind} metric's baseline is baseline_mean and baseline_sd")
        if self.kind == "conversion" and self.cap is not None:
            problems.append("a conversion metric takes no cap: each user's value is 0 or 1")
        _refuse(problems)
        return self


class TargetingGroup(Strict):
    """Conditions combined with AND; groups are combined with OR."""

    conditions: Annotated[list[Condition], Field(min_length=1, max_length=20)]


Targeting = Annotated[list[TargetingGroup], Field(max_length=20)]
Overrides = Annotated[dict[Annotated[str, Field(min_length=1, max_length=200)], str], Field(max_length=1000)]
Text = Annotated[str, Field(max_length=5000)]


def _refuse(problems: list[str]) -> None:
    """Independent checks of one value: ValueError saying every one that failed."""
    if problems:
        raise ValueError("; ".join(problems))


class GuardrailSpec(MetricSpec):
    """A metric a treatment must not make worse: by more than `margin` (relative: 0.02 allows 2%)
    in its bad direction (`increase` for errors, latency, unsubscribes; `decrease` for, say,
    retention)."""

    margin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    bad_direction: Literal["increase", "decrease"] = "increase"


def check_split(variants: list[VariantSpec]) -> list[VariantSpec]:
    keys = [variant.key for variant in variants]
    problems = []
    if len(set(keys)) != len(keys):
        problems.append("keys must be unique")
    if keys.count(CONTROL) != 1:
        problems.append(f"exactly one must be keyed '{CONTROL}'")
    total = sum(variant.weight for variant in variants)
    if total != 100:
        problems.append(f"weights must sum to 100, not {total}")
    _refuse(problems)
    return variants


PropertyName = Annotated[str, Field(min_length=1, max_length=200)]


def _breakdowns_stored(names: list[str]) -> list[str]:
    problems = [
        f"{event_properties.why_not_stored(name)}: a breakdown by it would have no values"
        for name in names
        if not event_properties.is_stored(name)
    ]
    if len(set(names)) != len(names):
        problems.append("each property once")
    _refuse(problems)
    return names


# Properties users are broken down by: their values at the first exposure (breakdowns.py).
Breakdowns = Annotated[list[PropertyName], Field(max_length=MAX_BREAKDOWNS), AfterValidator(_breakdowns_stored)]


class LayerSpec(Strict):
    """A layer the experiment shares with others that must not share users: it takes `share`
    percent of the layer's users (a layer-level hash), buckets no running experiment of the layer
    holds, at its launch."""

    key: Annotated[str, Field(pattern=SLUG_PATTERN, description="The layer: any slug, the same for its experiments")]
    share: Annotated[WholeNumber, Field(ge=1, le=100, description="Percent of the layer's users it takes")]


class HoldoutSpec(Strict):
    """This experiment is a holdout: while it runs, its `control` share of the users gets control
    in every other experiment of the project (or of `layer`), so its results measure what they
    shipped, together."""

    layer: Annotated[str | None, Field(pattern=SLUG_PATTERN, description="Only this layer's experiments")] = None


def _holdout_problems(fields: dict[str, Any]) -> list[str]:
    """What a holdout may not have: it holds out users by its own hash alone."""
    problems = []
    if len(fields.get("variants") or [None, None]) != 2:
        problems.append("variants: a holdout has two, control (the users held out) and one for everyone else")
    for name, empty in (("targeting", []), ("overrides", {}), ("layer", None)):
        if fields.get(name, empty) != empty:
            problems.append(f"{name}: a holdout takes none (it covers every user of its scope)")
    if fields.get("rollout_percentage", 100) != 100:
        problems.append("rollout_percentage: a holdout covers every user (100)")
    return problems


class ExperimentFields(Strict):
    """Everything about an experiment but its key: what POST sets and PATCH changes."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Text = ""
    hypothesis: Text = ""
    variants: Annotated[list[VariantSpec], Field(min_length=2, max_length=10)]
    rollout_percentage: Annotated[float, Field(ge=0, le=100)] = 100
    targeting: Targeting = []
    overrides: Overrides = {}
    # Mutually exclusive experiments: a user is in at most one running experiment of a layer.
    layer: LayerSpec | None = None
    # A holdout: its control share gets control in every experiment of its scope while it runs.
    holdout: HoldoutSpec | None = None
    primary_metric: MetricSpec
    secondary_metrics: Annotated[list[MetricSpec], Field(max_length=10)] = []
    # Metrics a treatment must not harm: one that does is never the shipped winner.
    guardrail_metrics: Annotated[list[GuardrailSpec], Field(max_length=10)] = []
    # The primary metric is also analysed per value of each of these (the top 10, and the rest).
    breakdowns: Breakdowns = []
    # The smallest relative lift worth detecting: it sizes the sample and tunes the sequential test.
    minimum_detectable_effect: Annotated[float, Field(gt=0, le=10)] = 0.05
    # CUPED: each metric also measured over this many days before a user's first exposure, and
    # the estimates adjusted on it (variance reduction); false turns the adjustment off.
    cuped: StrictBool = True
    pre_exposure_days: Annotated[WholeNumber, Field(ge=1, le=365)] = 14

    @field_validator("variants")
    @classmethod
    def variants_are_a_split(cls, variants: list[VariantSpec]) -> list[VariantSpec]:
        return check_split(variants)

    @field_validator("holdout")
    @classmethod
    def a_holdout_holds_out_by_its_hash_alone(
        cls, holdout: HoldoutSpec | None, info: ValidationInfo
    ) -> HoldoutSpec | None:
        """Checked against the fields before it (all that matter are): named in the message."""
        if holdout is not None and (problems := _holdout_problems(info.data)):
            raise ValueError("; ".join(problems))
        return holdout

    def all_metrics(self) -> list[MetricSpec]:
        """The primary metric, then the secondary ones, then the guardrails: the order the nightly
        job computes them in."""
        return [self.primary_metric, *self.secondary_metrics, *self.guardrail_metrics]

    @field_validator("overrides")
    @classmethod
    def overrides_name_variants(cls, overrides: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """Checked whenever the variants are valid (they come first), whatever other fields say."""
        variants: list[VariantSpec] | None = info.data.get("variants")
        if variants is None:
            return overrides
        keys = [variant.key for variant in variants]
        wrong = [
            f"'{distinct_id}' is given '{variant}'" for distinct_id, variant in overrides.items() if variant not in keys
        ]
        if wrong:
            listed = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
            which = "which is not a variant" if len(wrong) == 1 else "which are not variants"
            raise ValueError(f"{listed}, {which} ({', '.join(keys)})")
        return overrides


class ExperimentCreate(ExperimentFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "new-checkout",
                    "name": "One-page checkout",
                    "hypothesis": "Fewer steps, more purchases",
                    "variants": [{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50}],
                    "primary_metric": {"event": "purchase", "window_days": 7, "baseline": 0.2},
                    "secondary_metrics": [{"event": "purchase", "kind": "sum", "property": "amount"}],
                    "minimum_detectable_effect": 0.1,
                }
            ]
        }
    )
    key: Slug


# The default of a field a PATCH leaves out: never validated (so not of the field's type, which
# refuses a null that is sent) and left out by model_dump(exclude_unset=True).
NOT_GIVEN: Any = None


class ExperimentPatch(Strict):
    """The fields to change; those left out keep their values. A field sent as null is refused
    (422 naming it): no field of an experiment can be null. The defaults are never validated."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"description": "Now in every country"}]})

    name: Annotated[str, Field(min_length=1, max_length=200)] = NOT_GIVEN
    description: Text = NOT_GIVEN
    hypothesis: Text = NOT_GIVEN
    variants: Annotated[list[VariantSpec], Field(min_length=2, max_length=10)] = NOT_GIVEN
    rollout_percentage: Annotated[float, Field(ge=0, le=100)] = NOT_GIVEN
    targeting: Targeting = NOT_GIVEN
    overrides: Overrides = NOT_GIVEN
    layer: LayerSpec | None = NOT_GIVEN  # null: in no layer
    holdout: HoldoutSpec | None = NOT_GIVEN  # null: not a holdout
    primary_metric: MetricSpec = NOT_GIVEN
    secondary_metrics: Annotated[list[MetricSpec], Field(max_length=10)] = NOT_GIVEN
    guardrail_metrics: Annotated[list[GuardrailSpec], Field(max_length=10)] = NOT_GIVEN
    breakdowns: Breakdowns = NOT_GIVEN
    minimum_detectable_effect: Annotated[float, Field(gt=0, le=10)] = NOT_GIVEN
    cuped: StrictBool = NOT_GIVEN
    pre_exposure_days: Annotated[WholeNumber, Field(ge=1, le=365)] = NOT_GIVEN


class LaunchRequest(Strict):
    """A launch dated back: the experiment already ran from `started_at` (a flag migrated from
    PostHog, with the exposure events it reported then): those count from then on."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"started_at": "2026-11-18T00:00:00Z"}]})
    started_at: Annotated[
        AwareDatetime | None,
        Field(description="ISO 8601 with a time zone; not ahead, nor further back than events are kept; default now"),
    ] = None


class ShipRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"variant": "control"}]})
    variant: Annotated[str, Field(pattern=VARIANT_KEY_PATTERN)]


Properties = Annotated[dict[Annotated[str, Field(max_length=200)], Scalar | list[Scalar] | None], Field(max_length=200)]


class AssignRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"token": "phc_project_token", "distinct_id": "user-42", "properties": {"plan": "pro"}}]
        }
    )
    token: Annotated[str, Field(min_length=1, max_length=200)]
    distinct_id: DistinctId
    experiments: Annotated[list[Slug] | None, Field(max_length=100)] = None
    properties: Properties = {}
    expose: StrictBool = True
    payloads: StrictBool = Field(
        default=False, description="Also answer each experiment's variant payload (`payloads`: key to payload or null)"
    )


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
