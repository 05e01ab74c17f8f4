"""Which alerts a stored snapshot calls for. Pure: the snapshot's analysis (as stored) and the
experiment's timeline in, alerts out; whether one was sent already is storage's (each alert is
keyed by its kind and decision, and sent once).

Only the design's own verdicts alert: a decision (`ship`, `no_effect`, `held_back`) is a crossed
boundary, or the planned final look, that peeking cannot fake; a raw p-value never alerts.
"""

from datetime import datetime
from typing import Any, Literal, TypedDict

AlertKind = Literal["decision", "final", "srm", "guardrail", "no_exposures", "sample_reached", "automation"]
KINDS: tuple[AlertKind, ...] = (
    "decision",
    "final",
    "srm",
    "guardrail",
    "no_exposures",
    "sample_reached",
    "automation",
)
# The decisions a team acts on: the others (keep_running, invalid) are no decision (an invalid
# split alerts as `srm`).
DECISIONS = ("ship", "no_effect", "held_back")
DAY_SECONDS = 86400


class Alert(TypedDict):
    kind: AlertKind
    decision: str  # with the kind, what makes the alert one: sent once per experiment
    variant: str | None
    summary: str  # what happened, in a sentence


def alerts(analysis: dict[str, Any], started_at: datetime | None, cutoff: datetime, final: bool) -> list[Alert]:
    """The alerts a snapshot calls for (those sent already are storage's to skip)."""
    unit = analysis.get("counted_unit") or "users"
    return [
        *_decisions(analysis.get("verdict") or {}, final),
        *_split_checks(analysis, unit),
        *_guardrails(analysis.get("guardrail_metrics") or [], bandit="bandit" in analysis),
        *_traffic(analysis, started_at, cutoff, unit),
    ]


def _decisions(verdict: dict[str, Any], final: bool) -> list[Alert]:
    decision = verdict.get("decision")
    variant = verdict.get("variant")
    found: list[Alert] = []
    if decision in DECISIONS:
        key = f"{decision}:{variant}" if variant else str(decision)
        found.append({"kind": "decision", "decision": key, "variant": variant, "summary": _decided(verdict)})
    if final:
        summary = f"final results (no event can change them any more): {_decided(verdict)}"
        found.append({"kind": "final", "decision": str(decision), "variant": variant, "summary": summary})
    return found


def _split_checks(analysis: dict[str, Any], unit: str) -> list[Alert]:
    found: list[Alert] = []
    srm = analysis.get("srm") or {}
    if srm.get("mismatch"):
        summary = (
            f"sample ratio mismatch: the exposed {unit} do not fit the configured weights "
            f"(p = {srm.get('p_value', 0):.2g}); the split is broken and no comparison can be trusted"
        )
        found.append({"kind": "srm", "decision": "overall", "variant": None, "summary": summary})
    if first_mismatch := (analysis.get("exposures_by_day") or {}).get("first_mismatch"):
        summary = (
            f"sample ratio mismatch on {first_mismatch}: that day's first exposures do not fit the "
            "configured weights (look for a change shipped that day)"
        )
        found.append({"kind": "srm", "decision": "daily", "variant": None, "summary": summary})
    return found


def _guardrails(guardrails: list[dict[str, Any]], bandit: bool = False) -> list[Alert]:
    """A harmed guardrail's alert; a bandit's says it froze the variant (abacus.nightly.reweight)."""
    found: list[Alert] = []
    for index, guardrail in enumerate(guardrails):
        statuses = (guardrail.get("guardrail") or {}).get("status") or {}
        name = _metric_name(guardrail.get("metric") or {}, index)
        for harmed in sorted(key for key, status in statuses.items() if status == "harmed"):
            summary = f"'{harmed}' harms the guardrail {name} beyond its margin"
            if bandit:
                summary += f": the bandit froze '{harmed}' at its floor share, where it stays"
            found.append({"kind": "guardrail", "decision": f"{index}:{harmed}", "variant": harmed, "summary": summary})
    return found


def _traffic(analysis: dict[str, Any], started_at: datetime | None, cutoff: datetime, unit: str) -> list[Alert]:
    found: list[Alert] = []
    rows = analysis.get("variants") or []
    exposed = sum(int(row.get("exposures", 0)) for row in rows)
    if started_at is not None and exposed == 0 and (cutoff - started_at).total_seconds() >= DAY_SECONDS:
        summary = (
            f"no exposures in the {_days(cutoff, started_at)} since the launch: is the app asking Abacus for "
            "this experiment (`experiments` on /assign, or posthog-js's getFeatureFlag)?"
        )
        found.append({"kind": "no_exposures", "decision": "none", "variant": None, "summary": summary})
    planned = analysis.get("planned_exposures")
    if planned and rows and min(int(row.get("exposures", 0)) for row in rows) >= planned:
        summary = f"the planned sample is reached: every variant has {planned:,} exposed {unit} or more"
        found.append({"kind": "sample_reached", "decision": "reached", "variant": None, "summary": summary})
    return found


def _decided(verdict: dict[str, Any]) -> str:
    decision = verdict.get("decision")
    variant = verdict.get("variant")
    reason = verdict.get("reason", "")
    if decision == "ship":
        return f"ship '{variant}': {reason}"
    if decision == "no_effect":
        return f"no effect: {reason}"
    if decision == "held_back":
        return f"held back: {reason}"
    return f"{decision}: {reason}"


def _metric_name(metric: dict[str, Any], index: int) -> str:
    if metric.get("event"):
        return f"`{metric['event']}` ({metric.get('kind', 'conversion')})"
    return f"#{index + 1} ({metric.get('kind', 'metric')})"


def _days(cutoff: datetime, started_at: datetime) -> str:
    days = int((cutoff - started_at).total_seconds() // DAY_SECONDS)
    return "day" if days == 1 else f"{days} days"
