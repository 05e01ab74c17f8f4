"""The results in one statement: the decision card the API, the report, the terminal, the console
and the alerts give first. Pure: a function of stored JSON, no storage.

    card(snapshot, previous=None) -> DecisionCard

`snapshot` is a snapshot's analysis as stored (abacus.core.documents.SnapshotAnalysis) or as the
API shows it (Snapshot, with its `date` and `warnings`); `previous` the analysis of the snapshot
before it (None for the first: `changes` is then null). `lines(card)` gives the card as plain
sentences, one a line, in the order they are read (for a terminal or a Slack message).

What the card says, and why so:

- `decision` and `variant` are the verdict's (abacus.stats.verdict): the card never decides
  anything the verdict did not.
- `headline` is one sentence: the decision with the figure that carries it (the lift shipped,
  the days left). `why` is one sentence: the test's bar and where the data stand against it.
- `treatment` is the treatment the figures are of: the one shipped; when the control is kept,
  the closest to it; else the leading one (the held-back winner, or the highest mean).
- `lift`: relative, absolute and in the metric's own units ("+1.3 purchase conversions per 100
  users", "+0.42 purchase amount per user", "+0.05 purchase amount per visit").
- `interval`: the relative lift's interval the decision rests on, the design's own: the
  group-sequential test's at tonight's boundary (not the fixed-horizon one beside it), the
  always-valid one (mSPRT), or the fixed-horizon one.
- `expected_loss`: the risk of shipping now, in the metric's units: the posterior's expected
  shortfall of the variant against whichever is best.
- `probability_to_be_best` is never in the headline: it reads tonight's data as if this were the
  only look, so read every night it passes 95% at some point in far more than the test's 5% of
  experiments where nothing differs (about 20% over 14 nights: tests/unit/results/test_decision_card.py).
  It is kept, with a sentence reconciling it with the decision ("P(best) 99.9% is not a
  decision: ... keep running").
- `changes` since the previous snapshot: the decision, the lift, the exposures, the days left.
- `notes`: the primary metric's events never received since the launch (the API's `warnings`),
  which the decision cannot see.

A bandit's card (a snapshot with `bandit`) is of its variants' means stratified by phase: its lift,
interval, P(best) and risk are those of the bandit's section, not the pooled table's, whose means
weight each variant's days by its own traffic. Its `why` is the bandit's rule: P(best) against its
bar after its minimum days; there P(best) is the decision, not a figure to reconcile with one.
"""

import math
from collections.abc import Mapping
from typing import Any, cast

from abacus.core.documents import (
    CardChanges,
    CardInterval,
    CardLift,
    CardProbability,
    CardRisk,
    DecisionCard,
    MetricWarning,
    SnapshotAnalysis,
    VariantAnalysis,
    significantly_higher,
)

_TESTS = {
    "spending": "the group-sequential test",
    "msprt": "the always-valid test",
    "fixed": "the fixed-horizon test",
}
# P(best) from this high looks like a decision: said so, and why it is not one, while the test runs.
_LOOKS_DECIDED = 0.95
_DECISION_WORDS = {
    "ship": "ship",
    "keep_running": "keep running",
    "no_effect": "no effect",
    "held_back": "held back by a guardrail",
    "invalid": "invalid (sample ratio mismatch)",
}


def card(snapshot: SnapshotAnalysis, previous: SnapshotAnalysis | None = None) -> DecisionCard:
    """The decision card of `snapshot`, with what changed since `previous` (module docstring)."""
    snapshot = _stratified(snapshot)
    previous = _stratified(previous) if previous is not None else None
    verdict = snapshot["verdict"]
    decision = verdict["decision"]
    control = snapshot["control"]
    compared = _compared(snapshot)
    units = _Units(snapshot)
    kept = decision == "ship" and verdict["variant"] == control
    control_row = _row(snapshot, control)
    risked = control_row if kept else compared
    return {
        "decision": decision,
        "variant": verdict["variant"],
        "treatment": compared["key"] if compared else None,
        "date": _text(snapshot, "date"),
        "headline": _headline(snapshot, compared, units),
        "why": _why(snapshot, compared),
        "lift": _lift(compared, units),
        "interval": _interval(snapshot, compared),
        "days_left": verdict.get("days_left") if decision == "keep_running" else None,
        "expected_loss": None if decision == "invalid" or risked is None else _risk(snapshot, risked, units),
        "probability_to_be_best": _probability(snapshot, control_row if kept else compared),
        "changes": None if previous is None else _changes(snapshot, previous, compared),
        "notes": _notes(snapshot),
    }


def lines(decision_card: DecisionCard, notes: bool = True) -> list[str]:
    """The card in plain sentences, one a line: the headline and why, the lift, its interval, the
    risk of shipping now, P(best) reconciled, the changes, and (`notes`) the notes."""
    said = [decision_card["headline"], decision_card["why"]]
    if (lift := decision_card["lift"]) is not None:
        said.append(f"Lift of '{decision_card['treatment']}': {lift_words(lift)}.")
    figures = (
        decision_card["interval"],
        decision_card["expected_loss"],
        decision_card["probability_to_be_best"],
        decision_card["changes"],
    )
    said += [figure["text"] for figure in figures if figure is not None]
    return said + (decision_card["notes"] if notes else [])


def lift_words(lift: CardLift) -> str:
    """The lift in words: "+12.0% (+2.4 purchase conversions per 100 users)"."""
    if lift["relative"] is None:
        return lift["in_units"]
    return f"{_percent(lift['relative'])} ({lift['in_units']})"


def _shown(snapshot: SnapshotAnalysis) -> Mapping[str, Any]:
    """The snapshot as the API shows it (Snapshot), whose fields an analysis as stored may lack."""
    return cast(Mapping[str, Any], snapshot)


def _text(snapshot: SnapshotAnalysis, key: str) -> str | None:
    value = _shown(snapshot).get(key)
    return value if isinstance(value, str) else None


def _row(snapshot: SnapshotAnalysis, key: str | None) -> VariantAnalysis | None:
    return next((row for row in snapshot["variants"] if row["key"] == key), None)


def _absolute(row: VariantAnalysis) -> float:
    lift = row.get("lift")
    value = lift["absolute"] if lift else None
    return value if value is not None else -math.inf


def _stratified(snapshot: SnapshotAnalysis) -> SnapshotAnalysis:
    """A bandit's snapshot with its variants' rows from its section's stratified means (module
    docstring); rows without figures until it has an estimate. Any other snapshot as it is."""
    bandit = snapshot.get("bandit")
    if bandit is None:
        return snapshot
    rows: list[VariantAnalysis] = []
    for stratified in bandit["variants"]:
        row: VariantAnalysis = {
            "key": stratified["key"],
            "exposures": stratified["exposures"],
            "mean": stratified["mean"],
            "standard_error": stratified["standard_error"],
            "credible_interval": stratified["interval"],
            "probability_to_be_best": stratified["probability_best"],
            "expected_loss": stratified["expected_loss"],
        }
        if "lift" in stratified:
            row["lift"] = stratified["lift"]
        rows.append(row)
    if not rows:
        rows = [
            {
                "key": row["key"],
                "exposures": row["exposures"],
                "mean": row["mean"],
                "standard_error": row["standard_error"],
                "credible_interval": None,
                "probability_to_be_best": None,
                "expected_loss": None,
            }
            for row in snapshot["variants"]
        ]
    return {**snapshot, "variants": rows}


def _compared(snapshot: SnapshotAnalysis) -> VariantAnalysis | None:
    """The treatment the card's figures are of: the one shipped; else a bandit's likeliest best;
    else the best of the significant winners (a held-back one); else the highest mean (when the
    control is kept: the closest)."""
    verdict, control = snapshot["verdict"], snapshot["control"]
    treatments = [row for row in snapshot["variants"] if row["key"] != control and "lift" in row]
    shipped = _row(snapshot, verdict["variant"]) if verdict["variant"] != control else None
    if shipped is not None and "lift" in shipped:
        return shipped
    bandit = snapshot.get("bandit")
    leader = _row(snapshot, bandit["best"]) if bandit is not None and bandit["best"] != control else None
    if leader is not None and "lift" in leader:
        return leader
    winners = [row for row in treatments if significantly_higher(row)]
    return max(winners or treatments, key=_absolute, default=None)


class _Units:
    """The metric's units in words: what one unit of its mean is, per how many of the counted units
    it is said (100 for rates, and counts below 1 a user), and the metric's name."""

    def __init__(self, snapshot: SnapshotAnalysis) -> None:
        metric: Mapping[str, Any] = _shown(snapshot).get("metric") or {}  # an analysis read back may lack it
        counted = snapshot.get("counted_unit") or "users"
        one = _singular(counted)
        kind = metric.get("kind") or ("conversion" if snapshot["kind"] == "conversion" else "sum")
        event = str(metric.get("event") or "metric")
        control = _row(snapshot, snapshot["control"])
        small = control is not None and abs(control["mean"] or 0.0) < 1
        self.name = event
        self.per = 1.0
        if kind == "conversion":
            self.per, self.words = 100.0, f"{event} conversions per 100 {counted}"
        elif kind == "funnel":
            steps = metric.get("steps") or []
            last = steps[-1].get("event") if steps else None
            self.name = f"the funnel to {last}" if last else "the funnel"
            self.per, self.words = 100.0, f"funnel completions per 100 {counted}"
        elif kind == "count":
            self.per = 100.0 if small else 1.0
            self.words = f"{event} events per {'100 ' + counted if small else one}"
        elif kind == "ratio":
            numerator, denominator = metric.get("numerator") or {}, metric.get("denominator") or {}
            self.name = f"{_part(numerator)} per {_per_part(denominator)}"
            self.words = self.name
        else:  # a sum
            self.name = f"{event} {metric.get('property') or 'value'}"
            self.words = f"{self.name} per {one}"

    def of(self, value: float | None, signed: bool = True) -> str:
        if value is None:
            return f"n/a {self.words}"
        return f"{_amount(value * self.per, signed)} {self.words}"


def _part(part: Mapping[str, Any]) -> str:
    event = part.get("event") or "?"
    return f"{event} {part.get('property') or 'value'}" if part.get("kind") == "sum" else f"{event} events"


def _per_part(part: Mapping[str, Any]) -> str:
    event = part.get("event") or "?"
    return f"unit of {event} {part.get('property') or 'value'}" if part.get("kind") == "sum" else str(event)


def _singular(plural: str) -> str:
    """The singular of a counted unit, as experiments.units.plural made it: companies -> company."""
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    if plural.endswith(("sses", "xes", "zes", "ches", "shes")):
        return plural[:-2]
    return plural.removesuffix("s")


def _amount(value: float, signed: bool) -> str:
    """A number to two significant digits or one decimal, whichever says more: 1.3, 0.042, 12.5, 1,235."""
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = min(12, max(0 if abs(value) >= 100 else 1, 1 - magnitude))
    return f"{value:{'+' if signed else ''},.{decimals}f}"


def _percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.2%}" if 0 < abs(value) < 0.001 else f"{value:+.1%}"


def _probability_words(value: float) -> str:
    """A probability as it is read: 62.3%, 99.92% (two decimals near the ends), above 99.99%."""
    if value >= 0.99995:
        return "above 99.99%"
    if value <= 0.00005:
        return "below 0.01%"
    return f"{value:.2%}" if not 0.01 <= value <= 0.99 else f"{value:.1%}"


def _alpha(snapshot: SnapshotAnalysis) -> str:
    return f"{snapshot['alpha'] * 100:.10g}%"


BANDIT_BAR = "95% interval of the means stratified by phase"


def _bar(snapshot: SnapshotAnalysis) -> str:
    if "bandit" in snapshot:
        return BANDIT_BAR
    level = f"{(1 - snapshot['alpha']) * 100:.10g}%"
    design = snapshot["design"]
    if design == "spending":
        return f"{level} interval at tonight's boundary"
    if design == "msprt":
        return f"{level} always-valid interval"
    return f"{level} fixed-horizon interval"


def _bounds(row: VariantAnalysis | None) -> tuple[float | None, float | None]:
    lift = row.get("lift") if row else None
    interval = lift["relative_ci"] if lift else None
    return (interval[0], interval[1]) if interval else (None, None)


def _excludes_zero(row: VariantAnalysis | None) -> bool:
    low, high = _bounds(row)
    return low is not None and high is not None and (low > 0 or high < 0)


def _lift(row: VariantAnalysis | None, units: _Units) -> CardLift | None:
    lift = row.get("lift") if row else None
    if lift is None:
        return None
    return {"relative": lift["relative"], "absolute": lift["absolute"], "in_units": units.of(lift["absolute"])}


def _interval(snapshot: SnapshotAnalysis, row: VariantAnalysis | None) -> CardInterval | None:
    if row is None:
        return None
    low, high = _bounds(row)
    bar = _bar(snapshot)
    if low is None or high is None:
        text = f"No {bar} for '{row['key']}' yet: too little data to bound its lift at this bar."
    else:
        text = f"{bar[:1].upper()}{bar[1:]} for '{row['key']}': {_percent(low)} to {_percent(high)}."
    level = 0.95 if "bandit" in snapshot else 1 - snapshot["alpha"]
    return {"low": low, "high": high, "level": level, "bar": bar, "text": text}


def _headline(snapshot: SnapshotAnalysis, row: VariantAnalysis | None, units: _Units) -> str:
    verdict = snapshot["verdict"]
    decision, control = verdict["decision"], snapshot["control"]
    lift = _lift(row, units)
    figure = f"{lift_words(lift)}" if lift else "no lift to measure yet"
    if decision == "invalid":
        return (
            "Invalid: the exposures do not fit the configured weights (a sample ratio mismatch), so no number here "
            "can be trusted until the split is fixed."
        )
    if decision == "ship" and verdict["variant"] == control:
        closest = f", the closest ('{row['key']}') by {figure}" if row else ""
        return f"Keep '{control}': every variant does worse on {units.name}{closest}."
    if decision == "ship":
        return f"Ship '{verdict['variant']}': it lifts {units.name} by {figure}."
    if decision == "held_back":
        won, held, _ = verdict["reason"].partition(", but a guardrail holds it back: ")
        return f"Do not ship: {won}, but a guardrail holds it back." if held else f"Do not ship: {verdict['reason']}."
    if decision == "no_effect":
        shown = f"; '{row['key']}' {figure}" if row else ""
        return f"Stop: no effect worth shipping on {units.name}{shown}."
    if "bandit" in snapshot:
        return f"Keep running: no variant is yet likely enough to be the best on {units.name}."
    return f"Keep running: no variant has crossed the test's bar on {units.name} yet{_days_words(verdict)}."


def _days_words(verdict: Mapping[str, Any]) -> str:
    days = verdict.get("days_left")
    if days == 0:
        return "; the planned sample is reached, so only an effect smaller than planned for could still show"
    if days is not None:
        return f"; about {days} more day{'s' if days != 1 else ''} to the planned sample"
    _, _, unknown = str(verdict["reason"]).partition("; ")
    return f"; {unknown}" if unknown else ""


def _capitalised(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _guarantee(snapshot: SnapshotAnalysis) -> str:
    alpha = _alpha(snapshot)
    design = snapshot["design"]
    if design == "spending":
        return f"the group-sequential test, read every night, keeps the chance of a false winner under {alpha}"
    if design == "msprt":
        return f"the always-valid test keeps the chance of a false winner under {alpha} however often it is read"
    return (
        f"a fixed-horizon test keeps the chance of a false winner under {alpha} only if read once, at the "
        "planned sample"
    )


def _why(snapshot: SnapshotAnalysis, row: VariantAnalysis | None) -> str:
    verdict = snapshot["verdict"]
    decision, control, reason = verdict["decision"], snapshot["control"], verdict["reason"]
    if decision == "invalid":
        return f"{_capitalised(reason)}: no comparison can be trusted until the split is fixed."
    if decision == "no_effect":
        return f"{_capitalised(reason)}."
    if decision == "held_back":
        _, held, harms = reason.partition(", but a guardrail holds it back: ")
        return f"{_capitalised(harms)}: a treatment that harms a guardrail is never shipped." if held else reason
    if "bandit" in snapshot:
        return (
            f"{_capitalised(reason)}, on each variant's mean stratified by phase; a bandit ships the variant "
            "likeliest to be best once that probability passes its bar and it has run its minimum days."
        )
    if decision == "ship" and verdict["variant"] == control:
        return f"Every variant is below '{control}' past the test's bar: {_guarantee(snapshot)}."
    if decision == "ship" and row is not None:
        adjusted = row.get("p_value_adjusted")
        p = f" (adjusted p = {adjusted:.2g}, below {_alpha(snapshot)})" if adjusted is not None else ""
        why = f"'{row['key']}' is past the test's bar{p}: {_guarantee(snapshot)}"
        if snapshot["design"] != "fixed" and not _excludes_zero(row):
            why += (
                "; tonight's interval includes no change, but the bar was crossed on an earlier night, and a "
                "sequential test's decision stands once made"
            )
        _, held, others = reason.partition("; held back: ")
        return why + (f"; held back: {others}." if held else ".")
    return _why_keep_running(snapshot, row)


def _why_keep_running(snapshot: SnapshotAnalysis, row: VariantAnalysis | None) -> str:
    low, high = _bounds(row)
    if row is None or low is None or high is None:
        return (
            f"There is too little data yet to bound the lift at the test's bar ({_bar(snapshot)}): no decision "
            "can come before one."
        )
    treatments = sum(1 for other in snapshot["variants"] if "lift" in other)
    adjusted = row.get("p_value_adjusted")
    if _excludes_zero(row) and treatments > 1 and adjusted is not None:
        return (
            f"The {_bar(snapshot)} of '{row['key']}' rules out no change, but with {treatments} comparisons against "
            f"'{snapshot['control']}' its Holm-adjusted p-value ({adjusted:.2g}) is not below {_alpha(snapshot)}: "
            f"among {treatments} comparisons, one gets this far by chance more often than a single one would."
        )
    interval = f"The {_bar(snapshot)} of '{row['key']}' ({_percent(low)} to {_percent(high)}) still includes no change"
    design = snapshot["design"]
    if design == "spending":
        boundary = row.get("boundary")
        needed = f"tonight a lift must be {boundary:.1f} standard errors from zero to be called, " if boundary else ""
        return f"{interval}: {needed}a bar set so that nightly looks add no false winners."
    if design == "msprt":
        return f"{interval}: its bar holds however often the results are read, so a lead inside it may still be noise."
    return f"{interval}, and a fixed-horizon test is to be read once, at the planned sample."


def _risk(snapshot: SnapshotAnalysis, row: VariantAnalysis, units: _Units) -> CardRisk | None:
    loss = row.get("expected_loss")
    if loss is None:
        return None
    alone = (
        f" (on {units.name} alone: the guardrail's harm comes on top)"
        if snapshot["verdict"]["decision"] == "held_back"
        else ""
    )
    return {
        "variant": row["key"],
        "expected_loss": loss,
        "text": f"Risk of shipping '{row['key']}' now: an expected loss of {units.of(loss, signed=False)}, "
        f"its average shortfall against whichever variant is best{alone}.",
    }


def _probability(snapshot: SnapshotAnalysis, row: VariantAnalysis | None) -> CardProbability | None:
    value = row.get("probability_to_be_best") if row else None
    if row is None or value is None:
        return None
    verdict = snapshot["verdict"]
    decision, key = verdict["decision"], row["key"]
    shown = f"P(best) {_probability_words(value)} for '{key}'"
    test = _TESTS.get(snapshot["design"], "the test")
    if decision == "invalid":
        text = f"{shown} cannot be trusted either: the split is broken."
    elif decision == "ship":
        text = (
            f"{shown}, in line with the decision."
            if value >= 0.5
            else f"{shown}: another variant may be better still, but none is past the bar against it."
        )
    elif decision == "held_back":
        text = f"{shown} is on the primary metric alone: the guardrail it harms holds it back."
    elif "bandit" in snapshot:
        text = f"{shown}, on the means stratified by phase: the bandit's decision rests on it."
    elif decision == "no_effect":
        text = (
            f"{shown} is not a decision: whichever is best, the difference is too small to be worth shipping."
            if "ruled out" in verdict["reason"]
            else f"{shown} is not a decision: {test} reached its planned sample without a significant difference."
        )
    elif value >= _LOOKS_DECIDED:
        text = (
            f"{shown} is not a decision: it reads tonight's data as if this were the only look, and read every "
            f"night it passes 95% at some point in far more than {_alpha(snapshot)} of experiments where nothing "
            f"differs; {test} has not crossed its bar: keep running."
        )
    else:
        text = f"{shown}: a lead {test} cannot yet tell from noise."
    return {"variant": key, "value": value, "text": text}


def _changes(snapshot: SnapshotAnalysis, previous: SnapshotAnalysis, row: VariantAnalysis | None) -> CardChanges:
    now, before = snapshot["verdict"], previous["verdict"]
    since = _text(previous, "date")
    then = _row(previous, row["key"]) if row else None
    lift_now = row["lift"]["relative"] if row and "lift" in row else None
    lift_before = then["lift"]["relative"] if then and "lift" in then else None
    added = sum(r["exposures"] for r in snapshot["variants"]) - sum(r["exposures"] for r in previous["variants"])
    days_before = before.get("days_left") if before["decision"] == "keep_running" else None
    said = [
        f"the decision went from {_decision_words(before)} to {_decision_words(now)}"
        if (before["decision"], before["variant"]) != (now["decision"], now["variant"])
        else f"the decision is still {_decision_words(now)}"
    ]
    if row is not None and (lift_now is not None or lift_before is not None):
        said.append(f"the lift of '{row['key']}' moved from {_percent(lift_before)} to {_percent(lift_now)}")
    counted = snapshot.get("counted_unit") or "users"
    said.append(f"{added:+,} {counted} exposed")
    days_now = now.get("days_left") if now["decision"] == "keep_running" else None
    if days_before is not None and days_now is not None:
        said.append(f"the days left went from {days_before} to {days_now}")
    return {
        "since": since,
        "decision_before": before["decision"],
        "relative_lift_before": lift_before,
        "exposures_added": added,
        "days_left_before": days_before,
        "text": f"Since {since or 'the previous snapshot'}: {'; '.join(said)}.",
    }


def _decision_words(verdict: Mapping[str, Any]) -> str:
    words = _DECISION_WORDS.get(str(verdict["decision"]), str(verdict["decision"]))
    return f"ship '{verdict['variant']}'" if verdict["decision"] == "ship" else words


BANDIT_NOTE = (
    "A bandit: the figures above are from each variant's mean stratified by phase (the bandit's section); "
    "the metric's table pools each variant's users over the phases, so the days it was shown most weigh most."
)


def _notes(snapshot: SnapshotAnalysis) -> list[str]:
    warnings: list[MetricWarning] = _shown(snapshot).get("warnings") or []
    notes = [
        f"{_capitalised(warning['message'])}: the primary metric counts nothing from `{warning['event']}`, "
        "whatever the decision says."
        for warning in warnings
        if warning["field"].startswith("primary_metric")
    ]
    return notes + ([BANDIT_NOTE] if "bandit" in snapshot else [])
