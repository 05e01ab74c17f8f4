"""The API's answers other than results, named as TypedDicts: an experiment as the API describes it
(with its plan and its history of changes), a page of experiments, ingestion's outcome, the errors
every route answers with, PostHog's flags answers, and a project's keys as the operator's command
line prints them. abacus.http.responses documents them (see core/documents.py for who owns which
shape). Standard library only.
"""

from typing import Any, Literal, NotRequired, TypedDict

from abacus.core.documents import Json, MetricJson


class VariantJson(TypedDict):
    key: str
    weight: int


class ExperimentFieldsJson(TypedDict):
    """schemas.ExperimentFields as JSON (model_dump(mode="json"))."""

    name: str
    description: str
    hypothesis: str
    variants: list[VariantJson]
    rollout_percentage: float
    targeting: list[dict[str, Any]]
    overrides: dict[str, str]
    primary_metric: MetricJson
    secondary_metrics: list[MetricJson]
    minimum_detectable_effect: float
    cuped: bool
    pre_exposure_days: int
    layer: dict[str, Any] | None  # schemas.LayerSpec
    holdout: dict[str, Any] | None  # schemas.HoldoutSpec
    group_type: str | None  # a group experiment's group type (None: randomised by person)
    guardrail_metrics: list[dict[str, Any]]  # schemas.GuardrailSpec
    breakdowns: list[str]
    starts_at: str | None  # a draft's scheduled launch (UTC)
    ends_at: str | None  # the scheduled stop (UTC)
    automation: dict[str, Any]  # schemas.AutomationSpec
    allocation: "FixedAllocationJson | BanditAllocationJson"


class FixedAllocationJson(TypedDict):
    kind: Literal["fixed"]


class BanditAllocationJson(TypedDict):
    """spec.BanditAllocation."""

    kind: Literal["bandit"]
    floor: float
    burn_in: int
    max_step: float
    top_two: bool
    reweight_every_hours: int
    decide_at: float
    minimum_days: int


class BanditState(TypedDict):
    """A bandit's current phase (experiments/bandit_weights.py): its number (0 from the launch,
    one more at each reweighting that moved a weight), since when, and each variant's share of new
    users; the variants a harmed guardrail froze at their floor."""

    phase: int
    since: str
    weights: dict[str, float]
    frozen: list[str]


class Plan(TypedDict):
    recommended_exposures_per_variant: int | None
    estimated_days_left: float | None
    estimated_days_left_reason: str | None  # why estimated_days_left is null


class Experiment(ExperimentFieldsJson, Plan):
    """An experiment as the API describes it."""

    key: str
    status: str
    shipped_variant: str | None
    created_at: str
    updated_at: str
    started_at: str | None
    stopped_at: str | None
    layer_buckets: list[list[int]] | None
    bandit: "BanditState | None"  # a running or stopped bandit's current phase (None: fixed weights)


class HistoryEntry(TypedDict):
    """One change of an experiment: when, which action, and what changed (from and to)."""

    at: str
    action: str
    changes: NotRequired[dict[str, Any]]
    by: NotRequired[str]  # who acted: the admin key's name, the console session's, or the operator


class BanditPhaseEntry(TypedDict):
    """One phase of a bandit: its number, when it begins, each variant's share, and why."""

    phase: int
    begins: str
    weights: dict[str, float]
    reason: str


class ExperimentWithHistory(Experiment):
    history: list[HistoryEntry]
    bandit_phases: NotRequired[list[BanditPhaseEntry]]  # a launched bandit's phases, first first


class ExperimentPage(TypedDict):
    experiments: list[Experiment]
    next: str | None


class Rejected(TypedDict):
    index: int
    error: str


class IngestOutcome(TypedDict):
    accepted: int
    duplicates: int
    rejected: list[Rejected]
    refused_exposures: int
    refused_exposure_reasons: dict[str, int]  # refused_exposures by reason (ingestion/attribution.py)


class FieldError(TypedDict):
    """One invalid field of a request and what is wrong with it."""

    field: str
    message: str


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[str]
    errors: NotRequired[list[FieldError]]  # 422: every field at fault, the first being `field`
    not_stored: NotRequired[list[int]]


class ErrorBody(TypedDict):
    error: ErrorDetail


class FlagReason(TypedDict):
    code: str
    description: str
    condition_index: int | None


class FlagMetadata(TypedDict):
    id: None
    version: int | None
    payload: str | None
    has_experiment: bool


class Flag(TypedDict):
    """One experiment as a PostHog multivariate flag (the /flags?v=4 record)."""

    key: str
    enabled: bool
    variant: str | None
    value: str | bool
    failed: bool
    reason: FlagReason
    metadata: FlagMetadata


class FlagsAnswer(TypedDict):
    flags: dict[str, Flag]
    errorsWhileComputingFlags: bool
    requestId: str


class DecideAnswer(TypedDict):
    featureFlags: dict[str, str | bool]
    featureFlagPayloads: dict[str, Json]
    errorsWhileComputingFlags: bool


class NewProject(TypedDict):
    """A project as created: the only time its keys are shown."""

    project_id: str
    name: str
    token: str
    admin_key: str
    flags_key: str


class RotatedKeys(TypedDict):
    project_id: str
    token: NotRequired[str]
    admin_key: NotRequired[str]
    flags_key: NotRequired[str]
