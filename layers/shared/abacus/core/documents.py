"""The JSON documents that cross modules, named as TypedDicts: the stats engine's analysis of a
metric, the nightly job's snapshots, and the API's answers built from them. These are the types
the code builds and reads (the API's other answers are in answers.py). Standard library only: the
stats layer, assign and ingest all import it.

The owner of each answer's shape: abacus.http.responses documents some of these as they are
(Rejected, RatioTotals, CupedSummary, FieldError, IngestOutcome), generated from the TypedDicts
here. The others it documents with pydantic models of its own, which
tests/unit/http/test_response_shapes.py checks against these field by field: a field added here is
added there too (or listed there as a difference the document chooses)."""

from typing import Literal, NotRequired, TypedDict

# Any JSON value, where the shape is the caller's (event properties, a stored definition).
type Json = dict[str, Json] | list[Json] | str | int | float | bool | None
Decision = Literal["invalid", "ship", "no_effect", "keep_running", "held_back"]
GuardrailStatus = Literal["harmed", "held", "inconclusive"]
MetricKind = Literal["conversion", "mean"]
Design = Literal["fixed", "spending", "msprt"]


class MetricJson(TypedDict):
    """schemas.MetricSpec as JSON (a snapshot's copy leaves out the fields that are null)."""

    event: NotRequired[str]  # all but a ratio and a funnel
    kind: Literal["conversion", "count", "sum", "ratio", "funnel"]
    property: NotRequired[str | None]
    window_days: int
    filters: NotRequired[list[dict[str, Json]]]  # schemas.EventFilter; a snapshot's copy leaves out []
    cap: NotRequired[dict[str, float] | None]  # schemas.Cap
    numerator: NotRequired["MetricJson"]  # a ratio's
    denominator: NotRequired["MetricJson"]
    steps: NotRequired[list[dict[str, Json]]]  # a funnel's: schemas.FunnelStep
    baseline: NotRequired[float | None]
    baseline_mean: NotRequired[float | None]
    baseline_sd: NotRequired[float | None]


class Lift(TypedDict):
    absolute: float
    relative: float | None
    relative_ci: list[float] | None


class VariantAnalysis(TypedDict):
    """One variant's row: its statistics, and for a treatment its comparison with the control."""

    key: str
    exposures: int
    conversions: NotRequired[int]  # conversion metrics
    sum: NotRequired[float]  # mean metrics
    sum_squares: NotRequired[float]  # mean metrics
    mean: float
    standard_error: float
    credible_interval: list[float] | None
    probability_to_be_best: float | None
    expected_loss: float | None
    lift: NotRequired[Lift]
    p_value: NotRequired[float | None]
    p_value_fixed: NotRequired[float | None]  # sequential analyses
    relative_ci_fixed: NotRequired[list[float] | None]  # sequential analyses
    p_value_adjusted: NotRequired[float | None]
    significant: NotRequired[bool]
    # CUPED: the pre-exposure covariate's sums, the adjusted mean, and for a treatment how much
    # the adjustment narrowed the variance of its difference from the control.
    pre_sum: NotRequired[float]
    pre_sum_squares: NotRequired[float]
    cross_sum: NotRequired[float]
    # The skewness correction's sums (abacus.stats.skewness), where they were kept: a mean
    # metric's sum of cubes; with the covariate its cubes and the mixed sums (pre-value times
    # outcome squared, only for a mean metric; pre-value squared times outcome).
    sum_cubes: NotRequired[float]
    pre_sum_cubes: NotRequired[float]
    cross_sum_outcome_squared: NotRequired[float]
    cross_sum_pre_squared: NotRequired[float]
    adjusted_mean: NotRequired[float]
    adjusted_standard_error: NotRequired[float]
    variance_reduction: NotRequired[float]
    # The spending design: the share of the planned information reached, and the |z| this look needed.
    information_fraction: NotRequired[float | None]
    boundary: NotRequired[float | None]
    # A treatment's side of the control as its test found it: for the spending design, at the look
    # whose p-value is reported (the crossing look, once one crossed), which tonight's estimate
    # may contradict; for the other designs, tonight's. None without an estimate.
    direction: NotRequired[Literal["higher", "lower"] | None]


def significantly_higher(row: VariantAnalysis) -> bool:
    """Whether the test found this treatment's mean significantly above the control's."""
    return bool(row.get("significant")) and _direction(row) == "higher"


def significantly_lower(row: VariantAnalysis) -> bool:
    """Whether the test found this treatment's mean significantly below the control's."""
    return bool(row.get("significant")) and _direction(row) == "lower"


def _direction(row: VariantAnalysis) -> str | None:
    if "direction" in row:
        return row["direction"]
    lift = row.get("lift")  # rows stored before the direction was kept: tonight's lift
    absolute = lift["absolute"] if lift else None
    return None if not absolute else ("higher" if absolute > 0 else "lower")


class SampleRatioCheck(TypedDict):
    p_value: float
    mismatch: bool


class Verdict(TypedDict):
    decision: Decision
    variant: str | None
    reason: str
    days_left: NotRequired[int | None]  # keep_running only


class CupedSummary(TypedDict):
    """The pre-exposure adjustment: its pooled coefficient, and how much it narrowed the variance."""

    theta: float
    variance_reduction: float


class Analysis(TypedDict):
    """abacus.stats.analyse(): one metric of an experiment analysed."""

    kind: MetricKind
    control: str
    alpha: float
    sequential: bool
    design: Design
    method: str
    planned_exposures: int | None
    cuped: CupedSummary | None
    explanation: list[str]  # the design and the adjustment, in sentences
    variants: list[VariantAnalysis]
    srm: SampleRatioCheck
    verdict: Verdict


class CapReport(TypedDict):
    """A capped metric's cap as applied: the value (None: no user with a value above 0 to take a
    percentile of), the percentile it was taken at (of the values above 0), and per variant the
    users whose value it lowered."""

    value: float | None
    percentile: NotRequired[float]
    users_capped: dict[str, int]
    part: NotRequired[Literal["numerator", "denominator"]]  # a ratio's capped part


class FunnelStepCounts(TypedDict):
    """A funnel's step and, per variant, the users who did it and every step before it in order."""

    event: str
    filters: NotRequired[list[dict[str, Json]]]
    conversions: dict[str, int]


class RatioTotals(TypedDict):
    """A ratio metric's variant: the sums of its users' numerators and denominators."""

    numerator: float
    denominator: float


class DayOfExposures(TypedDict):
    """One day's first exposures per variant (in the variants' order) and that day's check."""

    date: str
    exposures: list[int]
    p_value: float
    mismatch: bool


class DailySampleRatio(TypedDict):
    """The sample ratio check per day of first exposures: the first day it fails, at the
    threshold shared over the days (Bonferroni)."""

    days: list[DayOfExposures]
    first_mismatch: str | None
    threshold: float


class GuardrailResult(TypedDict):
    """A guardrail's margin and direction, and per treatment what its analysis shows."""

    margin: float
    bad_direction: Literal["increase", "decrease"]
    status: dict[str, GuardrailStatus]


class MetricAnalysis(Analysis):
    """An analysis with the metric it is of (and, for a capped metric, its cap as applied; for a
    ratio, each variant's numerator and denominator; for a funnel, each step's conversions)."""

    metric: MetricJson
    cap: NotRequired[CapReport]
    ratio: NotRequired[dict[str, RatioTotals]]
    funnel_steps: NotRequired[list[FunnelStepCounts]]  # a funnel's, first step first
    guardrail: NotRequired[GuardrailResult]  # a guardrail metric's


class SegmentRow(TypedDict):
    """A variant within one value of a breakdown: VariantAnalysis's main numbers, with its
    p-value Holm-adjusted across the breakdown's comparisons."""

    key: str
    exposures: int
    conversions: NotRequired[int]
    sum: NotRequired[float]
    mean: float
    adjusted_mean: NotRequired[float]
    lift: NotRequired[Lift]
    p_value: NotRequired[float | None]
    p_value_adjusted: NotRequired[float | None]
    significant: NotRequired[bool]


class Segment(TypedDict):
    """The primary metric among the users with one value of a breakdown property (`other`: the
    rest of them together; `value` is then None)."""

    value: Json
    other: bool
    users: int
    complete: bool  # False: some of the value's users were counted in "other" (breakdown_sums.py)
    variants: list[SegmentRow]
    srm: SampleRatioCheck


class Breakdown(TypedDict):
    property: str
    method: str
    comparisons: int  # treatment-vs-control comparisons the Holm adjustment is across
    segments: list[Segment]  # the most common values first, then "other"


class BanditVariant(TypedDict):
    """A bandit's variant: its mean stratified by phase (abacus.stats.bandits), unbiased under the
    changing shares, with its 95% interval; its probability to be best and the expected loss of
    choosing it now, in the metric's units."""

    key: str
    exposures: int
    mean: float
    standard_error: float
    interval: list[float]
    probability_best: float
    expected_loss: float
    lift: NotRequired[Lift]  # a treatment's: its stratified mean against the control's, 95% interval (Fieller)


class BanditReport(TypedDict):
    """A bandit's primary metric under its changing shares (abacus.nightly.bandit_analysis)."""

    variants: list[BanditVariant]  # empty until every variant has users enough for an estimate
    best: str | None
    target: dict[str, float]  # the shares Thompson sampling (or top-two) asks for next
    regret: float  # what the users shown other variants lost against the best, in the metric's units
    phases: int  # phases with users counted
    expected_shares: dict[str, float]  # each variant's share of the users, from each phase's shares
    shares: dict[str, float]  # the latest phase's shares of new users when the snapshot was computed
    reason: str


class SnapshotAnalysis(MetricAnalysis):
    """What the results table stores for a day: the primary metric's analysis, the others beside it."""

    secondary_metrics: list[MetricAnalysis]
    guardrail_metrics: NotRequired[list[MetricAnalysis]]
    exposures_by_day: NotRequired[DailySampleRatio]
    breakdowns: NotRequired[list[Breakdown]]  # the primary metric per value of each breakdown property
    # Per variant, its persons who had been exposed to another variant under an id joined to theirs
    # later (PostHog's $multiple): counted once, in the variant of their first exposure.
    persons_in_several_variants: NotRequired[dict[str, int]]
    counted_unit: NotRequired[str]  # a group experiment's counted groups, plural ("companies"); else users
    bandit: NotRequired[BanditReport]  # a bandit's: its variants under the changing shares, its decision's grounds


class MetricWarning(TypedDict):
    """A metric's event not received since the launch (experiments/received_events.py)."""

    field: str  # the metric's field naming the event: `primary_metric.event`, `secondary_metrics[0].steps[1].event`
    event: str
    message: str
    suggestions: list[str]  # the closest event names received since the launch, closest first


class CardLift(TypedDict):
    """The compared treatment's lift over the control: relative, absolute (in the metric's units),
    and in words in those units ("+1.3 purchase conversions per 100 users")."""

    relative: float | None
    absolute: float | None
    in_units: str


class CardInterval(TypedDict):
    """The relative lift's interval the decision rests on: the design's own (at tonight's
    boundary, always-valid, or fixed-horizon), named in `bar`; null ends where there is none."""

    low: float | None
    high: float | None
    level: float  # 1 - alpha
    bar: str  # "95% interval at tonight's boundary"
    text: str


class CardRisk(TypedDict):
    """The expected loss of shipping `variant` now, in the metric's units, and in words."""

    variant: str
    expected_loss: float
    text: str


class CardProbability(TypedDict):
    """The probability to be best of `variant`, and in words how it squares with the decision."""

    variant: str
    value: float
    text: str


class CardChanges(TypedDict):
    """What moved since the previous snapshot."""

    since: str | None  # the previous snapshot's date
    decision_before: Decision
    relative_lift_before: float | None  # the compared treatment's
    exposures_added: int
    days_left_before: int | None
    text: str


class DecisionCard(TypedDict):
    """The results in one statement (abacus.results.decision_card): the decision, why, the lift,
    its interval at the design's bar, the days left, the risk of shipping now and what changed."""

    decision: Decision
    variant: str | None  # the verdict's: the variant to ship
    treatment: str | None  # the treatment the lift, interval and figures are of
    date: str | None
    headline: str
    why: str
    lift: CardLift | None
    interval: CardInterval | None
    days_left: int | None
    expected_loss: CardRisk | None
    probability_to_be_best: CardProbability | None
    changes: CardChanges | None
    notes: list[str]  # the primary metric's events never received, which the decision cannot see


class Snapshot(SnapshotAnalysis):
    """A stored snapshot as the API and the report show it."""

    experiment: str
    date: str
    cutoff: str
    covers: str  # the data the snapshot counts, in words: a whole day, or the day so far (cutoff_words)
    computed_at: str
    final: bool  # a stopped experiment's last snapshot: its results will not change
    # Read with the snapshot, not stored: each metric event not received since the launch, as of now.
    warnings: NotRequired[list[MetricWarning]]
    # Read with the snapshot and the one before it, not stored: the API's answers carry it.
    decision_card: NotRequired[DecisionCard]


class ReadyResults(Snapshot):
    status: Literal["ready"]


class PendingResults(TypedDict):
    experiment: str
    status: Literal["pending"]
    message: str
    warnings: NotRequired[list[MetricWarning]]  # a launched experiment's, as a snapshot's


type Results = ReadyResults | PendingResults


class HistoryVariant(TypedDict):
    key: str
    exposures: int
    mean: float
    probability_to_be_best: float | None
    lift: float | None
    relative_ci: list[float] | None


class HistoryDay(TypedDict):
    date: str
    exposures: int
    verdict: Decision
    variants: list[HistoryVariant]


class ResultsHistory(TypedDict):
    experiment: str
    days: list[HistoryDay]


class NightlySummary(TypedDict):
    date: str
    analysed: int
    failed: int


class NightlyPlan(TypedDict):
    """What the nightly planner did: runs planned (one per experiment), first units sent, failures."""

    date: str
    planned: int
    units: int
    failed: int


# AlertsQueue's messages (abacus.alerts.follow_up takes them; abacus.http.invocations parses them).
class SnapshotStored(TypedDict):
    type: Literal["snapshot"]
    project: str
    experiment: str
    generation: int
    date: str


class DeliveryDue(TypedDict):
    type: Literal["delivery"]
    project: str
    experiment_id: str
    alert: str  # the alert's part (storage.alerts)
    webhook: str
