"""The results as HTML: the section the report page and the console show (the decision card as its
headline, tables and the charts of the lift, the probability to be best and the exposures per
day; then the guardrails, breakdowns and secondary metrics), and the self-contained report page
around it. Every text in it is escaped where it is built."""

import html
from collections.abc import Callable, Mapping
from typing import Any

from abacus.core.answers import Experiment
from abacus.core.documents import (
    Analysis,
    BanditVariant,
    DecisionCard,
    MetricAnalysis,
    Snapshot,
    SnapshotAnalysis,
    VariantAnalysis,
)
from abacus.results import decision_card
from abacus.results.report.charts import Bands, Series, chart
from abacus.results.report.sentences import (
    breakdown_note,
    breakdown_rows,
    cap_sentence,
    counting_sentence,
    daily_srm_sentence,
    filters_text,
    funnel_rows,
    guardrail_sentence,
    guardrail_title,
    metric_title,
    metric_verdict_sentence,
    metric_words,
    rows,
    secondary_note,
    warning_sentences,
)


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


def _variant_row(snapshot: Snapshot, key: str) -> VariantAnalysis | None:
    return next((row for row in snapshot["variants"] if row["key"] == key), None)


def _over_days[V](history: list[Snapshot], key: str, number: Callable[[VariantAnalysis], V | None]) -> list[V | None]:
    """A number of one variant's row, day by day (None on a day without that variant)."""
    return [None if row is None else number(row) for row in (_variant_row(day, key) for day in history)]


def _html_table(analysis: Analysis, unit: str | None = None) -> str:
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in r) + "</tr>" for r in rows(analysis))
    exposed = f"Exposed {html.escape(unit)}" if unit else "Exposures"
    return (
        f"<table><thead><tr><th>Variant</th><th>{exposed}</th><th>Conversions / sum</th><th>Mean</th>"
        "<th>P(best)</th><th>Relative lift (95% interval)</th><th>p-value</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _metric_html(metric: Mapping[str, Any]) -> str:
    if metric.get("kind") in ("ratio", "funnel"):
        return f"<b>{html.escape(metric_words(metric))}</b>"
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
        f'<section class="guardrail"><h3>{html.escape(guardrail_title(analysis))}</h3>'
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
        f'<section class="secondary"><h3>{html.escape(metric_title(analysis))}</h3>'
        f'<p class="metric-verdict">{html.escape(metric_verdict_sentence(analysis))} '
        f"({html.escape(analysis.get('method', ''))})</p>{_cap_paragraph(analysis)}{_html_table(analysis)}"
        f"{_funnel_html(analysis)}</section>"
        for analysis in secondary
    )


def _card_html(card: DecisionCard) -> str:
    """The decision card: its headline (the verdict's class, which the pages style), why, then its
    figures, each a plain sentence (decision_card.py). P(best) is among them, in words, never in
    the headline."""
    lift = card["lift"]
    figures = [  # label, the class of its text, the text
        ("Lift", "lift", None if lift is None else f"'{card['treatment']}': {decision_card.lift_words(lift)}."),
        ("Interval", "interval", None if card["interval"] is None else card["interval"]["text"]),
        ("Risk of shipping now", "risk", None if card["expected_loss"] is None else card["expected_loss"]["text"]),
        ("P(best)", "best", None if (best := card["probability_to_be_best"]) is None else best["text"]),
        ("Since the last snapshot", "changes", None if card["changes"] is None else card["changes"]["text"]),
    ]
    shown = "".join(
        f'<dt>{html.escape(label)}</dt><dd class="card-{css}">{html.escape(text)}</dd>'
        for label, css, text in figures
        if text is not None
    )
    return (
        f'<section class="decision-card" aria-label="Decision"><p class="verdict verdict-{card["decision"]}">'
        f'{html.escape(card["headline"])}</p><p class="why">{html.escape(card["why"])}</p><dl>{shown}</dl></section>'
    )


def _results_body(history: list[Snapshot]) -> str:
    """The decision card (with what changed since the day before), the variants table and the
    charts, from the latest snapshot and the days; then the secondary metrics' tables."""
    latest = history[-1]
    days = [s["date"] for s in history]
    treatments = [r["key"] for r in latest["variants"] if "lift" in r]
    lifts: Series = {key: _over_days(history, key, _relative_lift) for key in treatments}
    bands: Bands = {key: _over_days(history, key, _relative_interval) for key in treatments}
    best: Series = {r["key"]: _over_days(history, r["key"], _probability_to_be_best) for r in latest["variants"]}
    metric = latest.get("metric", {})
    warned = "".join(
        f'<p class="warning error" role="alert">{html.escape(sentence)}</p>'
        for sentence in warning_sentences(latest.get("warnings", []))
    )
    return (
        warned
        + _card_html(decision_card.card(latest, history[-2] if len(history) > 1 else None))
        + f"<p>Data up to {html.escape(latest['date'])}; metric {_metric_html(metric)}; "
        f"{html.escape(latest.get('method', ''))}.</p>"
        + "".join(f'<p class="explanation">{html.escape(sentence)}</p>' for sentence in latest.get("explanation", []))
        + (f'<p class="srm-by-day">{html.escape(daily)}</p>' if (daily := daily_srm_sentence(latest)) else "")
        + (f'<p class="counting">{html.escape(counted)}</p>' if (counted := counting_sentence(latest)) else "")
        + _cap_paragraph(latest)
        + _bandit_section(history)
        + _html_table(latest, latest.get("counted_unit"))
        + _funnel_html(latest)
        + chart("Cumulative relative lift over control, with its 95% interval", days, lifts, bands, True)
        + chart(
            "Probability to be best (read as if each night were the only look: not the decision, see above)",
            days,
            best,
            None,
            False,
        )
        + _exposures_chart(latest)
        + _guardrail_sections(latest)
        + _breakdown_sections(latest)
        + _secondary_sections(latest)
    )


def _bandit_section(history: list[Snapshot]) -> str:
    """A bandit's own results: each variant stratified by phase, with its probability to be best
    and the expected loss of choosing it; the regret so far; its shares of new users night by night."""
    bandit = history[-1].get("bandit")
    if bandit is None:
        return ""
    is_rate = history[-1].get("kind") == "conversion"

    def shown(value: float) -> str:
        return f"{value:.2%}" if is_rate else f"{value:,.4g}"

    def lift(row: BanditVariant) -> str:
        lift_ = row.get("lift")
        if lift_ is None or lift_["relative"] is None:
            return "" if lift_ is None else "&ndash;"
        ci = lift_["relative_ci"]
        return f"{lift_['relative']:+.1%}" + (f" [{ci[0]:+.1%}, {ci[1]:+.1%}]" if ci else "")

    rows_ = "".join(
        f"<tr><td>{html.escape(row['key'])}</td><td>{row['exposures']:,}</td><td>{shown(row['mean'])} "
        f"[{shown(row['interval'][0])}, {shown(row['interval'][1])}]</td><td>{lift(row)}</td>"
        f"<td>{row['probability_best']:.1%}</td>"
        f"<td>{shown(row['expected_loss'])}</td><td>{bandit['shares'].get(row['key'], 0.0):.1%}</td></tr>"
        for row in bandit["variants"]
    )
    table = (
        '<table class="bandit"><thead><tr><th>Variant</th><th>Users</th><th>Mean by phase (95% interval)</th>'
        "<th>Lift by phase (95% interval)</th>"
        "<th>P(best)</th><th>Expected loss</th><th>Share of new users now</th></tr></thead>"
        f"<tbody>{rows_}</tbody></table>"
        if bandit["variants"]
        else ""
    )
    regret = (
        f"Regret so far: {shown(bandit['regret'] / max(1, sum(r['exposures'] for r in bandit['variants'])))} per user "
        f"({bandit['regret']:,.4g} in all) against showing every user the best variant; {bandit['phases']} phases."
    )
    days = [snapshot["date"] for snapshot in history]
    keys = list(bandit["shares"])
    shares: Series = {key: [_share(snapshot, key) for snapshot in history] for key in keys}
    return (
        f'<section class="bandit" aria-label="Bandit"><h2>Bandit</h2><p>{html.escape(bandit["reason"])}. '
        "Each variant's mean weights every phase by its share of all users, so a variant shown more on some "
        f"days is not credited with those days.</p>{table}<p>{html.escape(regret)}</p>"
        + chart("Share of new users per variant (the bandit's weights)", days, shares, None, False)
        + "</section>"
    )


def _share(snapshot: Snapshot, key: str) -> float | None:
    """A bandit's share of new users for `key` when the snapshot was computed (None: not then)."""
    bandit = snapshot.get("bandit")
    return bandit["shares"].get(key) if bandit is not None and "shares" in bandit else None


def _exposures_chart(snapshot: SnapshotAnalysis) -> str:
    """First exposures per day and variant (the SRM check's days), where a broken split shows."""
    daily = snapshot.get("exposures_by_day")
    if not daily or not daily["days"]:
        return ""
    keys = [row["key"] for row in snapshot["variants"]]
    per_day: Series = {key: [float(day["exposures"][index]) for day in daily["days"]] for index, key in enumerate(keys)}
    return chart("First exposures per day", [day["date"] for day in daily["days"]], per_day, None, False, counts=True)


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
.decision-card dt {{ font-weight: 600; }} .decision-card dd {{ margin: 0 0 .5rem 0; }}
.warning {{ color: #a40000; font-weight: 600; }}
figure.chart {{ margin: 1.5rem 0; }} figcaption {{ font-weight: 600; margin-bottom: .5rem; }}
</style></head>
<body><h1>{name}</h1><p><code>{html.escape(experiment["key"])}</code> · {html.escape(experiment.get("status", ""))}</p>
{body}
</body></html>"""
