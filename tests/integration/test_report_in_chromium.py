"""The report's charts as headless Chromium lays them out, for histories of 1 to 90 days: a single
day draws each series as a point with its interval, the date labels neither overlap nor leave the
chart, and the zero line is labelled 0%. The page is opened from a file with a script that
measures every label and mark (getBoundingClientRect, relative to its SVG) and writes the
measures into the page, which Chromium then prints (--dump-dom)."""

import html
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import date

import pytest

from abacus.results.report import html_page
from tests.report_history import EXPERIMENT, history

MEASURE = """<script>
(() => {
  const charts = [...document.querySelectorAll("figure.chart svg")].map((svg) => {
    const box = svg.getBoundingClientRect();
    const measure = (element) => {
      const r = element.getBoundingClientRect();
      return {left: r.left - box.left, right: r.right - box.left, top: r.top - box.top,
              bottom: r.bottom - box.top, width: r.width, height: r.height};
    };
    const zero = svg.querySelector("line[stroke-dasharray]");
    return {
      width: box.width,
      height: box.height,
      texts: [...svg.querySelectorAll("text")].map((t) => ({text: t.textContent, ...measure(t)})),
      series: [...svg.querySelectorAll(".series")].map(measure),
      bands: [...svg.querySelectorAll(".band")].map(measure),
      zero: zero && measure(zero),
    };
  });
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify(charts);
  document.body.append(out);
})();
</script>"""
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
HISTORIES = [1, 2, 7, 30, 90]
# Every treatment beats the control by far: every lift and interval above 0.
FAR_BETTER = {"control": (0.10, 0.40, 0.20), "one-page": (0.50, 0.44, 0.22), "two-page": (0.45, 0.39, 0.20)}


@pytest.fixture(scope="module")
def charts_of(tmp_path_factory) -> Callable[..., list[dict]]:
    """The measured charts (lift, then probability to be best) of a history's report page."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "make test installs Debian's chromium; run it so"
    measured: dict[tuple[int, bool], list[dict]] = {}

    def charts(days: int, far_better: bool = False) -> list[dict]:
        if (days, far_better) not in measured:
            folder = tmp_path_factory.mktemp(f"report-{days}")
            snapshots = history(days, FAR_BETTER, users_per_day=3000) if far_better else history(days)
            page = folder / "report.html"
            page.write_text(html_page.page(EXPERIMENT, snapshots).replace("</body>", MEASURE + "</body>"))
            printed = subprocess.run(
                [
                    chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={folder}/data", "--dump-dom", page.as_uri(),
                ],
                check=True, capture_output=True, text=True, timeout=120,
            ).stdout  # fmt: skip
            found = re.search(r'<pre id="measured">(.*?)</pre>', printed, re.DOTALL)
            assert found, f"the page was not measured: {printed[-500:]}"
            measured[days, far_better] = json.loads(html.unescape(found.group(1)))
        return measured[days, far_better]

    return charts


def overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def inside(box: dict, chart: dict) -> bool:
    return box["left"] >= 0 and box["top"] >= 0 and box["right"] <= chart["width"] and box["bottom"] <= chart["height"]


@pytest.mark.parametrize("days", HISTORIES)
def test_date_labels_neither_overlap_nor_leave_the_chart(charts_of, days):
    snapshots = history(days)
    first, last = snapshots[0]["date"], snapshots[-1]["date"]
    for chart in charts_of(days):
        labels = sorted((t for t in chart["texts"] if DATE.fullmatch(t["text"])), key=lambda t: t["left"])
        for text in chart["texts"]:
            assert inside(text, chart), f"{text} leaves the chart ({chart['width']} x {chart['height']})"
        for index, label in enumerate(labels):
            assert not any(overlap(label, other) for other in labels[index + 1 :]), f"{label} overlaps another"
        # Each day once, in order, the first and the last among them, and the days between where they fit.
        assert [label["text"] for label in labels] == sorted({label["text"] for label in labels})
        assert labels[0]["text"] == first and labels[-1]["text"] == last
        assert len(labels) >= min(days, 4), "the axis labels the days between its ends where they fit"
        assert all(date.fromisoformat(label["text"]) for label in labels)


def test_a_single_day_draws_each_series_as_a_point_with_its_interval(charts_of):
    lift, best = charts_of(1)
    treatments, variants = 2, 3
    assert len(lift["series"]) == len(lift["bands"]) == treatments and len(best["series"]) == variants
    for chart in (lift, best):
        for mark in chart["series"] + chart["bands"]:
            assert mark["width"] > 0 and mark["height"] > 0, f"{mark}: nothing is drawn"
            assert inside(mark, chart)
    for point, interval in zip(lift["series"], lift["bands"], strict=True):
        centre_x, centre_y = (point["left"] + point["right"]) / 2, (point["top"] + point["bottom"]) / 2
        assert abs(centre_x - (interval["left"] + interval["right"]) / 2) < 0.5
        assert interval["top"] < centre_y < interval["bottom"], "the point lies on its interval"


@pytest.mark.parametrize(("days", "far_better"), [(1, False), (7, False), (90, False), (7, True)])
def test_the_zero_line_is_labelled_0(charts_of, days, far_better):
    for chart in charts_of(days, far_better):
        zero = chart["zero"]
        ticks = [text for text in chart["texts"] if text["right"] <= zero["left"] + 0.5]
        assert [tick["text"] for tick in ticks if tick["top"] <= zero["top"] <= tick["bottom"]] == ["0%"]
        assert len({tick["text"] for tick in ticks}) == len(ticks), f"two ticks read the same: {ticks}"
        assert not any(overlap(a, b) for index, a in enumerate(ticks) for b in ticks[index + 1 :])
