"""The results as text for a terminal (the CLI's and the demo's `results`): the decision card
first, then the same rows and sentences as the HTML report, in fixed-width columns."""

from abacus.core.documents import Analysis, MetricAnalysis, Results, Snapshot, SnapshotAnalysis
from abacus.results import decision_card
from abacus.results.report.sentences import (
    breakdown_note,
    breakdown_rows,
    cap_sentence,
    counting_sentence,
    daily_srm_sentence,
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


def _line(variant: str, exposures: str, value: str, mean: str, best: str, lift: str, p: str) -> str:
    return f"{variant:<14}{exposures:>10}{value:>12}{mean:>10}{best:>9}   {lift:<30}{p:>8}"


def _funnel_lines(analysis: MetricAnalysis) -> list[str]:
    table = funnel_rows(analysis)
    if not table:
        return []
    width = max(len(row[0]) for row in table) + 2
    lines = ["".join([row[0].ljust(width), *(cell.rjust(22) for cell in row[1:])]) for row in table]
    return ["Users who got as far as each step (the test is on the last):", *lines]


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


def _text_table(analysis: Analysis, unit: str = "exposures") -> list[str]:
    header = _line("variant", unit, "value", "mean", "P(best)", "lift (95% CI)", "p-value")
    return [header, *(_line(*r) for r in rows(analysis))]


def results_text(shown: Results, experiment: str) -> str:
    """What the terminal prints of an experiment's results: the report, or before the first
    snapshot when it will be ready, with the warnings of metric events never received."""
    if shown["status"] == "pending":
        return "\n".join([shown["message"], *warning_sentences(shown.get("warnings", []))])
    return text(shown, experiment)


def text(snapshot: Snapshot, experiment: str) -> str:
    """The report: the decision card the answer carries (the API's, with what changed since the
    snapshot before), else the snapshot's own without changes; then the tables and sentences."""
    metric = snapshot.get("metric", {})
    card = snapshot.get("decision_card") or decision_card.card(snapshot)
    lines = [
        f"{experiment}: results for {snapshot['date']} (metric {metric_words(metric)})",
        *warning_sentences(snapshot.get("warnings", [])),
        "",
        *decision_card.lines(card, notes=False),  # the warnings are said above
        "",
        *_text_table(snapshot, snapshot.get("counted_unit", "exposures")),
    ]
    srm = snapshot["srm"]
    lines += ["", f"Sample ratio check: p = {srm['p_value']:.3f}" + (" MISMATCH" if srm["mismatch"] else " (ok)")]
    lines += [sentence] if (sentence := daily_srm_sentence(snapshot)) else []
    lines += [sentence] if (sentence := counting_sentence(snapshot)) else []
    lines += snapshot.get("explanation", [])
    lines += [sentence] if (sentence := cap_sentence(snapshot)) else []
    lines += _funnel_lines(snapshot)
    lines += _breakdown_lines(snapshot)
    secondary = snapshot.get("secondary_metrics", [])
    if secondary:
        lines += ["", secondary_note(snapshot)]
    for analysis in secondary:
        lines += ["", metric_title(analysis), *_text_table(analysis), metric_verdict_sentence(analysis)]
        lines += [sentence] if (sentence := cap_sentence(analysis)) else []
        lines += _funnel_lines(analysis)
    for analysis in snapshot.get("guardrail_metrics", []):
        lines += ["", guardrail_title(analysis), *_text_table(analysis), guardrail_sentence(analysis)]
        lines += [sentence] if (sentence := cap_sentence(analysis)) else []
        lines += _funnel_lines(analysis)
    return "\n".join(lines)
