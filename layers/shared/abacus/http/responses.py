"""What the API answers, as the OpenAPI document (GET /openapi.json) describes each route's
responses; the fuzzing tests check every answer against them.

One owner per shape. Where an answer's shape can be documented as it is,
abacus.core.documents's TypedDict owns it and this module only adds what the document says of
it (field descriptions, whether it may carry more fields): Rejected, RatioTotals, Cuped
(CupedSummary), FieldError, IngestOutcome, CaptureOutcome and DecisionCard are generated from there. The
pydantic models here own the rest: they document a shape differently from how the code builds
it (optional fields as nullable with defaults, a subset of an open object's fields, differently
named), so generating them would change the document; tests/unit/test_response_shapes.py checks
each against its TypedDict, field by field."""

from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue, with_config
from pydantic.config import JsonDict

from abacus.core import answers, documents
from abacus.experiments.spec import ExperimentFields


def documenting[T: type](
    descriptions: Mapping[str, str] | None = None, *, open_object: bool = False
) -> Callable[[T], T]:
    """Documents a TypedDict of abacus.core.documents as an answer: each named field with its
    description, and (open_object) as an object that may carry more than the fields listed."""

    def describe(schema: JsonDict) -> None:
        properties = cast(JsonDict, schema["properties"])
        for field, description in (descriptions or {}).items():
            cast(JsonDict, properties[field])["description"] = description

    return with_config(ConfigDict(extra="allow" if open_object else "ignore", json_schema_extra=describe))


class Documented(BaseModel):
    """A documented answer. Its validator is built when first used (the fuzzing tests' checks, the
    OpenAPI document), not when a handler imports this module: the handlers never validate their
    own answers, and building some forty models cost about 25 ms of every cold start (issue 33)."""

    model_config = ConfigDict(defer_build=True)


class Open(Documented):
    """A documented object that may carry more than the fields listed."""

    model_config = ConfigDict(extra="allow")


@documenting(
    {
        "field": "The field as sent: `variants[1].key`, `primary_metric.kind`",
        "message": "What is wrong with it, and what it should be",
    }
)
class FieldError(answers.FieldError):
    pass


class ErrorDetail(Documented):
    code: str = Field(description="bad_request, unauthorized, forbidden, not_found, conflict, too_large, invalid, ...")
    message: str = Field(description="What was wrong and what to do, naming the field (every field, for a 422)")
    field: str | None = Field(default=None, description="The field at fault, where there is one (a 422's first)")
    errors: list[FieldError] | None = Field(
        default=None, description="422 only: every field at fault (the first 50), each with what is wrong"
    )
    not_stored: list[int] | None = Field(default=None, description="503 only: the events to send again")


class ErrorBody(Documented):
    error: ErrorDetail


class HistoryEntry(Open):
    at: str
    action: str
    by: str | None = Field(
        default=None,
        description="Who acted: a named admin key's 'Alice (ak_1a2b3c4d)', 'admin key' for the project's own, "
        "'operator (command line)'; absent on entries written before keys were named",
    )


class BanditPhase(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    phase: int = Field(description="0 from the launch; one more at each reweighting that moved a share")
    since: str = Field(description="When this phase began (UTC)")
    weights: dict[str, float] = Field(description="Variant key to its share of new users (0 to 1, summing to 1)")
    frozen: list[str] = Field(description="Variants a harmed guardrail froze at the floor")


class Experiment(ExperimentFields):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    key: str
    status: Literal["draft", "running", "complete", "archived"]
    shipped_variant: str | None
    created_at: str
    updated_at: str
    started_at: str | None
    stopped_at: str | None
    layer_buckets: list[list[int]] | None = Field(
        description="In a layer: the layer's buckets (of 100) it took at its launch, as [first, end) runs; else null"
    )
    bandit: "BanditPhase | None" = Field(
        description="A launched bandit's current phase: each variant's share of new users now; null for fixed weights "
        "or a bandit not launched"
    )
    recommended_exposures_per_variant: int | None
    estimated_days_left: float | None = Field(
        description="Running: days until the smallest variant reaches the recommended exposures at its rate so far, "
        "from the latest results once they cover a full day of exposures; else null"
    )
    estimated_days_left_reason: str | None = Field(
        description="Why estimated_days_left is null (not running, no plan, less than a full day of exposures)"
    )
    history: list[HistoryEntry] | None = None
    bandit_phases: list["BanditPhaseEntry"] | None = Field(
        default=None,
        description="GET /experiments/{key} of a launched bandit: every phase, first first (how its traffic moved)",
    )


class BanditPhaseEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    phase: int = Field(description="0 from the launch; one more at each reweighting that moved a share")
    begins: str = Field(description="When its shares apply to new users (UTC)")
    weights: dict[str, float] = Field(description="Variant key to its share of new users (0 to 1)")
    reason: str = Field(description="What set them")


class ExperimentPage(Documented):
    experiments: list[Experiment]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last")


class Assignments(Documented):
    assignments: dict[str, str | None] = Field(description="Experiment key to variant; null when not in it")
    payloads: dict[str, JsonValue] | None = Field(
        default=None, description="With `payloads: true`: experiment key to its variant's payload; null when none"
    )


INGEST_OUTCOME = {
    "accepted": "Events stored now",
    "duplicates": "Events already stored before (same uuid and distinct_id)",
    "rejected": "Events refused, with why; the others are stored",
    "refused_exposures": "Exposure events among these (stored now or before) that count as no exposure: the total "
    "of refused_exposure_reasons",
    "refused_exposure_reasons": "refused_exposures by reason: unknown_experiment (a $exposure naming no experiment "
    "of the project), unknown_variant, draft, archived, before_launch, after_stop, override (a user with an "
    "override), held_out (by a holdout), no_group (a group experiment's, naming no group of its type); {} when none",
}


@documenting(INGEST_OUTCOME)
class IngestOutcome(answers.IngestOutcome):
    pass


@documenting(INGEST_OUTCOME)
class CaptureOutcome(answers.IngestOutcome):
    status: Literal[1]


class FlagsAnswer(Open):
    flags: dict[str, Open]
    errorsWhileComputingFlags: bool


class ServerEvaluated(Documented):
    key: str
    reason: str = Field(description="What the SDKs would evaluate differently from /assign")


class FlagDefinitions(Open):
    flags: list[Open] = Field(description="Each running or complete experiment as a PostHog multivariate flag")
    group_type_mapping: dict[str, str]
    cohorts: dict[str, Open]
    property_matching_version: int
    evaluated_by_the_server: list[ServerEvaluated] = Field(
        description="Experiments the SDKs must ask /flags/ for (published with ensure_experience_continuity), and why"
    )


class RemoteConfig(Open):
    token: str
    supportedCompression: list[str]
    hasFeatureFlags: bool


class DecideAnswer(Open):
    featureFlags: dict[str, str | bool]


class Verdict(Open):
    decision: str = Field(
        description="ship, no_effect, keep_running, invalid (sample ratio mismatch) or held_back "
        "(the winner harms a guardrail)"
    )
    variant: str | None
    reason: str
    days_left: int | None = Field(
        default=None,
        description="keep_running: days to the planned sample at the rate so far; null before a full day of "
        "exposures (the reason says so)",
    )


class VariantResult(Open):
    key: str
    exposures: int
    mean: float | None


@documenting({"variance_reduction": "how much the pre-exposure adjustment narrowed the variance"}, open_object=True)
class Cuped(documents.CupedSummary):
    pass


class AppliedCap(Open):
    value: float | None = Field(
        description="the cap each user's value was held to (null: no user with a value above 0 yet)"
    )
    percentile: float | None = Field(
        default=None, description="for a percentile cap, the percentile of the values above 0 it was taken at"
    )
    users_capped: dict[str, int] = Field(description="per variant, the users whose value the cap lowered")
    part: Literal["numerator", "denominator"] | None = Field(
        default=None, description="for a ratio metric, the part whose cap this is"
    )


@documenting(open_object=True)
class RatioTotals(documents.RatioTotals):
    pass


class FunnelStepResult(Open):
    event: str
    filters: list[Open] | None = Field(default=None, description="the step's event filters, when it has any")
    conversions: dict[str, int] = Field(
        description="per variant, the exposed users who did this step and every one before it, in order"
    )


class SegmentResult(Open):
    value: str | float | bool | None = Field(description="the property's value at first exposure (null: not set)")
    other: bool = Field(description="true for the users of every value not shown, together")
    users: int
    complete: bool = Field(
        description="false when a page kept too many other values to keep this one: some of its users are in other"
    )
    variants: list[Open] = Field(
        description="per variant: exposures, conversions or sum, mean, lift, p_value and p_value_adjusted (Holm)"
    )
    srm: Open


class BreakdownResult(Open):
    property: str
    method: str
    comparisons: int = Field(description="the treatment-vs-control comparisons the Holm adjustment is across")
    segments: list[SegmentResult] = Field(description="the 10 most common values, most users first, then other")


class GuardrailResult(Open):
    margin: float
    bad_direction: Literal["increase", "decrease"]
    status: dict[str, Literal["harmed", "held", "inconclusive"]] = Field(
        description="per treatment: harmed (its interval wholly worse than the margin), held (wholly better), "
        "inconclusive"
    )


class Analysis(Open):
    kind: Literal["conversion", "mean"]
    design: Literal["fixed", "spending", "msprt"] = Field(
        description="spending: group-sequential (alpha spending over the plan); msprt: always-valid; fixed: one look"
    )
    method: str
    planned_exposures: int | None = Field(description="per variant, the spending design's plan")
    cuped: Cuped | None = Field(description="the CUPED adjustment, when the variants carry a pre-exposure covariate")
    explanation: list[str] = Field(description="the design and the adjustment in sentences")
    variants: list[VariantResult]
    srm: Open
    verdict: Verdict
    metric: Open
    cap: AppliedCap | None = Field(default=None, description="a capped metric's cap as applied")
    ratio: dict[str, RatioTotals] | None = Field(
        default=None, description="a ratio metric's sums of numerators and denominators per variant"
    )
    funnel_steps: list[FunnelStepResult] | None = Field(
        default=None, description="a funnel metric's steps, first first; the test is on the last"
    )
    guardrail: GuardrailResult | None = Field(default=None, description="a guardrail metric's margin and statuses")


@documenting(
    {
        "field": "The metric's field naming the event: `primary_metric.event`, `guardrail_metrics[0].numerator.event`",
        "event": "The event name the metric counts",
        "message": "What was not received, since when, and the closest names that were",
        "suggestions": "The event names received since the launch closest to it (same but for case first)",
    }
)
class MetricWarning(documents.MetricWarning):
    pass


@documenting(
    {
        "decision": "the verdict's decision; the card never decides anything the verdict did not",
        "variant": "the verdict's variant to ship (null: none)",
        "treatment": "the treatment the lift, interval, risk and P(best) are of: the one shipped; when the control "
        "is kept, the closest; else the leading one",
        "headline": "the decision in one plain sentence, with the figure that carries it",
        "why": "one sentence: the test's bar and where the data stand against it",
        "lift": "relative, absolute and in the metric's units (in_units: '+1.3 purchase conversions per 100 users')",
        "interval": "the relative lift's interval the decision rests on, the design's own (at tonight's boundary, "
        "always-valid, or fixed-horizon), named in `bar`",
        "days_left": "keep_running: days to the planned sample at the rate so far (null otherwise, or not known yet)",
        "expected_loss": "the risk of shipping `variant` now: its expected shortfall against the best variant, in "
        "the metric's units",
        "probability_to_be_best": "kept out of the headline: its value with a sentence squaring it with the decision",
        "changes": "what moved since the snapshot before (null for the first): decision, lift, exposures, days left",
        "notes": "the primary metric's events never received since the launch, which the decision cannot see",
    }
)
class DecisionCard(documents.DecisionCard):
    pass


@documenting(
    {
        "variants": "each variant's mean stratified by the phase of its users' assignment (unbiased under the "
        "changing shares), its 95% interval, its probability to be best and the expected loss of choosing it now; "
        "empty until every variant has users enough",
        "target": "the shares Thompson sampling (or top-two) asks for at the next reweighting, before the floor, "
        "burn-in and most step apply",
        "regret": "what the users shown other variants lost against the best variant so far, in the metric's units",
        "expected_shares": "each variant's share of the users counted, from its phases' shares: what the sample "
        "ratio check compares with",
        "shares": "the latest phase's share of new users per variant when the snapshot was computed",
    }
)
class BanditReport(documents.BanditReport):
    pass


class Results(Open):
    """`status` is pending (with `message`) before the first snapshot, else ready with the analysis
    of the primary metric at the top level and `secondary_metrics` beside it."""

    status: Literal["ready", "pending"]
    experiment: str
    message: str | None = None
    warnings: list[MetricWarning] | None = Field(
        default=None,
        description="a launched experiment's metric events not received since its launch (as of the request: "
        "day resolution), each with the closest event names received; [] when every one arrived",
    )
    date: str | None = None
    cutoff: str | None = None
    covers: str | None = Field(
        default=None,
        description="the data counted, in words: up to the end of `date`, or the day so far when computed during "
        "it (a cut-off never passes the time it was computed)",
    )
    computed_at: str | None = None
    final: bool | None = Field(
        default=None, description="a stopped experiment's last snapshot, once no late event can change its windows"
    )
    variants: list[VariantResult] | None = None
    verdict: Verdict | None = None
    decision_card: DecisionCard | None = Field(
        default=None,
        description="the results in one statement: the decision, why, the lift in the metric's units, the interval "
        "at the design's bar, the days left, the risk of shipping now and what changed since the snapshot before",
    )
    cap: AppliedCap | None = Field(default=None, description="the primary metric's cap as applied, if capped")
    ratio: dict[str, RatioTotals] | None = Field(
        default=None, description="a ratio primary metric's sums of numerators and denominators per variant"
    )
    secondary_metrics: list[Analysis] | None = None
    exposures_by_day: Open | None = Field(
        default=None,
        description="{days: [{date, exposures (per variant, in the variants' order), p_value, mismatch}], "
        "first_mismatch, threshold}: the sample ratio check per day of first exposure, at a threshold "
        "shared over the days",
    )
    guardrail_metrics: list[Analysis] | None = Field(
        default=None, description="each guardrail's analysis: a treatment harming one is never shipped (held_back)"
    )
    funnel_steps: list[FunnelStepResult] | None = Field(
        default=None, description="a funnel primary metric's steps, first first; the test is on the last"
    )
    breakdowns: list[BreakdownResult] | None = Field(
        default=None, description="the primary metric per value of each of the experiment's breakdowns"
    )
    counted_unit: str | None = Field(
        default=None, description="what a group experiment counts, plural (companies); absent: users (persons)"
    )
    persons_in_several_variants: dict[str, int] | None = Field(
        default=None,
        description="per variant, its persons who had been exposed to another variant under an id joined to "
        "theirs later (PostHog's $multiple): counted once, in the variant of their first exposure",
    )
    bandit: BanditReport | None = Field(
        default=None, description="a bandit's primary metric under its changing shares; its verdict rests on this"
    )


class Day(Open):
    date: str
    exposures: int
    verdict: str
    variants: list[Open]


class ResultsHistory(Documented):
    experiment: str
    days: list[Day]


class ReportLink(Documented):
    url: str
    expires_in_seconds: int


class Webhook(Documented):
    id: str
    url: str
    kinds: list[str] | None = Field(description="The alert kinds it takes; null: every kind")
    created_at: str
    created_by: str | None
    rotated_at: str | None


class NewWebhook(Webhook):
    secret: str = Field(
        description="Answered once: every delivery's X-Abacus-Signature is sha256=HMAC-SHA256(secret, raw body)"
    )


class WebhookList(Documented):
    webhooks: list[Webhook]


class AlertDelivery(Documented):
    webhook: str
    url: str
    status: str = Field(description="delivered, retrying, or failed (out of attempts: in the dead-letter queue)")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: str | None
    delivered_at: str | None


class SentAlert(Open):
    """An alert as it was sent (EventBridge's detail, the webhook body), with its deliveries."""

    id: str
    kind: str
    decision: str
    summary: str
    snapshot: str
    created_at: str
    text: str
    published: bool = Field(description="Put on the stack's EventBridge bus")
    deliveries: list[AlertDelivery]


class ExperimentAlerts(Documented):
    experiment: str
    alerts: list[SentAlert]


ERROR_DESCRIPTIONS = {
    400: "Unreadable body (not JSON, not UTF-8 or not gzip), or a token or key longer than 200 characters",
    401: "Missing or unknown credentials",
    403: "Credentials of the wrong kind (a project token on an admin route, or the reverse)",
    404: "No such experiment in this project",
    429: "Over the project token's requests a minute: retry after Retry-After seconds",
    409: "Not allowed in the experiment's status, a key taken, or changed meanwhile: the message says what to do",
    413: "Body over 1 MB (also once decompressed) or more than 1,000 events",
    422: "Fields are invalid: `errors` lists every one with what is wrong, `field` names the first",
    503: "Storage refused after retries: send the request again (for events, those in `not_stored`)",
}
ADMIN_ERRORS = (400, 401, 403, 404, 413, 422, 503)
TOKEN_ERRORS = (400, 401, 403, 413, 422, 429, 503)


def documented(status: int, model: Any, description: str, errors: tuple[int, ...]) -> dict[int, OpenAPIResponse]:
    """The `responses` of a route: its success answer and the errors it can give, one shape each."""
    answers: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
        if model is not None
        else {"description": description, "content": {}}  # no body (204): no media type, whatever it returns
    }
    for code in sorted(set(errors)):
        answers[code] = {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return answers
