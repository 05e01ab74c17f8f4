"""Results as CSV (results/csv_export.py): read back with csv.DictReader, one row per day, metric
and variant, each number the snapshot's own; RFC 4180 quoting and CRLF line ends; names that a
spreadsheet would run as formulas begin with a quote."""

import copy
import csv
import io
import math
from typing import Any, cast

import pytest

from abacus.core.documents import MetricAnalysis, Snapshot
from abacus.results.csv_export import COLUMNS, to_csv
from tests.report_history import KEY, history

DAYS = 4


def read(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def with_guardrail(snapshot: Snapshot) -> Snapshot:
    """The day with its second secondary metric (a sum) watched as a guardrail as well."""
    guarded = copy.deepcopy(snapshot["secondary_metrics"][1])
    guarded["guardrail"] = {
        "margin": 0.05,
        "bad_direction": "decrease",
        "status": {"one-page": "held", "two-page": "harmed"},
    }
    return cast(Snapshot, {**snapshot, "guardrail_metrics": [guarded]})


def cell(value: Any) -> str:
    """What a cell holds for a number of the snapshot: empty for null, else the number."""
    return "" if value is None else str(value)


def test_one_row_per_day_metric_and_variant_with_the_snapshots_numbers():
    days = [with_guardrail(day) for day in history(DAYS)]
    rows = read(to_csv(days))
    metrics, variants = 4, 3  # primary, two secondary, a guardrail; three variants
    assert len(rows) == DAYS * metrics * variants
    expected = [
        (day, role, analysis, variant)
        for day in days
        for role, analysis in [
            ("primary", day),
            *(("secondary", m) for m in day["secondary_metrics"]),
            ("guardrail", day["guardrail_metrics"][0]),
        ]
        for variant in analysis["variants"]
    ]
    for row, (day, role, analysis, variant) in zip(rows, expected, strict=True):
        assert row["date"] == day["date"] and row["experiment"] == KEY
        assert row["metric"] == analysis["metric"]["event"] and row["metric_kind"] == analysis["metric"]["kind"]
        assert row["metric_role"] == role and row["variant"] == variant["key"]
        assert row["decision"] == day["verdict"]["decision"]
        assert int(row["exposures"]) == variant["exposures"]
        assert float(row["mean"]) == variant["mean"]  # written exactly: read back equal
        assert float(row["standard_error"]) == variant["standard_error"]
        assert float(row["probability_to_be_best"]) == variant["probability_to_be_best"]
        if analysis["metric"]["kind"] == "conversion":
            assert int(row["conversions"]) == variant["conversions"] and row["value_sum"] == ""
        else:
            assert float(row["value_sum"]) == variant["sum"] and row["conversions"] == ""
            assert row["metric_property"] == "amount"
        lift = variant.get("lift")
        if lift is None:  # the control: nothing to compare
            assert [row[name] for name in ("absolute_lift", "relative_lift", "relative_ci_low", "p_value")] == [""] * 4
        else:
            assert float(row["absolute_lift"]) == lift["absolute"]
            assert float(row["relative_lift"]) == lift["relative"]
            assert [float(row["relative_ci_low"]), float(row["relative_ci_high"])] == lift["relative_ci"]
            assert row["p_value"] == cell(variant["p_value"])
            assert row["p_value_adjusted"] == cell(variant.get("p_value_adjusted"))
        status = analysis.get("guardrail", {}).get("status", {}).get(variant["key"], "")
        assert row["guardrail_status"] == status
    assert {row["guardrail_status"] for row in rows if row["metric_role"] == "guardrail"} == {"", "held", "harmed"}
    # A negative number is written as it is (no quote: only names are guarded).
    assert any(row["relative_ci_low"].startswith("-") for row in rows)


def test_the_text_is_rfc_4180_with_crlf_line_ends():
    text = to_csv(history(1))
    lines = text.split("\r\n")
    assert lines[0] == ",".join(COLUMNS) and lines[-1] == ""  # every line, the last one too, ends in CRLF
    assert "\n" not in text.replace("\r\n", "")
    assert len(lines) - 2 == 3 * 3  # a day: three metrics of three variants


def test_no_snapshot_is_the_header_row_alone():
    assert to_csv([]) == ",".join(COLUMNS) + "\r\n"


def test_commas_quotes_and_line_breaks_in_a_name_survive_quoting():
    day = history(1)[0]
    awkward = 'checkout, "one page"\nstep 2'
    day["metric"] = {**day["metric"], "event": awkward}
    text = to_csv([day])
    assert '"checkout, ""one page""\nstep 2"' in text  # quoted, the quotes doubled
    assert {row["metric"] for row in read(text) if row["metric_role"] == "primary"} == {awkward}


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(1,1)", "\tx", "\rx"]
)
def test_a_name_a_spreadsheet_would_run_as_a_formula_begins_with_a_quote(name):
    day = history(1)[0]
    day["metric"] = {**day["metric"], "event": name}
    day["secondary_metrics"][0]["metric"] = {**day["secondary_metrics"][0]["metric"], "event": "signup=done"}
    for analysis in [cast(MetricAnalysis, day), *day["secondary_metrics"]]:
        analysis["variants"][1]["key"] = "-1"
    rows = read(to_csv([day]))
    assert {row["metric"] for row in rows if row["metric_role"] == "primary"} == {"'" + name}
    assert {row["variant"] for row in rows if row["variant"] not in ("control", "two-page")} == {"'-1"}
    # Text that merely holds such a character elsewhere is left as it is.
    assert {row["metric"] for row in rows if row["metric_role"] == "secondary"} == {"signup=done", "order"}


def test_filters_in_words_and_a_ratio_or_funnel_named_as_the_report_names_it():
    day = history(1)[0]
    first, second = day["secondary_metrics"]
    day["metric"] = {**day["metric"], "filters": [{"property": "plan", "operator": "eq", "value": "=pro"}]}
    first["metric"] = {
        "kind": "ratio",
        "window_days": 14,
        "numerator": {"event": "order", "kind": "sum", "property": "amount", "window_days": 14},
        "denominator": {"event": "visit", "kind": "count", "window_days": 14},
    }
    second["metric"] = {
        "kind": "funnel",
        "window_days": 7,
        "steps": [{"event": "view_cart"}, {"event": "checkout"}, {"event": "purchase"}],
    }
    names = {(row["metric_role"], row["metric"], row["metric_filters"]) for row in read(to_csv([day]))}
    assert names == {
        ("primary", "purchase", 'plan = "=pro"'),
        ("secondary", "ratio of order (sum of amount) to visit (count)", ""),
        ("secondary", "funnel view_cart → checkout → purchase, in order within 7 days", ""),
    }


def test_null_and_non_finite_numbers_are_empty_cells():
    day = history(2)[1]
    treatment = day["variants"][1]
    treatment["probability_to_be_best"] = None
    treatment["p_value"] = None
    treatment["standard_error"] = math.nan
    treatment["lift"] = {"absolute": math.inf, "relative": None, "relative_ci": None}
    [row] = [row for row in read(to_csv([day])) if row["metric_role"] == "primary" and row["variant"] == "one-page"]
    blank = ("probability_to_be_best", "p_value", "standard_error", "absolute_lift", "relative_lift")
    assert [row[name] for name in blank] == [""] * len(blank)
    assert row["relative_ci_low"] == row["relative_ci_high"] == ""
    assert int(row["exposures"]) == treatment["exposures"]
