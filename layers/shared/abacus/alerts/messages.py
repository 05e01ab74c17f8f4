"""An alert's document: the one JSON it is everywhere. EventBridge's `detail` (with DETAIL_TYPES),
the webhook body (plus the `timestamp` its signature covers), the console's alerts panel and the
demo's printout. It carries the decision, the numbers behind it, a link to the experiment's
console page, and a Slack-compatible `text` (Slack's incoming webhooks read `text`), so a Slack
webhook URL works as it is."""

import hashlib
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from abacus.alerts.detect import Alert, AlertKind

SOURCE = "abacus"
# EventBridge's detail-type per kind: what a rule matches ({"detail-type": ["Experiment decision reached"]}).
DETAIL_TYPES: dict[AlertKind, str] = {
    "decision": "Experiment decision reached",
    "final": "Experiment final results",
    "srm": "Experiment sample ratio mismatch",
    "guardrail": "Experiment guardrail harmed",
    "no_exposures": "Experiment has no exposures",
    "sample_reached": "Experiment planned sample reached",
    "automation": "Experiment changed automatically",
}
_EMOJI: dict[AlertKind, str] = {
    "decision": ":white_check_mark:",
    "final": ":checkered_flag:",
    "srm": ":warning:",
    "guardrail": ":rotating_light:",
    "no_exposures": ":zzz:",
    "sample_reached": ":bar_chart:",
    "automation": ":robot_face:",
}


class VariantNumbers(TypedDict):
    key: str
    exposures: int
    conversions: NotRequired[int]
    mean: float
    lift: NotRequired[float | None]  # relative, against the control
    interval: NotRequired[list[float] | None]  # the relative lift's, at the design's bar (a bandit's: 95%)
    p_value: NotRequired[float | None]  # the design's own (always-valid when sequential), Holm-adjusted


class AlertDocument(TypedDict):
    id: str  # the same for every copy of this alert: a receiver's dedupe key
    kind: AlertKind
    decision: str
    variant: str | None
    summary: str
    project: str
    experiment: str
    experiment_name: str
    snapshot: str  # the snapshot's date
    verdict: dict[str, Any]
    metric: dict[str, Any]
    numbers: list[VariantNumbers]
    decision_card: NotRequired[dict[str, Any]]
    automation: NotRequired[dict[str, Any] | None]
    report_url: str | None
    text: str
    created_at: str


def alert_id(experiment_id: str, part: str) -> str:
    return hashlib.sha256(f"{experiment_id}/{part}".encode()).hexdigest()[:24]


def numbers(analysis: dict[str, Any]) -> list[VariantNumbers]:
    """The primary metric's numbers per variant, as the verdict read them: a bandit's, its means
    stratified by phase (its section's), with each treatment's lift and 95% interval; no p-value."""
    bandit = analysis.get("bandit")
    if bandit is not None and bandit.get("variants"):
        stratified: list[VariantNumbers] = []
        for row in bandit["variants"]:
            mean: VariantNumbers = {"key": row["key"], "exposures": int(row["exposures"]), "mean": row["mean"]}
            if lift := row.get("lift"):
                mean["lift"] = lift.get("relative")
                mean["interval"] = lift.get("relative_ci")
            stratified.append(mean)
        return stratified
    rows: list[VariantNumbers] = []
    for row in analysis.get("variants") or []:
        shown: VariantNumbers = {"key": row["key"], "exposures": int(row.get("exposures", 0)), "mean": row["mean"]}
        if "conversions" in row:
            shown["conversions"] = int(row["conversions"])
        if lift := row.get("lift"):
            shown["lift"] = lift.get("relative")
            shown["interval"] = lift.get("relative_ci")
            shown["p_value"] = row.get("p_value_adjusted", row.get("p_value"))
        rows.append(shown)
    return rows


def document(
    alert: Alert,
    *,
    alert_key: str,
    project: str,
    experiment: str,
    experiment_name: str,
    snapshot_date: str,
    analysis: dict[str, Any],
    report_url: str | None,
    now: datetime,
    decision_card: dict[str, Any] | None = None,
    automation: dict[str, Any] | None = None,
) -> AlertDocument:
    verdict = dict(analysis.get("verdict") or {})
    found: AlertDocument = {
        "id": alert_key,
        "kind": alert["kind"],
        "decision": alert["decision"],
        "variant": alert["variant"],
        "summary": alert["summary"],
        "project": project,
        "experiment": experiment,
        "experiment_name": experiment_name,
        "snapshot": snapshot_date,
        "verdict": verdict,
        "metric": dict(analysis.get("metric") or {}),
        "numbers": numbers(analysis),
        "report_url": report_url,
        "text": "",
        "created_at": now.isoformat(),
    }
    if decision_card is not None:
        found["decision_card"] = decision_card
    if automation is not None:
        found["automation"] = automation
    found["text"] = slack_text(found)
    return found


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def slack_text(alert: AlertDocument) -> str:
    """Slack's mrkdwn: the experiment, what happened, each treatment's lift, the link."""
    lines = [f"{_EMOJI[alert['kind']]} *{alert['experiment_name']}* (`{alert['experiment']}`): {alert['summary']}"]
    card = alert.get("decision_card") or {}
    if card.get("headline"):
        lines.append(str(card["headline"]))
    for row in alert["numbers"]:
        if "lift" in row:
            interval = row.get("interval")
            bounds = f" [{_percent(interval[0])}, {_percent(interval[1])}]" if interval else ""
            lines.append(f"• `{row['key']}`: {_percent(row.get('lift'))}{bounds} on {row['exposures']:,} exposed")
        else:
            lines.append(f"• `{row['key']}` (control): {row['exposures']:,} exposed")
    automation = alert.get("automation")
    if automation and automation.get("words"):
        lines.append(f"Automation: {automation['words']}")
    if alert["report_url"]:
        lines.append(f"<{alert['report_url']}|Open it in Abacus>")
    return "\n".join(lines)
