"""The primary metric analysed per value of a breakdown property: each value's users (and the
rest's, as "other") analysed as the whole experiment is, but always with mSPRT's always-valid
p-values (a segment has no plan of its own, and is looked at every night), Holm-adjusted across
every treatment-vs-control comparison of the breakdown. A breakdown describes where an effect
lies; it is not a second verdict, and the report says so.

Only ResultsFunction imports this module: it is the one function with the stats layer."""

import dataclasses
from typing import NamedTuple, cast

from abacus.core.breakdowns import Value
from abacus.core.documents import Analysis, Breakdown, MetricKind, Segment, SegmentRow, VariantAnalysis
from abacus.stats.analysis import Settings, VariantData, analyse
from abacus.stats.multiple import holm

ROW_FIELDS = ("key", "exposures", "conversions", "sum", "mean", "adjusted_mean", "lift", "p_value")
METHOD = (
    "each value analysed alone with always-valid p-values (mSPRT), Holm-adjusted across the breakdown's comparisons"
)


class Group(NamedTuple):
    """One value's users (or "other"'s) and what abacus.stats analyses of them."""

    value: Value
    other: bool
    complete: bool
    variants: list[VariantData]
    srm_exposures: list[int] | None  # a ratio's users per variant (Settings.srm_exposures)


def breakdown(name: str, kind: MetricKind, groups: list[Group], settings: Settings) -> Breakdown:
    """The breakdown of the primary metric by property `name`: each group's analysis, its
    treatments' p-values Holm-adjusted across all of the groups' comparisons."""
    analyses = [
        analyse(kind, group.variants, dataclasses.replace(settings, srm_exposures=group.srm_exposures))
        for group in groups
    ]
    segments = [_segment(group, analysis) for group, analysis in zip(groups, analyses, strict=True)]
    treatments = [row for segment in segments for row in segment["variants"] if "lift" in row]
    for row, adjusted in zip(treatments, holm([row.get("p_value") for row in treatments]), strict=True):
        row["p_value_adjusted"] = adjusted
        row["significant"] = adjusted is not None and adjusted < settings.alpha
    return {"property": name, "method": METHOD, "comparisons": len(treatments), "segments": segments}


def _segment(group: Group, analysis: Analysis) -> Segment:
    return {
        "value": group.value,
        "other": group.other,
        "users": sum(group.srm_exposures or [v.exposures for v in group.variants]),
        "complete": group.complete,
        "variants": [_row(row) for row in analysis["variants"]],
        "srm": analysis["srm"],
    }


def _row(row: VariantAnalysis) -> SegmentRow:
    return cast(SegmentRow, {name: row[name] for name in ROW_FIELDS if name in row})  # type: ignore[literal-required]
