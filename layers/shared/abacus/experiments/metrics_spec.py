"""The request schemas of an experiment's metrics and conditions (validated at the edge by
Powertools, with pydantic): MetricSpec with its Cap, FunnelStep and EventFilter, GuardrailSpec,
and the Condition and TargetingGroup of targeting; and Strict, the base of every request schema.
experiments/spec.py builds the experiment's own fields from them."""

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from abacus.core import event_properties


def _whole_number(value: object) -> object:
    """JSON has one number type: 73.0 is the integer 73 (as JSON Schema's "integer" says), while
    1.5, "73" and true are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer, written 73 or 73.0; StrictInt refuses strings and booleans.
WholeNumber = Annotated[StrictInt, BeforeValidator(_whole_number)]


class Strict(BaseModel):
    """A model refusing fields it does not declare, and NaN or infinity. Its validator is built when
    first used, not when imported: ResultsFunction imports the spec for its routes' bodies and
    serves console pages that never validate one, and building the spec's models cost about 20 ms
    of each cold start. Functions that validate on every request build theirs at init
    (abacus.http.api.build_validators)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, defer_build=True)


def refuse(problems: list[str]) -> None:
    """Independent checks of one value: ValueError saying every one that failed."""
    if problems:
        raise ValueError("; ".join(problems))


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
            refuse(_ratio_problems(self))
        elif self.numerator is not None or self.denominator is not None:
            raise ValueError("only a ratio metric takes a numerator and a denominator")
        elif self.kind == "funnel":
            refuse(_funnel_problems(self))
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
        refuse(problems)
        return self


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


class GuardrailSpec(MetricSpec):
    """A metric a treatment must not make worse: by more than `margin` (relative: 0.02 allows 2%)
    in its bad direction (`increase` for errors, latency, unsubscribes; `decrease` for, say,
    retention)."""

    margin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    bad_direction: Literal["increase", "decrease"] = "increase"


class TargetingGroup(Strict):
    """Conditions combined with AND; groups are combined with OR."""

    conditions: Annotated[list[Condition], Field(min_length=1, max_length=20)]


Targeting = Annotated[list[TargetingGroup], Field(max_length=20)]
