"""The report page and the terminal's results, from histories the stats engine analysed: every
metric of the snapshot is shown, the secondary ones as the primary, labelled as secondary."""

import html
import re
from html.parser import HTMLParser

from abacus.core.documents import MetricAnalysis, VariantAnalysis
from abacus.results import decision_card
from abacus.results.report import html_page, sentences, text_report
from tests.report_history import EXPERIMENT, KEY, history


class _Tables(HTMLParser):
    """A page's tables, each with the heading (h2, h3) before it and the text between the two."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, str, list[list[str]]]] = []
        self._heading: list[str] | None = None
        self._said: list[str] = []
        self._cell: list[str] | None = None
        self._rows: list[list[str]] = []
        self._last_heading = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("h2", "h3"):
            self._heading, self._said = [], []
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "h3") and self._heading is not None:
            self._last_heading, self._heading = "".join(self._heading), None
        elif tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self.tables.append((self._last_heading, " ".join(self._said), self._rows))
            self._rows, self._said = [], []

    def handle_data(self, data: str) -> None:
        for sink in (self._heading, self._cell):
            if sink is not None:
                sink.append(data)
        if self._cell is None and self._heading is None:
            self._said.append(data)


def tables_of(page: str) -> list[tuple[str, str, list[list[str]]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def expected_cells(row: VariantAnalysis, is_rate: bool) -> list[str]:
    """The cells a variant's row must show: its own numbers, formatted as the primary's are."""
    value = row["conversions"] if is_rate else round(row["sum"], 2)
    mean = f"{row['mean']:.2%}" if is_rate else f"{row['mean']:.4g}"
    lift = row.get("lift")
    relative = None if lift is None else lift["relative"]
    p_value = row.get("p_value")
    return [
        row["key"],
        str(row["exposures"]),
        str(value),
        mean,
        f"{row['probability_to_be_best']:.2%}",
        "(control)" if lift is None else ("n/a" if relative is None else f"{relative:+.1%}"),
        "" if lift is None else ("n/a" if p_value is None else f"{p_value:.4f}"),
    ]


def shown_cells(cells: list[str]) -> list[str]:
    """A table row's cells that expected_cells() describes (the lift without its interval)."""
    variant, exposures, value, mean, best, lift, p_value = cells
    return [variant, exposures, value, mean, best, lift.split(" [")[0], p_value]


def assert_table_of(analysis: MetricAnalysis, rows: list[list[str]], header: list[str]) -> None:
    assert rows[0] == header
    is_rate = analysis["kind"] == "conversion"
    assert [shown_cells(cells) for cells in rows[1:]] == [expected_cells(row, is_rate) for row in analysis["variants"]]


def test_the_page_shows_each_secondary_metric_with_the_table_the_primary_gets():
    snapshots = history(7)
    latest = snapshots[-1]
    tables = tables_of(html_page.page(EXPERIMENT, snapshots))
    secondary = latest["secondary_metrics"]
    assert len(tables) == 1 + len(secondary) == 3
    header = tables[0][2][0]
    assert_table_of(latest, tables[0][2], header)
    for (heading, said, rows), analysis in zip(tables[1:], secondary, strict=True):
        metric = analysis["metric"]
        assert heading == f"Secondary metric: {metric['event']} ({metric['kind']})"
        assert_table_of(analysis, rows, header)
        # Its own verdict, said as a secondary metric's: the decision rests on the primary.
        assert html.unescape(sentences.metric_verdict_sentence(analysis)) in said
        assert analysis["verdict"]["reason"] in said
    # Not the primary's numbers again: the secondary metrics' rates differ.
    assert tables[1][2][1:] != tables[0][2][1:]


def test_the_page_says_how_the_secondary_metrics_p_values_are_adjusted():
    snapshots = history(7)
    page = html.unescape(html_page.page(EXPERIMENT, snapshots))
    # Three variants: two comparisons with the control in each metric, Holm-adjusted within it.
    assert "p-values are Holm-adjusted across each metric's 2 comparisons with the control" in page
    assert "not for the 3 metrics analysed" in page


def test_a_snapshot_without_secondary_metrics_shows_no_secondary_section():
    snapshots = history(2)
    for snapshot in snapshots:
        snapshot["secondary_metrics"] = []
    page = html_page.page(EXPERIMENT, snapshots)
    assert "Secondary" not in page and "Secondary" not in text_report.text(snapshots[-1], KEY)
    assert len(tables_of(page)) == 1


def test_the_terminal_shows_each_secondary_metric_with_the_table_the_primary_gets():
    latest = history(7)[-1]
    lines = text_report.text(latest, KEY).splitlines()
    header = next(line for line in lines if line.startswith("variant"))
    assert "p-values are Holm-adjusted across each metric's 2 comparisons with the control" in " ".join(lines)
    for analysis in latest["secondary_metrics"]:
        metric = analysis["metric"]
        start = lines.index(f"Secondary metric: {metric['event']} ({metric['kind']})")
        assert lines[start + 1] == header
        shown = lines[start + 2 : start + 2 + len(analysis["variants"])]
        is_rate = analysis["kind"] == "conversion"
        for line, row in zip(shown, analysis["variants"], strict=True):
            cells = expected_cells(row, is_rate)
            assert line.split()[:3] == cells[:3]
            assert all(cell in line for cell in cells)
        assert lines[start + 2 + len(analysis["variants"])] == sentences.metric_verdict_sentence(analysis)


def test_the_first_exposures_per_day_are_drawn_per_variant_with_counts_on_their_axis():
    from abacus.stats.srm import by_day

    snapshots = history(3)
    days = [("2026-09-01", [120, 118, 0]), ("2026-09-02", [95, 101, 0]), ("2026-09-03", [130, 40, 0])]
    latest = {**snapshots[-1], "exposures_by_day": by_day(days, [34, 33, 33])}
    page = html_page.results_section([*snapshots[:-1], latest])  # type: ignore[list-item]
    chart = page[page.index("<figcaption>First exposures per day</figcaption>") :].split("</figure>", 1)[0]
    labels = re.findall(r'font-size="11">([^<]+)</text>', chart)
    assert "130" in labels and "0" in labels and not any("%" in label for label in labels), labels
    assert re.findall(r'font-size="12" fill="#[0-9a-f]+">([^<]+)</text>', chart) == ["control", "one-page", "two-page"]
    # Each variant's line runs through its three days, higher for more exposures: control's last
    # day (130) at the top, two-page's (0) on the zero line.
    lines = [[float(y) for y in re.findall(r",([\d.]+)", points)] for points in re.findall(r'points="([^"]+)"', chart)]
    assert len(lines) == 3 and all(len(line) == 3 for line in lines)
    assert lines[0][2] == min(y for line in lines for y in line) and set(lines[2]) == {max(lines[2])}
    without = html_page.results_section(snapshots)
    assert "First exposures per day" not in without


def test_the_page_opens_with_the_decision_card_and_keeps_p_best_out_of_its_headline():
    snapshots = history(7)
    latest, previous = snapshots[-1], snapshots[-2]
    expected = decision_card.card(latest, previous)
    page = html.unescape(html_page.page(EXPERIMENT, snapshots))
    headlines = re.findall(r'<p class="verdict verdict-(\w+)">([^<]*)</p>', page)
    assert headlines == [(latest["verdict"]["decision"], expected["headline"])]  # one headline: the card's
    assert "P(best)" not in expected["headline"] + expected["why"]
    card_html = page[page.index('<section class="decision-card"') : page.index("</section>")]
    assert expected["why"] in card_html
    # The figures, P(best) reconciled in words among them, and what changed since the day before.
    figures = (expected["interval"], expected["expected_loss"], expected["probability_to_be_best"], expected["changes"])
    for figure in figures:
        assert figure is not None and figure["text"] in card_html, figure
    assert f"Since {previous['date']}: " in card_html
    # The card comes before the table and the charts.
    assert page.index('class="decision-card"') < page.index("<table") < page.index("<svg")
    assert "Probability to be best (read as if each night were the only look: not the decision" in page


def test_the_terminal_opens_with_the_decision_card_the_answer_carries():
    snapshots = history(7)
    latest = snapshots[-1]
    shown = decision_card.card(latest, snapshots[-2])
    lines = text_report.text({**latest, "decision_card": shown}, KEY).splitlines()
    said = decision_card.lines(shown, notes=False)
    assert lines[2 : 2 + len(said)] == said and said[-1].startswith(f"Since {snapshots[-2]['date']}: ")
    assert lines[2 + len(said) + 1].startswith("variant")  # then the table
    # Without a card in the answer (a snapshot alone), its own card, with no changes to say.
    alone = text_report.text(latest, KEY).splitlines()
    assert alone[2] == decision_card.card(latest)["headline"] and not any(line.startswith("Since ") for line in alone)
