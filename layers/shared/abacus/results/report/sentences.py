"""The results in words, as both the text and the HTML report put them: each variant's row as the
table shows it, the verdicts (the experiment's, a secondary metric's, a guardrail's), and the
sentences on the sample ratio, caps, funnels and breakdowns. Pure functions of a snapshot."""

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from abacus.core.documents import (
    Analysis,
    Breakdown,
    Lift,
    MetricAnalysis,
    MetricWarning,
    SnapshotAnalysis,
    VariantAnalysis,
)


class DisplayRow(NamedTuple):
    """One variant as the table shows it, every cell a string."""

    variant: str
    exposures: str
    value: str
    mean: str
    best: str
    lift: str
    p: str


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.2%}"


def verdict_sentence(snapshot: Analysis) -> str:
    verdict = snapshot["verdict"]
    decision = verdict["decision"]
    if decision == "ship":
        return f"Ship '{verdict['variant']}': {verdict['reason']}."
    if decision == "invalid":
        return f"Invalid: {verdict['reason']}. Fix the split before trusting any number here."
    if decision == "no_effect":
        return f"Stop, no effect: {verdict['reason']}."
    if decision == "held_back":
        return f"Do not ship: {verdict['reason']}."
    return f"Keep running: {verdict['reason']}."


def warning_sentences(warnings: list[MetricWarning]) -> list[str]:
    """Each metric event not received since the launch (the results' `warnings`), in words: its
    metric counts nothing from it, whatever the verdict says, until the app sends that name."""
    return [
        f"Warning: {warning['message']}. The metric's {warning['field']} counts nothing until an event of "
        "that exact name (case included) arrives: check the name the app sends."
        for warning in warnings
    ]


def rows(snapshot: Analysis) -> list[DisplayRow]:
    """One display row per variant."""
    return [_display_row(row, snapshot.get("kind") == "conversion") for row in snapshot["variants"]]


def _display_row(row: VariantAnalysis, is_rate: bool) -> DisplayRow:
    lift = row.get("lift")
    return DisplayRow(
        variant=row["key"],
        exposures=str(row["exposures"]),
        value=str(row.get("conversions", round(row.get("sum", 0.0), 2))),
        mean=_mean(row, is_rate),
        best=_percent(row.get("probability_to_be_best")),
        lift="(control)" if lift is None else _lift_with_interval(lift),
        p="" if lift is None else ("n/a" if row["p_value"] is None else f"{row['p_value']:.4f}"),
    )


def _mean(row: VariantAnalysis, is_rate: bool) -> str:
    """The mean the lift is computed from: CUPED's adjusted one (marked *) when there is one."""
    adjusted = row.get("adjusted_mean")
    mean = row["mean"] if adjusted is None else adjusted
    shown = _percent(mean) if is_rate else f"{mean:.4g}"
    return shown if adjusted is None else shown + "*"


def _lift_with_interval(lift: Lift) -> str:
    interval = lift["relative_ci"]
    bounds = f" [{_percent(interval[0], True)}, {_percent(interval[1], True)}]" if interval else ""
    return _percent(lift["relative"], True) + bounds


def metric_verdict_sentence(analysis: Analysis) -> str:
    """What a secondary metric's own analysis found: the experiment's verdict rests on the primary."""
    verdict = analysis["verdict"]
    found = {
        "ship": "Significant on this metric",
        "invalid": "Invalid",
        "no_effect": "No effect on this metric",
        "keep_running": "Not conclusive on this metric",
        "held_back": "Held back on this metric",
    }
    return f"{found[verdict['decision']]}: {verdict['reason']}."


_GUARDRAIL_WORDS = {
    "harmed": "harmed (beyond the margin)",
    "held": "held (within the margin)",
    "inconclusive": "not yet conclusive",
}


def guardrail_sentence(analysis: MetricAnalysis) -> str:
    """A guardrail's margin and what each treatment does to it, in words."""
    result = analysis.get("guardrail")
    if result is None:
        return ""
    worse = "an increase" if result["bad_direction"] == "increase" else "a decrease"
    statuses = ", ".join(f"'{key}' {_GUARDRAIL_WORDS[status]}" for key, status in result["status"].items())
    return f"Guardrail: {worse} of more than {result['margin']:.1%} is a harm. {statuses}."


def guardrail_title(analysis: MetricAnalysis) -> str:
    return metric_title(analysis).replace("Secondary metric: ", "Guardrail: ", 1)


def secondary_note(snapshot: SnapshotAnalysis) -> str:
    """How far the secondary metrics' p-values are adjusted for the comparisons made."""
    secondary = snapshot.get("secondary_metrics", [])
    treatments = [row for row in snapshot["variants"] if "lift" in row]
    analysed = 1 + len(secondary)
    adjusted = all("p_value_adjusted" in row for metric in secondary for row in metric["variants"] if "lift" in row)
    within = (
        f"Holm-adjusted across each metric's {len(treatments)} comparisons with the control, but not"
        if adjusted and len(treatments) > 1
        else "not adjusted"
    )
    return (
        f"Secondary metrics are analysed as the primary is; their p-values are {within} for the {analysed} metrics "
        "analysed, so one may cross the significance bar by chance. The verdict rests on the primary metric."
    )


_OPERATOR_WORDS = {
    "eq": "=",
    "neq": "!=",
    "in": "in",
    "not_in": "not in",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "contains": "contains",
    "is_set": "is set",
    "is_not_set": "is not set",
}


def filters_text(metric: Mapping[str, Any]) -> str:
    """A metric's event filters in words (" where plan = "pro" and ..."), "" without any."""
    conditions = [
        f"{condition['property']} {_OPERATOR_WORDS.get(str(condition['operator']), condition['operator'])}"
        + ("" if condition.get("value") is None else f" {json.dumps(condition['value'])}")
        for condition in metric.get("filters") or []
    ]
    return f" where {' and '.join(conditions)}" if conditions else ""


def counting_sentence(snapshot: SnapshotAnalysis) -> str | None:
    """What was counted, when it is not plainly users: groups, or persons seen in several variants."""
    said = []
    if unit := snapshot.get("counted_unit"):
        said.append(f"Counted by {unit}: each is exposed and converts once, whichever of its users acts.")
    several = sum(snapshot.get("persons_in_several_variants", {}).values())
    if several:
        said.append(
            f"{several} {'person' if several == 1 else 'persons'} saw more than one variant under ids joined later "
            "(signing in on a second device): each is counted once, in the variant of their first exposure."
        )
    return " ".join(said) or None


def daily_srm_sentence(snapshot: SnapshotAnalysis) -> str | None:
    """Where in time the exposures stop fitting the weights: the first day whose own check fails."""
    daily = snapshot.get("exposures_by_day")
    if daily is None:
        return None
    days = daily["days"]
    first = daily["first_mismatch"]
    if first is None:
        return f"By day of first exposure ({len(days)} days): no day's exposures mismatch the weights."
    day = next(d for d in days if d["date"] == first)
    counts = ", ".join(str(count) for count in day["exposures"])
    return (
        f"By day of first exposure: the first mismatch is on {first} (exposures {counts}; "
        f"p = {day['p_value']:.2g} < {daily['threshold']:.2g}, the threshold shared over {len(days)} days)."
    )


def cap_sentence(analysis: MetricAnalysis) -> str | None:
    """What a capped metric's cap was and whom it lowered, in words (None: not capped)."""
    cap = analysis.get("cap")
    if cap is None:
        return None
    lowered = ", ".join(f"{count:,} in {variant}" for variant, count in cap["users_capped"].items())
    if cap["value"] is None:
        return (
            f"Each user's value is capped at the {_ordinal(cap.get('percentile', 0))} percentile of the values "
            "above 0; no user has one yet."
        )
    at = f"{cap['value']:,.6g}"
    if "part" in cap:
        return f"Each user's {cap['part']} is capped at {at}; users lowered: {lowered}."
    if "percentile" in cap:
        at += f" (the {_ordinal(cap['percentile'])} percentile of the exposed users' values above 0, within 2%)"
    return f"Each user's value is capped at {at}; users lowered: {lowered}."


def _ordinal(percentile: float) -> str:
    number = f"{percentile * 100:.10g}"
    last = number[-1]
    if number.endswith(("11", "12", "13")) or "." in number or last not in "123":
        return f"{number}th"
    return number + {"1": "st", "2": "nd", "3": "rd"}[last]


def ratio_text(metric: Mapping[str, Any]) -> str:
    """A ratio metric in words: "ratio of purchase (sum of amount) to visit (count)"."""

    def part(component: Mapping[str, Any]) -> str:
        what = f"sum of {component.get('property')}" if component.get("kind") == "sum" else component.get("kind")
        return f"{component.get('event')} ({what}){filters_text(component)}"

    return f"ratio of {part(metric.get('numerator') or {})} to {part(metric.get('denominator') or {})}"


def funnel_text(metric: Mapping[str, Any]) -> str:
    """A funnel metric in words: "funnel view_cart → checkout → purchase, in order within 7 days"."""
    steps = " → ".join(f"{step.get('event')}{filters_text(step)}" for step in metric.get("steps") or [])
    return f"funnel {steps}, in order within {metric.get('window_days')} days"


def funnel_rows(analysis: MetricAnalysis) -> list[list[str]]:
    """A funnel's table: a header of variants, then per step the users per variant who got that far
    and their share of the variant's exposures ([]: not a funnel)."""
    steps = analysis.get("funnel_steps")
    if not steps:
        return []
    exposures = {row["key"]: row["exposures"] for row in analysis["variants"]}
    header = ["step", *exposures]
    return [header] + [
        [
            f"{number}. {step['event']}{filters_text(step)}",
            *(_count_and_share(step["conversions"].get(v, 0), n) for v, n in exposures.items()),
        ]
        for number, step in enumerate(steps, start=1)
    ]


def _count_and_share(part: int, whole: int) -> str:
    return f"{part:,} ({_percent(part / whole if whole else None)})"


def breakdown_note(breakdown: Breakdown) -> str:
    """The caveat a breakdown's table comes with."""
    incomplete = [segment for segment in breakdown["segments"] if not segment["complete"]]
    partly = (
        f" {len(incomplete)} value(s) marked ~ had more distinct values beside them on a page than it keeps: "
        "some of their users are counted in other."
        if incomplete
        else ""
    )
    return (
        f"Breakdown by {breakdown['property']} at first exposure: {breakdown['method']} "
        f"({breakdown['comparisons']} comparisons). It shows where an effect lies; the verdict rests on the "
        f"whole experiment.{partly}"
    )


def breakdown_rows(breakdown: Breakdown) -> list[list[str]]:
    """A breakdown's table: per value (then "other"), its users and each treatment's lift with its
    interval and Holm-adjusted p-value."""
    treatments = [row["key"] for row in breakdown["segments"][0]["variants"] if "lift" in row]
    header = ["value", "users", *(f"{key}: lift (95% CI), p adj." for key in treatments)]
    body = []
    for segment in breakdown["segments"]:
        label = "other" if segment["other"] else "(not set)" if segment["value"] is None else str(segment["value"])
        cells = [label + ("" if segment["complete"] else " ~"), f"{segment['users']:,}"]
        for key in treatments:
            row = next((r for r in segment["variants"] if r["key"] == key), None)
            lift = row.get("lift") if row else None
            adjusted = row.get("p_value_adjusted") if row else None
            cells.append(
                "n/a"
                if lift is None
                else _lift_with_interval(lift) + (f", p {adjusted:.3f}" if adjusted is not None else "")
            )
        body.append(cells)
    return [header, *body]


def metric_title(analysis: MetricAnalysis) -> str:
    metric = analysis["metric"]
    if metric["kind"] in ("ratio", "funnel"):
        return f"Secondary metric: {metric_words(metric)}"
    return f"Secondary metric: {metric.get('event')} ({metric['kind']}){filters_text(metric)}"


def metric_words(metric: Mapping[str, Any]) -> str:
    """The primary metric as the report's first line names it: "purchase, count", a ratio, a funnel."""
    if metric.get("kind") == "ratio":
        return ratio_text(metric)
    if metric.get("kind") == "funnel":
        return funnel_text(metric)
    return f"{metric.get('event', '?')}, {metric.get('kind', '')}{filters_text(metric)}"
