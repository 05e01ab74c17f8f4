"""Results as CSV, for a spreadsheet or a notebook: one row per day, metric and variant of the
snapshots given (a day's for the results route and the console's download, every day's for the
history), each number as the snapshot holds it. Pure: the routes read the snapshots and answer
the text.

Python's csv module writes it (its default dialect: RFC 4180 quoting, CRLF line ends); the text
is sent as UTF-8. A cell with nothing in it is empty: a number the snapshot has as null (a
control's lift, a p-value that cannot be computed), and one that is not finite (NaN, infinity: a
snapshot stored before they were kept out may hold them, which the JSON answers write null)."""

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from abacus.core.documents import MetricAnalysis, Snapshot, VariantAnalysis
from abacus.results.report import sentences

COLUMNS = (
    "date",
    "experiment",
    "metric",  # the event; a ratio or a funnel in words, as the report names it
    "metric_kind",  # conversion, count, sum, ratio, funnel
    "metric_property",  # a sum's property
    "metric_filters",  # the event's filters in words (a ratio's or a funnel's are in `metric`)
    "metric_role",  # primary, secondary, guardrail
    "variant",
    "exposures",
    "conversions",  # users who converted (conversion metrics and funnels)
    "value_sum",  # the sum of users' values (count, sum and ratio metrics)
    "mean",
    "adjusted_mean",  # CUPED's, which the lift is computed from when there is one
    "standard_error",
    "absolute_lift",
    "relative_lift",
    "relative_ci_low",
    "relative_ci_high",
    "p_value",
    "p_value_adjusted",  # Holm, across a metric's comparisons with the control
    "probability_to_be_best",
    "guardrail_status",  # a guardrail's, for each treatment: harmed, held, inconclusive
    "decision",  # the experiment's verdict that day: the same on each of the day's rows
)

# A spreadsheet takes a cell beginning with one of these for a formula: OWASP's advice on CSV
# injection is to begin such a text with a quote, which shows it as text. Only text cells (names
# a user chose) get it: a number (-0.05) is written as it is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def to_csv(snapshots: Iterable[Snapshot]) -> str:
    """The snapshots' rows under the header row (the header alone for none)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    for snapshot in snapshots:
        writer.writerows(day_rows(snapshot))
    return text.getvalue()


def day_rows(snapshot: Snapshot) -> Iterator[dict[str, str]]:
    """The day's rows: the primary metric's variants, then each secondary's, then each guardrail's."""
    day = {"date": snapshot["date"], "experiment": _text(snapshot["experiment"])}
    decision = snapshot["verdict"]["decision"]
    for role, analysis in _metrics(snapshot):
        metric = _metric_cells(analysis.get("metric", {}), role)  # as the report, for a snapshot without it
        guardrail = analysis.get("guardrail")
        statuses: Mapping[str, str] = guardrail["status"] if guardrail else {}
        for row in analysis["variants"]:
            yield {
                **day,
                **metric,
                **_variant_cells(row),
                "guardrail_status": statuses.get(row["key"], ""),
                "decision": decision,
            }


def _metrics(snapshot: Snapshot) -> list[tuple[str, MetricAnalysis]]:
    return [
        ("primary", snapshot),
        *(("secondary", analysis) for analysis in snapshot.get("secondary_metrics", [])),
        *(("guardrail", analysis) for analysis in snapshot.get("guardrail_metrics", [])),
    ]


def _metric_cells(metric: Mapping[str, Any], role: str) -> dict[str, str]:
    kind = str(metric.get("kind", ""))
    if kind == "ratio":
        name, filters = sentences.ratio_text(metric), ""
    elif kind == "funnel":
        name, filters = sentences.funnel_text(metric), ""
    else:
        name, filters = str(metric.get("event", "")), sentences.filters_text(metric).removeprefix(" where ")
    return {
        "metric": _text(name),
        "metric_kind": kind,
        "metric_property": _text(str(metric.get("property") or "")),
        "metric_filters": _text(filters),
        "metric_role": role,
    }


def _variant_cells(row: VariantAnalysis) -> dict[str, str]:
    lift = row.get("lift")
    interval: list[float | None] = [None, None]
    if lift and lift["relative_ci"]:
        interval = [*lift["relative_ci"]]
    return {
        "variant": _text(row["key"]),
        "exposures": _number(row["exposures"]),
        "conversions": _number(row.get("conversions")),
        "value_sum": _number(row.get("sum")),
        "mean": _number(row["mean"]),
        "adjusted_mean": _number(row.get("adjusted_mean")),
        "standard_error": _number(row["standard_error"]),
        "absolute_lift": _number(lift["absolute"] if lift else None),
        "relative_lift": _number(lift["relative"] if lift else None),
        "relative_ci_low": _number(interval[0]),
        "relative_ci_high": _number(interval[1]),
        "p_value": _number(row.get("p_value")),
        "p_value_adjusted": _number(row.get("p_value_adjusted")),
        "probability_to_be_best": _number(row.get("probability_to_be_best")),
    }


def _text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _number(value: float | None) -> str:
    """A number as Python writes it back exactly (repr: 0.1, 1e-05); empty for null or not finite."""
    if value is None or not math.isfinite(value):
        return ""
    return repr(value)
