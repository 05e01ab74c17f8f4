"""The decision for an experiment, from its primary metric's analysis. Rules, in order:

1. `invalid`: sample ratio mismatch (the split is broken, so no comparison can be trusted).
2. `ship` a treatment: some treatments beat the control significantly (Holm-adjusted p-value,
   always-valid when sequential, below alpha, on the higher side: for the spending design, the
   side of the look that crossed, not tonight's lift's); the one with the highest mean is shipped.
3. `ship` the control: every treatment is significantly worse than the control.
4. `no_effect`: every treatment's relative-lift interval lies inside (-mde, +mde): an effect as
   large as the minimum detectable effect is ruled out, so running longer will not find one.
5. `no_effect` too when the group-sequential design's final look (the planned information) has
   been taken without a significant difference: the test is over, and looking longer cannot
   change its answer.
6. `keep_running`, with the estimated days left once a full day of exposures gives their rate
   (before, null, and the reason says so).
"""

from abacus.core.documents import (
    SampleRatioCheck,
    VariantAnalysis,
    Verdict,
    significantly_higher,
    significantly_lower,
)
from abacus.core.planning import DaysLeft


def decide(
    rows: list[VariantAnalysis],
    control: str,
    srm: SampleRatioCheck,
    mde: float,
    days_left: DaysLeft,
    concluded: bool = False,
) -> Verdict:
    if srm["mismatch"]:
        return {
            "decision": "invalid",
            "variant": None,
            "reason": "sample ratio mismatch: the exposures do not fit the configured weights "
            f"(p = {srm['p_value']:.2g})",
        }
    treatments = [row for row in rows if row["key"] != control]
    winners = [row for row in treatments if significantly_higher(row)]
    if winners:
        best = max(winners, key=lambda row: row["mean"])
        return {
            "decision": "ship",
            "variant": best["key"],
            "reason": f"'{best['key']}' beats '{control}' by {_percent(best['lift']['relative'])} "
            f"(adjusted p = {best['p_value_adjusted']:.2g})",
        }
    if treatments and all(significantly_lower(row) for row in treatments):
        return {
            "decision": "ship",
            "variant": control,
            "reason": f"every variant is significantly worse than '{control}'",
        }
    intervals = [row["lift"]["relative_ci"] for row in treatments]
    if intervals and all(ci is not None and -mde < ci[0] and ci[1] < mde for ci in intervals):
        return {
            "decision": "no_effect",
            "variant": None,
            "reason": f"every variant's lift is within ±{mde:.0%} of '{control}': an effect that large is ruled out",
        }
    if concluded:
        return {
            "decision": "no_effect",
            "variant": None,
            "reason": "the planned sample is reached and no variant differs significantly from "
            f"'{control}': the test is over, and running longer cannot change its answer",
        }
    reason = "no variant differs significantly from the control yet"
    if days_left.days is not None:
        reason += f"; about {days_left.days} more day(s) to reach the planned sample"
    elif days_left.unknown_because:
        reason += f"; the days left {days_left.unknown_because}"
    return {"decision": "keep_running", "variant": None, "reason": reason, "days_left": days_left.days}


def _percent(value: float | None) -> str:
    return "an undefined relative amount" if value is None else f"{value:+.1%}"
