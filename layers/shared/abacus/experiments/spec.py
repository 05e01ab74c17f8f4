"""The API's request bodies for an experiment, validated at the edge by Powertools (pydantic): its
own fields (ExperimentFields), and the requests that create, change, launch and ship it. Its
metrics' and conditions' schemas are metrics_spec.py's; the assignment's and the events' requests
are assignment/spec.py's and ingestion/spec.py's."""

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from abacus.core import event_properties
from abacus.core.breakdowns import MAX_BREAKDOWNS
from abacus.core.keys import PATTERN_WORDS, SLUG_PATTERN, VARIANT_KEY_PATTERN
from abacus.experiments.metrics_spec import GuardrailSpec, MetricSpec, Strict, Targeting, WholeNumber, refuse

CONTROL = "control"


Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description=PATTERN_WORDS[SLUG_PATTERN])]


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


Overrides = Annotated[dict[Annotated[str, Field(min_length=1, max_length=200)], str], Field(max_length=1000)]
Text = Annotated[str, Field(max_length=5000)]


def whole_weights(variants: object) -> object:
    """Weights are whole percentages: a fractional one (33.4/33.3/33.3) is refused with the split
    to send instead, the nearest whole one (largest remainders, summing to 100)."""
    if not isinstance(variants, list):
        return variants
    weights = [variant.get("weight") if isinstance(variant, dict) else None for variant in variants]
    numbers = [w for w in weights if isinstance(w, int | float) and not isinstance(w, bool)]
    if len(numbers) != len(weights) or all(float(w).is_integer() for w in numbers) or not sum(numbers) > 0:
        return variants  # the fields' own checks say what else is wrong
    given = "/".join(f"{w:g}" for w in numbers)
    suggested = "/".join(str(w) for w in nearest_whole_split(numbers))
    raise ValueError(f"weights are whole percentages summing to 100, not {given}: send {suggested}")


def nearest_whole_split(weights: list[float]) -> list[int]:
    """`weights` scaled to 100 and rounded to whole numbers that still sum to 100 (the largest
    remainders are rounded up; the earlier variant on a tie)."""
    scaled = [100 * w / sum(weights) for w in weights]
    whole = [int(w) for w in scaled]
    by_remainder = sorted(range(len(scaled)), key=lambda i: -(scaled[i] - whole[i]))
    for i in by_remainder[: 100 - sum(whole)]:
        whole[i] += 1
    return whole


Variants = Annotated[list[VariantSpec], Field(min_length=2, max_length=10), BeforeValidator(whole_weights)]


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
    refuse(problems)
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
    refuse(problems)
    return names


# Properties users are broken down by: their values at the first exposure (breakdowns.py).
Breakdowns = Annotated[list[PropertyName], Field(max_length=MAX_BREAKDOWNS), AfterValidator(_breakdowns_stored)]


class LayerSpec(Strict):
    """A layer the experiment shares with others that must not share users: it takes `share`
    percent of the layer's users (a layer-level hash), buckets no running experiment of the layer
    holds, at its launch."""

    key: Annotated[str, Field(pattern=SLUG_PATTERN, description="The layer: any slug, the same for its experiments")]
    share: Annotated[WholeNumber, Field(ge=1, le=100, description="Percent of the layer's users it takes")]


GroupType = Annotated[
    str,
    Field(
        pattern=SLUG_PATTERN,
        description="Randomise and count by this group type's key (PostHog's group flags), e.g. company",
    ),
]


class HoldoutSpec(Strict):
    """This experiment is a holdout: while it runs, its `control` share of the users gets control
    in every other experiment of the project (or of `layer`), so its results measure what they
    shipped, together."""

    layer: Annotated[str | None, Field(pattern=SLUG_PATTERN, description="Only this layer's experiments")] = None


class AutomationSpec(Strict):
    """What Abacus does on its own when a snapshot says so (experiments/automation.py), each off by
    default. It acts only once the experiment has run `minimum_days`, no guardrail is harmed and
    the split is sound; the SRM stop alone acts at once, a broken split making every number wrong."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ship": True, "no_effect": True, "srm": True}]})
    ship: StrictBool = Field(default=False, description="Ship the verdict's winner (everyone gets it)")
    no_effect: StrictBool = Field(
        default=False, description="Stop when the verdict is no_effect (everyone gets control)"
    )
    srm: StrictBool = Field(
        default=False, description="Stop on a sample ratio mismatch (the split is broken), whatever the runtime"
    )
    minimum_days: Annotated[
        WholeNumber, Field(ge=1, le=90, description="Days of data before ship or no_effect acts (a weekly cycle)")
    ] = 7


class FixedAllocation(Strict):
    """The variants' weights, fixed for the whole run (the default)."""

    kind: Literal["fixed"] = "fixed"


class BanditAllocation(Strict):
    """A multi-armed bandit (experiments/bandit_weights.py, abacus.nightly.reweight): the variants
    start equal, and each reweighting gives each the probability that it is best on the primary
    metric (Thompson sampling), within a floor, after a burn-in, moving each weight at most
    `max_step`. It decides like an experiment: once one variant's probability to be best reaches
    `decide_at` after `minimum_days`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "bandit", "floor": 0.01, "burn_in": 100, "max_step": 0.2}]}
    )
    kind: Literal["bandit"]
    floor: Annotated[
        float, Field(ge=0, le=0.2, description="The least share of new users each variant keeps (0.01: 1%)")
    ] = 0.01
    burn_in: Annotated[
        WholeNumber, Field(ge=1, le=1_000_000, description="Exposed users every variant needs before the first change")
    ] = 100
    max_step: Annotated[
        float, Field(gt=0, le=1, description="The most one reweighting moves a variant's share (0.2: 20 points)")
    ] = 0.2
    top_two: StrictBool = Field(
        default=False,
        description="Top-two Thompson sampling: more traffic to the runner-up, to find the best arm sooner rather "
        "than to exploit it",
    )
    reweight_every_hours: Annotated[
        WholeNumber,
        Field(ge=1, le=24, description="Hours between its recomputes and reweightings, besides the nightly run's"),
    ] = 1
    decide_at: Annotated[
        float, Field(ge=0.5, le=0.999, description="The probability to be best at which the best variant is the winner")
    ] = 0.95
    minimum_days: Annotated[WholeNumber, Field(ge=1, le=90, description="Days it runs before it may decide")] = 7


Allocation = Annotated[FixedAllocation | BanditAllocation, Field(discriminator="kind")]
# The primary metrics a bandit's posterior can be built on: a user's conversion or value.
BANDIT_METRICS = ("conversion", "count", "sum", "funnel")


def _bandit_problems(fields: dict[str, Any], allocation: BanditAllocation) -> list[str]:
    """What a bandit may not have, checked against the fields before `allocation`."""
    problems = []
    variants: list[VariantSpec] = fields.get("variants") or []
    if variants and allocation.floor * len(variants) > 1:
        problems.append(
            f"floor: {allocation.floor:g} for each of {len(variants)} variants is more than all the traffic"
        )
    weights = [variant.weight for variant in variants]
    if weights and max(weights) - min(weights) > 1:
        equal = "/".join(str(w) for w in nearest_whole_split([1.0] * len(weights)))
        problems.append(f"variants: a bandit's variants start equal ({equal}), not {'/'.join(map(str, weights))}")
    primary: MetricSpec | None = fields.get("primary_metric")
    if primary is not None and primary.kind not in BANDIT_METRICS:
        problems.append(f"primary_metric: a bandit's is a conversion, count, sum or funnel, not a {primary.kind}")
    if fields.get("holdout") is not None:
        problems.append("holdout: a holdout's split is fixed; it cannot be a bandit")
    return problems


def _utc(moment: datetime | None) -> datetime | None:
    """A schedule's time in UTC, as it is stored and shown, whatever offset it was sent with."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-02:00: past the last time Python can hold, in UTC
        raise ValueError("not a time in years 1 to 9999 once converted to UTC") from None


Schedule = Annotated[AwareDatetime | None, AfterValidator(_utc)]


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


STARTS_AT = (
    "A draft's scheduled launch (ISO 8601 with a time zone, stored in UTC): ahead when set; launched within a "
    "minute or two of it, with a launch's checks; cleared by the launch (or a refused one, recorded in the history)"
)
ENDS_AT = (
    "The scheduled stop of a draft or running experiment (ISO 8601 with a time zone, stored in UTC): ahead when "
    "set and after starts_at; stopped within a minute or two of it, as a stop by hand; cleared by the stop or a ship"
)


class ExperimentFields(Strict):
    """Everything about an experiment but its key: what POST sets and PATCH changes."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Text = ""
    hypothesis: Text = ""
    variants: Variants
    rollout_percentage: Annotated[float, Field(ge=0, le=100)] = 100
    targeting: Targeting = []
    overrides: Overrides = {}
    # Mutually exclusive experiments: a user is in at most one running experiment of a layer.
    layer: LayerSpec | None = None
    # A holdout: its control share gets control in every experiment of its scope while it runs.
    holdout: HoldoutSpec | None = None
    # A group experiment (PostHog's group flags): randomised and counted by the key of the user's
    # group of this type ("company"), which /flags and /assign take in `groups` and events in
    # `$groups`; everyone of a group sees one variant, and a group converts once.
    group_type: GroupType | None = None
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
    # A draft is launched at starts_at, a running experiment stopped at ends_at, by the minute
    # (experiments/schedules.py), with the checks of a launch or stop by hand.
    starts_at: Annotated[Schedule, Field(description=STARTS_AT)] = None
    ends_at: Annotated[Schedule, Field(description=ENDS_AT)] = None
    automation: AutomationSpec = Field(default_factory=AutomationSpec)
    # Fixed weights (the variants'), or a bandit's, which move to what works (frozen while running).
    allocation: Allocation = Field(default_factory=FixedAllocation)

    @field_validator("allocation")
    @classmethod
    def a_bandit_fits_its_fields(cls, allocation: FixedAllocation | BanditAllocation, info: ValidationInfo) -> Any:
        """Checked against the fields before it (all that matter are): named in the message."""
        if isinstance(allocation, BanditAllocation) and (problems := _bandit_problems(info.data, allocation)):
            raise ValueError("; ".join(problems))
        return allocation

    @field_validator("ends_at")
    @classmethod
    def ends_after_it_starts(cls, ends_at: datetime | None, info: ValidationInfo) -> datetime | None:
        starts_at: datetime | None = info.data.get("starts_at")
        if ends_at is not None and starts_at is not None and ends_at <= starts_at:
            raise ValueError(f"after starts_at ({starts_at.isoformat()}), not at {ends_at.isoformat()} or before")
        return ends_at

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

    @field_validator("group_type")
    @classmethod
    def a_group_experiment_is_in_no_layer(cls, group_type: str | None, info: ValidationInfo) -> str | None:
        """Layers and holdouts split users by their own hash: not groups."""
        if group_type is not None:
            for name in ("layer", "holdout"):
                if info.data.get(name) is not None:
                    raise ValueError(f"a group experiment takes no {name} (they split users, not groups)")
        return group_type

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
    replace_archived: StrictBool = Field(
        default=False,
        description="Take the key of an archived experiment now, before its retention has passed: the archived "
        "experiment is retired (its results, history and assignments are kept apart, no longer served, and "
        "deleted with the project); the new one starts from nothing. Not needed once the retention has passed.",
    )


class DuplicateRequest(Strict):
    """A copy of an experiment's definition as a new draft (how a frozen definition gets fixed)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"key": "new-checkout-v2"}]})
    key: Slug
    name: Annotated[str | None, Field(min_length=1, max_length=200, description="Default: the original's")] = None


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
    variants: Variants = NOT_GIVEN
    rollout_percentage: Annotated[float, Field(ge=0, le=100)] = NOT_GIVEN
    targeting: Targeting = NOT_GIVEN
    overrides: Overrides = NOT_GIVEN
    layer: LayerSpec | None = NOT_GIVEN  # null: in no layer
    holdout: HoldoutSpec | None = NOT_GIVEN  # null: not a holdout
    group_type: GroupType | None = NOT_GIVEN  # null: randomised by person
    primary_metric: MetricSpec = NOT_GIVEN
    secondary_metrics: Annotated[list[MetricSpec], Field(max_length=10)] = NOT_GIVEN
    guardrail_metrics: Annotated[list[GuardrailSpec], Field(max_length=10)] = NOT_GIVEN
    breakdowns: Breakdowns = NOT_GIVEN
    minimum_detectable_effect: Annotated[float, Field(gt=0, le=10)] = NOT_GIVEN
    cuped: StrictBool = NOT_GIVEN
    pre_exposure_days: Annotated[WholeNumber, Field(ge=1, le=365)] = NOT_GIVEN
    starts_at: Annotated[Schedule, Field(description=STARTS_AT)] = NOT_GIVEN  # null: no scheduled launch
    ends_at: Annotated[Schedule, Field(description=ENDS_AT)] = NOT_GIVEN  # null: no scheduled stop
    automation: AutomationSpec = NOT_GIVEN  # replaced whole: the flags left out are off
    allocation: Allocation = NOT_GIVEN  # replaced whole; frozen once running


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
