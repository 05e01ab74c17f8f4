"""The JSON problems of `python -m abacus.stats`: validated, then answered.

Analysis: {"metric": {"kind": "conversion" | "mean"}, "control", "alpha", "sequential", "weights",
"mde"?, "tau"?, "power"?, "days_running"?, "variants": [{"key", "exposures", "conversions"} or
{"key", "exposures", "sum", "sum_squares"}]}.
Planning: {"plan": {"kind", "baseline" (conversion) or "baseline_mean" and "baseline_sd" (mean),
"mde", "alpha", "power", "variants", "daily_exposures"?, "current_exposures"?, "sequential"?}}.
"""

import math
from typing import Annotated, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from abacus import planning
from abacus.documents import Analysis
from abacus.stats.analysis import Settings, VariantData, analyse

Probability = Annotated[float, Field(gt=0, lt=1)]
Count = Annotated[int, Field(ge=0, strict=True)]


class ProblemError(ValueError):
    """A problem that cannot be answered; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Metric(_Model):
    kind: Literal["conversion", "mean"]


class Variant(_Model):
    key: Annotated[str, Field(min_length=1)]
    exposures: Count
    conversions: Count | None = None
    sum: float | None = None
    sum_squares: Annotated[float, Field(ge=0)] | None = None


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
    variants: Annotated[list[Variant], Field(min_length=2, max_length=10)]

    @model_validator(mode="after")
    def fields_fit_the_kind(self) -> "AnalysisProblem":
        needed = ("conversions",) if self.metric.kind == "conversion" else ("sum", "sum_squares")
        for index, variant in enumerate(self.variants):
            for name in needed:
                if getattr(variant, name) is None:
                    raise ValueError(f"variants[{index}].{name} is required for a {self.metric.kind} metric")
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
    sequential: bool = False  # True: the sample the always-valid test needs for that power


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
    variants = [
        VariantData(v.key, v.exposures, v.conversions or 0, v.sum or 0.0, v.sum_squares or 0.0)
        for v in problem.variants
    ]
    settings = Settings(
        control=problem.control,
        alpha=problem.alpha,
        sequential=problem.sequential,
        mde=problem.mde,
        tau=problem.tau,
        power=problem.power,
        weights=problem.weights,
        days_running=problem.days_running,
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
    if plan.sequential:
        needed = math.ceil(needed * planning.sequential_inflation(plan.alpha, plan.power))
    answer: PlanAnswer = {"exposures_per_variant": needed}
    if plan.daily_exposures is not None:
        answer["days_left"] = math.ceil(max(0, needed - plan.current_exposures) / plan.daily_exposures)
    return answer
