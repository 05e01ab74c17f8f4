"""Guardrails: metrics a treatment must not make worse (errors, latency, unsubscribes), each with a
non-inferiority margin (relative). From a guardrail's analysis, each treatment's relative change
and its interval (always-valid when the design is sequential):

- `harmed`: the whole interval is worse than the margin allows: the treatment significantly
  harms the guardrail (with margin 0: significantly worse at all);
- `held`: the whole interval is better than the margin: non-inferiority shown;
- `inconclusive`: neither, or no interval yet.

A treatment that harms any guardrail is never the shipped winner: `hold_back` ships the best of
the other winners, or none, and says which guardrail held each back."""

from typing import Literal

from abacus.core.documents import GuardrailStatus, VariantAnalysis, Verdict, significantly_higher

BadDirection = Literal["increase", "decrease"]


def status(row: VariantAnalysis, margin: float, bad: BadDirection) -> GuardrailStatus:
    """A treatment's row of a guardrail's analysis, judged against the margin."""
    lift = row.get("lift")
    interval = lift.get("relative_ci") if lift else None
    if not interval or interval[0] is None or interval[1] is None:
        return "inconclusive"
    low, high = interval
    if bad == "increase":
        return "harmed" if low > margin else "held" if high < margin else "inconclusive"
    return "harmed" if high < -margin else "held" if low > -margin else "inconclusive"


def hold_back(
    verdict: Verdict,
    primary_rows: list[VariantAnalysis],
    harmed_by: dict[str, list[str]],
) -> Verdict:
    """The verdict once guardrails have their say: `harmed_by` maps each treatment to the
    guardrails it harms (in words). A winner so harmed is not shipped; the next best winner
    that harms none is, or else the decision is `held_back`."""
    if verdict["decision"] != "ship" or not harmed_by.get(str(verdict["variant"])):
        return verdict
    winners = sorted(
        (row for row in primary_rows if significantly_higher(row)),
        key=lambda row: row["mean"] if row["mean"] is not None else float("-inf"),
        reverse=True,
    )
    held = [row["key"] for row in winners if harmed_by.get(row["key"])]
    reasons = "; ".join(f"'{key}' harms {', '.join(harmed_by[key])}" for key in held)
    safe = next((row for row in winners if not harmed_by.get(row["key"])), None)
    if safe is not None:
        lift = safe.get("lift")
        relative = lift["relative"] if lift else None
        by = "an undefined relative amount" if relative is None else f"{relative:+.1%}"
        return {
            "decision": "ship",
            "variant": safe["key"],
            "reason": f"'{safe['key']}' wins by {by} (adjusted p = {safe.get('p_value_adjusted') or 0:.2g}) "
            f"and harms no guardrail; held back: {reasons}",
        }
    return {
        "decision": "held_back",
        "variant": None,
        "reason": f"{verdict['reason']}, but a guardrail holds it back: {reasons}",
    }
