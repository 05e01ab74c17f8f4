"""The JSON problems of `python -m abacus.stats`: validated, then answered.

Analysis: {"metric": {"kind": "conversion" | "mean", "nonnegative"? (a mean metric whose mean cannot be
negative: its relative intervals stop at -100%, as a rate's do)}, "control", "alpha", "sequential", "weights",
"mde"?, "tau"?, "power"?, "days_running"?, "design"? ("spending" | "msprt"; spending when
"planned_exposures" is given), "planned_exposures"?, "gamma"?, "cuped"?, "previous_looks"? (earlier
looks, oldest first, each a list like "variants"), "variants": [{"key", "exposures", "conversions"}
or {"key", "exposures", "sum", "sum_squares"}, each with "pre_sum", "pre_sum_squares" and
"cross_sum" for CUPED, and optionally the skewness correction's "sum_cubes" (a mean metric's),
"pre_sum_cubes", "cross_sum_outcome_squared" (a mean metric's) and "cross_sum_pre_squared"]}.
Planning: {"plan": {"kind", "baseline" (conversion) or "baseline_mean" and "baseline_sd" (mean),
"mde", "alpha", "power", "variants", "daily_exposures"?, "current_exposures"?, "sequential"?,
"design"?}}.
"""

import math
from typing import Annotated, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from abacus.core import planning
from abacus.core.documents import Analysis
from abacus.stats import spending
from abacus.stats.analysis import Settings, VariantData, analyse
from abacus.stats.spending import DESIGN_FAMILY, DESIGN_GAMMA

# A plan's sequential sample assumes a look a day for about a month (planning.SPENDING_INFLATION).
PLANNED_LOOKS = 30

Probability = Annotated[float, Field(gt=0, lt=1)]
Count = Annotated[int, Field(ge=0, strict=True)]


class ProblemError(ValueError):
    """A problem that cannot be answered; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Metric(_Model):
    kind: Literal["conversion", "mean"]
    nonnegative: bool = False  # a mean metric's values cannot be negative (a rate's never are)


class Variant(_Model):
    key: Annotated[str, Field(min_length=1)]
    exposures: Count
    conversions: Count | None = None
    sum: float | None = None
    sum_squares: Annotated[float, Field(ge=0)] | None = None
    pre_sum: float | None = None
    pre_sum_squares: Annotated[float, Field(ge=0)] | None = None
    cross_sum: float | None = None
    sum_cubes: float | None = None
    pre_sum_cubes: float | None = None
    cross_sum_outcome_squared: float | None = None
    cross_sum_pre_squared: float | None = None

    @model_validator(mode="after")
    def covariate_whole(self) -> "Variant":
        given = [self.pre_sum is not None, self.pre_sum_squares is not None, self.cross_sum is not None]
        if any(given) and not all(given):
            raise ValueError("pre_sum, pre_sum_squares and cross_sum come together (CUPED's covariate)")
        covariate_cubes = (self.pre_sum_cubes, self.cross_sum_outcome_squared, self.cross_sum_pre_squared)
        if not any(given) and any(cubes is not None for cubes in covariate_cubes):
            raise ValueError(
                "pre_sum_cubes, cross_sum_outcome_squared and cross_sum_pre_squared need the covariate's pre_sum, "
                "pre_sum_squares and cross_sum"
            )
        return self

    def data(self) -> VariantData:
        return VariantData(
            self.key,
            self.exposures,
            self.conversions or 0,
            self.sum or 0.0,
            self.sum_squares or 0.0,
            self.pre_sum,
            self.pre_sum_squares,
            self.cross_sum,
            self.sum_cubes,
            self.pre_sum_cubes,
            self.cross_sum_outcome_squared,
            self.cross_sum_pre_squared,
        )


Variants = Annotated[list[Variant], Field(min_length=2, max_length=10)]


class AnalysisProblem(_Model):
    metric: Metric
    control: str = "control"
    alpha: Probability = 0.05
    sequential: bool = True
    weights: dict[str, Annotated[float, Field(ge=0)]] | None = None
    mde: Annotated[float, Field(gt=0, lt=10)] = 0.05
    tau: Annotated[float, Field(gt=0)] | None = None
    power: Probability = 0.8
    days_running: Annotated[float, Field(ge=0)] | None = None
    design: Literal["spending", "msprt"] | None = None
    planned_exposures: Annotated[int, Field(ge=1, strict=True)] | None = None
    gamma: Annotated[float, Field(ge=-40, le=40)] = DESIGN_GAMMA
    cuped: bool = True
    previous_looks: Annotated[list[Variants], Field(max_length=1000)] = []
    variants: Variants

    @model_validator(mode="after")
    def fields_fit_the_kind(self) -> "AnalysisProblem":
        needed = ("conversions",) if self.metric.kind == "conversion" else ("sum", "sum_squares")
        looks = [("variants", self.variants)] + [
            (f"previous_looks[{index}]", look) for index, look in enumerate(self.previous_looks)
        ]
        for where, variants in looks:
            for index, variant in enumerate(variants):
                for name in needed:
                    if getattr(variant, name) is None:
                        raise ValueError(f"{where}[{index}].{name} is required for a {self.metric.kind} metric")
        if self.weights is not None and set(self.weights) != {v.key for v in self.variants}:
            raise ValueError("weights must name exactly the variants' keys")
        return self


class Plan(_Model):
    kind: Literal["conversion", "mean"]
    baseline: Probability | None = None
    baseline_mean: float | None = None
    baseline_sd: Annotated[float, Field(gt=0)] | None = None
    mde: Annotated[float, Field(gt=0, lt=10)] = 0.05
    alpha: Probability = 0.05
    power: Probability = 0.8
    variants: Annotated[int, Field(ge=2, le=10)] = 2
    daily_exposures: Annotated[float, Field(gt=0)] | None = None
    current_exposures: Count = 0
    sequential: bool = False  # True: the sample the sequential design needs for that power
    design: Literal["spending", "msprt"] = "spending"


class PlanProblem(_Model):
    plan: Plan


class PlanAnswer(TypedDict):
    exposures_per_variant: int
    days_left: NotRequired[int]


def solve(raw: object) -> Analysis | PlanAnswer:
    """The answer to one problem; ProblemError naming the field when it is malformed."""
    if not isinstance(raw, dict):
        raise ProblemError("problem: each problem must be a JSON object")
    try:
        if "plan" in raw:
            return _plan(PlanProblem.model_validate(raw).plan)
        problem = AnalysisProblem.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ProblemError(f"{location}: {message}" if location else message) from None
    variants = [v.data() for v in problem.variants]
    settings = Settings(
        control=problem.control,
        alpha=problem.alpha,
        sequential=problem.sequential,
        mde=problem.mde,
        tau=problem.tau,
        power=problem.power,
        weights=problem.weights,
        days_running=problem.days_running,
        cuped=problem.cuped,
        design=problem.design,
        planned_exposures=problem.planned_exposures,
        previous_looks=[[v.data() for v in look] for look in problem.previous_looks],
        gamma=problem.gamma,
        nonnegative=problem.metric.nonnegative,
    )
    try:
        return analyse(problem.metric.kind, variants, settings)
    except ValueError as error:
        raise ProblemError(str(error)) from None


def _plan(plan: Plan) -> PlanAnswer:
    try:
        if plan.kind == "conversion":
            if plan.baseline is None:
                raise ValueError("plan.baseline: required for a conversion metric")
            needed = planning.exposures_for_conversion(plan.baseline, plan.mde, plan.alpha, plan.power, plan.variants)
        else:
            if plan.baseline_mean is None or plan.baseline_sd is None:
                raise ValueError("plan.baseline_mean and plan.baseline_sd: required for a mean metric")
            needed = planning.exposures_for_mean(
                plan.baseline_mean, plan.baseline_sd, plan.mde, plan.alpha, plan.power, plan.variants
            )
    except ValueError as error:
        message = str(error)
        raise ProblemError(message if message.startswith("plan.") else f"plan.{message}") from None
    if plan.sequential and plan.design == "msprt":
        needed = math.ceil(needed * planning.sequential_inflation(plan.alpha, plan.power, plan.mde))
    elif plan.sequential:
        needed = math.ceil(
            needed * spending.inflation(plan.alpha, plan.power, DESIGN_GAMMA, PLANNED_LOOKS, DESIGN_FAMILY)
        )
    answer: PlanAnswer = {"exposures_per_variant": needed}
    if plan.daily_exposures is not None:
        answer["days_left"] = math.ceil(max(0, needed - plan.current_exposures) / plan.daily_exposures)
    return answer
