"""The results as a person reads them: a self-contained HTML page (verdict, variants table, and
inline SVG charts of the cumulative lift with its interval and of the probability to be best over
the days; then each secondary metric's table), and the same as text for a terminal. Pure
functions of the snapshots."""

import html
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from abacus.core.documents import (
    Analysis,
    Breakdown,
    Experiment,
    Lift,
    MetricAnalysis,
    Snapshot,
    SnapshotAnalysis,
    VariantAnalysis,
)

_COLOURS = [
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
    "#eeca3b",
]


# The charts' size and margins, in SVG units.
_WIDTH, _HEIGHT, _LEFT, _RIGHT, _BOTTOM, _TOP = 640, 260, 56, 16, 28, 24
_PLOT_WIDTH = _WIDTH - _LEFT - _RIGHT
# A date label's width is at most this per character (11px sans-serif: a digit is 7 in DejaVu
# Sans), and labels keep this gap between them.
_DIGIT_WIDTH, _LABEL_GAP = 0.65 * 11, 8
# The values labelled at the left stand at least this far apart (their font is 11).
_TICK_CLEARANCE = 14
# On a single day, the series stand side by side, this far apart, so that their intervals show.
_DODGE = 14
# One value a day per variant (None where undefined), and the interval around it.
type Series = dict[str, list[float | None]]
type Bands = dict[str, list[list[float] | None]]


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


def _line(variant: str, exposures: str, value: str, mean: str, best: str, lift: str, p: str) -> str:
    return f"{variant:<14}{exposures:>10}{value:>12}{mean:>10}{best:>9}   {lift:<30}{p:>8}"


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


def _guardrail_title(analysis: MetricAnalysis) -> str:
    return _metric_title(analysis).replace("Secondary metric: ", "Guardrail: ", 1)


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


def _funnel_lines(analysis: MetricAnalysis) -> list[str]:
    table = funnel_rows(analysis)
    if not table:
        return []
    width = max(len(row[0]) for row in table) + 2
    lines = ["".join([row[0].ljust(width), *(cell.rjust(22) for cell in row[1:])]) for row in table]
    return ["Users who got as far as each step (the test is on the last):", *lines]


def _funnel_html(analysis: MetricAnalysis) -> str:
    table = funnel_rows(analysis)
    if not table:
        return ""
    header, *body = table
    return (
        '<table class="funnel"><caption>Users who got as far as each step (the test is on the last)</caption>'
        "<thead><tr>"
        + "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in body)
        + "</tbody></table>"
    )


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


def _breakdown_lines(snapshot: SnapshotAnalysis) -> list[str]:
    lines: list[str] = []
    for breakdown in snapshot.get("breakdowns", []):
        table = breakdown_rows(breakdown)
        width = max(len(row[0]) for row in table) + 2
        lines += ["", breakdown_note(breakdown)]
        lines += [
            "".join([row[0].ljust(width), row[1].rjust(10), *(f"   {cell}" for cell in row[2:])]) for row in table
        ]
    return lines


def _breakdown_sections(snapshot: SnapshotAnalysis) -> str:
    breakdowns = snapshot.get("breakdowns", [])
    if not breakdowns:
        return ""
    sections = []
    for breakdown in breakdowns:
        header, *body = breakdown_rows(breakdown)
        sections.append(
            f'<section class="breakdown"><h3>By {html.escape(breakdown["property"])}</h3>'
            f'<p class="note">{html.escape(breakdown_note(breakdown))}</p><table><thead><tr>'
            + "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in body)
            + "</tbody></table></section>"
        )
    return "<h2>Breakdowns</h2>" + "".join(sections)


def _metric_title(analysis: MetricAnalysis) -> str:
    metric = analysis["metric"]
    if metric["kind"] in ("ratio", "funnel"):
        return f"Secondary metric: {_metric_words(metric)}"
    return f"Secondary metric: {metric.get('event')} ({metric['kind']}){filters_text(metric)}"


def _metric_words(metric: Mapping[str, Any]) -> str:
    """The primary metric as the report's first line names it: "purchase, count", a ratio, a funnel."""
    if metric.get("kind") == "ratio":
        return ratio_text(metric)
    if metric.get("kind") == "funnel":
        return funnel_text(metric)
    return f"{metric.get('event', '?')}, {metric.get('kind', '')}{filters_text(metric)}"


def _text_table(analysis: Analysis) -> list[str]:
    header = _line("variant", "exposures", "value", "mean", "P(best)", "lift (95% CI)", "p-value")
    return [header, *(_line(*r) for r in rows(analysis))]


def text(snapshot: Snapshot, experiment: str) -> str:
    metric = snapshot.get("metric", {})
    lines = [
        f"{experiment}: results for {snapshot['date']} (metric {_metric_words(metric)})",
        "",
        *_text_table(snapshot),
    ]
    srm = snapshot["srm"]
    lines += ["", f"Sample ratio check: p = {srm['p_value']:.3f}" + (" MISMATCH" if srm["mismatch"] else " (ok)")]
    lines += [sentence] if (sentence := daily_srm_sentence(snapshot)) else []
    lines.append(verdict_sentence(snapshot))
    lines += snapshot.get("explanation", [])
    lines += [sentence] if (sentence := cap_sentence(snapshot)) else []
    lines += _funnel_lines(snapshot)
    lines += _breakdown_lines(snapshot)
    secondary = snapshot.get("secondary_metrics", [])
    if secondary:
        lines += ["", secondary_note(snapshot)]
    for analysis in secondary:
        lines += ["", _metric_title(analysis), *_text_table(analysis), metric_verdict_sentence(analysis)]
        lines += [sentence] if (sentence := cap_sentence(analysis)) else []
        lines += _funnel_lines(analysis)
    for analysis in snapshot.get("guardrail_metrics", []):
        lines += ["", _guardrail_title(analysis), *_text_table(analysis), guardrail_sentence(analysis)]
        lines += [sentence] if (sentence := cap_sentence(analysis)) else []
        lines += _funnel_lines(analysis)
    return "\n".join(lines)


@dataclass(frozen=True)
class _Frame:
    """Where a day and a value land in the chart: days spread over the width (a single day in the
    middle), values from low (bottom) to high (top); `shift` moves a series aside on a single day."""

    low: float
    high: float
    days: int
    shift: float = 0.0

    def x(self, day: int) -> float:
        if self.days == 1:
            return _LEFT + _PLOT_WIDTH / 2 + self.shift
        return _LEFT + day * _PLOT_WIDTH / (self.days - 1)

    def y(self, value: float) -> float:
        return _TOP + (self.high - value) / (self.high - self.low) * (_HEIGHT - _TOP - _BOTTOM)

    def of_series(self, index: int, count: int) -> "_Frame":
        """The frame a series draws in: on a single day, side by side with the others."""
        return replace(self, shift=(index - (count - 1) / 2) * _DODGE) if self.days == 1 else self


def _frame(values: list[float], days: int) -> _Frame:
    """The frame that fits every value and 0 (the no-difference line)."""
    low, high = min([*values, 0.0]), max([*values, 0.0])
    if high == low:
        high = low + 1
    return _Frame(low, high, days)


def _figure(title: str, content: str) -> str:
    return f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>{content}</figure>'


def _axes(frame: _Frame, title: str, days: list[str], as_percent: bool, counts: bool = False) -> list[str]:
    """The SVG's opening, the dashed zero line, the values' labels and the days'."""
    zero = frame.y(0)
    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="{_WIDTH}" height="{_HEIGHT}">',
        f'<line x1="{_LEFT}" y1="{zero:.1f}" x2="{_WIDTH - _RIGHT}" y2="{zero:.1f}" stroke="#999" '
        'stroke-dasharray="4 3"/>',
    ]
    for tick in _value_ticks(frame):
        label = f"{tick:,.0f}" if counts else _tick_label(tick, frame.high - frame.low, signed=as_percent)
        parts.append(
            f'<text x="{_LEFT - 6}" y="{frame.y(tick) + 4:.1f}" text-anchor="end" font-size="11">{label}</text>'
        )
    for i, anchor in _day_labels(frame, days):
        parts.append(
            f'<text x="{frame.x(i):.1f}" y="{_HEIGHT - 8}" text-anchor="{anchor}" font-size="11">'
            f"{html.escape(days[i])}</text>"
        )
    return parts


def _value_ticks(frame: _Frame) -> list[float]:
    """The values labelled at the left: 0, the no-difference line, always; then the lowest, the
    highest and the middle value, each where it keeps clear of the labels placed."""
    placed: list[float] = []
    for tick in (0.0, frame.low, frame.high, (frame.low + frame.high) / 2):
        if all(abs(frame.y(tick) - frame.y(other)) >= _TICK_CLEARANCE for other in placed):
            placed.append(tick)
    return placed


def _tick_label(value: float, span: float, signed: bool) -> str:
    """A value as a percentage, 0 as 0% (neither +0% nor -0%), with the decimals the chart's span
    needs for labels a clearance apart to read differently (and never as 0%)."""
    if value == 0:
        return "0%"
    decimals = max(0, math.ceil(math.log10(20 / (span * 100))))
    return f"{value:+.{decimals}%}" if signed else f"{value:.{decimals}%}"


def _day_labels(frame: _Frame, days: list[str]) -> list[tuple[int, str]]:
    """The days labelled under the chart, with their anchors: a single day centred under it; else
    the first (from its left end) and the last (to its right end), so neither leaves the chart, and
    between them every n-th day, centred, n the fewest days that keep a label and a gap apart from
    its neighbours."""
    if len(days) == 1:
        return [(0, "middle")]
    # How far a centred label stands from an end's (half its width and a whole one, and a gap).
    apart = 1.5 * max(map(len, days)) * _DIGIT_WIDTH + _LABEL_GAP
    last = len(days) - 1
    every = math.ceil(apart / (frame.x(1) - frame.x(0)))
    between = [(i, "middle") for i in range(every, last, every) if frame.x(last) - frame.x(i) >= apart]
    return [(0, "start"), *between, (last, "end")]


def _band(frame: _Frame, pairs: list[list[float] | None], colour: str) -> list[str]:
    """The interval around a series as a shaded polygon, or as an error bar when a single day has
    one (a polygon over one day has no width); none when no day has one."""
    upper = [(frame.x(i), frame.y(p[1])) for i, p in enumerate(pairs) if p]
    lower = [(frame.x(i), frame.y(p[0])) for i, p in enumerate(pairs) if p]
    if not upper:
        return []
    if len(upper) == 1:
        (x, top), (_, bottom) = upper[0], lower[0]
        bar = f"M{x - 5:.1f},{top:.1f}H{x + 5:.1f}M{x:.1f},{top:.1f}V{bottom:.1f}M{x - 5:.1f},{bottom:.1f}H{x + 5:.1f}"
        return [f'<path class="band" d="{bar}" fill="none" stroke="{colour}" stroke-width="1.5"/>']
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in upper + lower[::-1])
    return [f'<polygon class="band" points="{points}" fill="{colour}" fill-opacity="0.18"/>']


def _series(frame: _Frame, index: int, name: str, line: list[float | None], colour: str) -> list[str]:
    """A series' line (skipping undefined days), or its point when a single day has a value, and its
    name, stacked at the top right."""
    points = [(frame.x(i), frame.y(v)) for i, v in enumerate(line) if v is not None]
    if len(points) == 1:
        mark = f'<circle class="series" cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="4" fill="{colour}"/>'
    else:
        drawn = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        mark = f'<polyline class="series" points="{drawn}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
    return [
        mark,
        f'<text x="{_WIDTH - 12}" y="{_TOP + 14 * index}" text-anchor="end" font-size="12" fill="{colour}">'
        f"{html.escape(name)}</text>",
    ]


def _chart(
    title: str, days: list[str], series: Series, bands: Bands | None, as_percent: bool, counts: bool = False
) -> str:
    """A line chart as inline SVG: one line per series (None gaps), optional interval bands; values
    labelled as percentages (signed for a lift), or as whole numbers (`counts`)."""
    bands = bands or {}
    values = [v for line in series.values() for v in line if v is not None]
    values += [v for pairs in bands.values() for pair in pairs if pair for v in pair]
    if not values or not days:
        return _figure(title, "<p>No data yet.</p>")
    frame = _frame(values, len(days))
    parts = _axes(frame, title, days, as_percent, counts)
    for index, (name, line) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        drawn_in = frame.of_series(index, len(series))
        parts += _band(drawn_in, bands.get(name) or [], colour) + _series(drawn_in, index, name, line, colour)
    parts.append("</svg>")
    return _figure(title, "".join(parts))


def _variant_row(snapshot: Snapshot, key: str) -> VariantAnalysis | None:
    return next((row for row in snapshot["variants"] if row["key"] == key), None)


def _over_days[V](history: list[Snapshot], key: str, number: Callable[[VariantAnalysis], V | None]) -> list[V | None]:
    """A number of one variant's row, day by day (None on a day without that variant)."""
    return [None if row is None else number(row) for row in (_variant_row(day, key) for day in history)]


def _html_table(analysis: Analysis) -> str:
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in r) + "</tr>" for r in rows(analysis))
    return (
        "<table><thead><tr><th>Variant</th><th>Exposures</th><th>Conversions / sum</th><th>Mean</th>"
        "<th>P(best)</th><th>Relative lift (95% interval)</th><th>p-value</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _metric_html(metric: Mapping[str, Any]) -> str:
    if metric.get("kind") in ("ratio", "funnel"):
        return f"<b>{html.escape(_metric_words(metric))}</b>"
    return (
        f"<b>{html.escape(str(metric.get('event', '')))}</b> "
        f"({html.escape(str(metric.get('kind', '')))}){html.escape(filters_text(metric))}"
    )


def _cap_paragraph(analysis: MetricAnalysis) -> str:
    sentence = cap_sentence(analysis)
    return f'<p class="cap">{html.escape(sentence)}</p>' if sentence else ""


def _guardrail_sections(snapshot: SnapshotAnalysis) -> str:
    """Each guardrail's table and what each treatment does to it."""
    guarded = snapshot.get("guardrail_metrics", [])
    if not guarded:
        return ""
    return "<h2>Guardrails</h2>" + "".join(
        f'<section class="guardrail"><h3>{html.escape(_guardrail_title(analysis))}</h3>'
        f'<p class="guardrail-status">{html.escape(guardrail_sentence(analysis))}</p>'
        f"{_cap_paragraph(analysis)}{_html_table(analysis)}{_funnel_html(analysis)}</section>"
        for analysis in guarded
    )


def _secondary_sections(snapshot: SnapshotAnalysis) -> str:
    """Each secondary metric's table and what its analysis found, under a note on the adjustment."""
    secondary = snapshot.get("secondary_metrics", [])
    if not secondary:
        return ""
    return f'<h2>Secondary metrics</h2><p class="note">{html.escape(secondary_note(snapshot))}</p>' + "".join(
        f'<section class="secondary"><h3>{html.escape(_metric_title(analysis))}</h3>'
        f'<p class="metric-verdict">{html.escape(metric_verdict_sentence(analysis))} '
        f"({html.escape(analysis.get('method', ''))})</p>{_cap_paragraph(analysis)}{_html_table(analysis)}"
        f"{_funnel_html(analysis)}</section>"
        for analysis in secondary
    )


def _results_body(history: list[Snapshot]) -> str:
    """The verdict, the variants table and the two charts, from the latest snapshot and the days;
    then the secondary metrics' tables."""
    latest = history[-1]
    days = [s["date"] for s in history]
    treatments = [r["key"] for r in latest["variants"] if "lift" in r]
    lifts: Series = {key: _over_days(history, key, _relative_lift) for key in treatments}
    bands: Bands = {key: _over_days(history, key, _relative_interval) for key in treatments}
    best: Series = {r["key"]: _over_days(history, r["key"], _probability_to_be_best) for r in latest["variants"]}
    metric = latest.get("metric", {})
    return (
        f'<p class="verdict verdict-{latest["verdict"]["decision"]}">{html.escape(verdict_sentence(latest))}</p>'
        f"<p>Data up to {html.escape(latest['date'])}; metric {_metric_html(metric)}; "
        f"{html.escape(latest.get('method', ''))}.</p>"
        + "".join(f'<p class="explanation">{html.escape(sentence)}</p>' for sentence in latest.get("explanation", []))
        + (f'<p class="srm-by-day">{html.escape(daily)}</p>' if (daily := daily_srm_sentence(latest)) else "")
        + _cap_paragraph(latest)
        + _html_table(latest)
        + _funnel_html(latest)
        + _chart("Cumulative relative lift over control, with its 95% interval", days, lifts, bands, True)
        + _chart("Probability to be best", days, best, None, False)
        + _exposures_chart(latest)
        + _guardrail_sections(latest)
        + _breakdown_sections(latest)
        + _secondary_sections(latest)
    )


def _exposures_chart(snapshot: SnapshotAnalysis) -> str:
    """First exposures per day and variant (the SRM check's days), where a broken split shows."""
    daily = snapshot.get("exposures_by_day")
    if not daily or not daily["days"]:
        return ""
    keys = [row["key"] for row in snapshot["variants"]]
    per_day: Series = {key: [float(day["exposures"][index]) for day in daily["days"]] for index, key in enumerate(keys)}
    return _chart("First exposures per day", [day["date"] for day in daily["days"]], per_day, None, False, counts=True)


def _relative_lift(row: VariantAnalysis) -> float | None:
    lift = row.get("lift")
    return lift["relative"] if lift else None


def _relative_interval(row: VariantAnalysis) -> list[float] | None:
    lift = row.get("lift")
    return lift["relative_ci"] if lift else None


def _probability_to_be_best(row: VariantAnalysis) -> float | None:
    return row.get("probability_to_be_best")


def results_section(history: list[Snapshot]) -> str:
    """The results as HTML (the verdict, tables and charts), every text in it escaped: what the
    report page and the console show."""
    if not history:
        return "<p>No results yet: the nightly job computes the first snapshot after a full day running.</p>"
    return _results_body(history)


def page(experiment: Experiment, history: list[Snapshot]) -> str:
    """The report page for an experiment (its API description) and its snapshots, oldest first."""
    name = html.escape(experiment.get("name") or experiment["key"])
    body = results_section(history)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{name}: Abacus results</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 760px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.verdict {{ font-size: 1.2rem; padding: .75rem 1rem; border-radius: 6px; background: #eef; }}
.verdict-ship {{ background: #e3f4e1; }} .verdict-invalid, .verdict-held_back {{ background: #fde2e1; }}
figure.chart {{ margin: 1.5rem 0; }} figcaption {{ font-weight: 600; margin-bottom: .5rem; }}
</style></head>
<body><h1>{name}</h1><p><code>{html.escape(experiment["key"])}</code> · {html.escape(experiment.get("status", ""))}</p>
{body}
</body></html>"""
