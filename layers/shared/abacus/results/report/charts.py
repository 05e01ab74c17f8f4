"""The report's charts as inline SVG: line charts of a number per variant over the days, with an
optional interval band, on a frame that fits every value and the zero line."""

import html
import math
from dataclasses import dataclass, replace

_COLOURS = [
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
    "#eeca3b",
]


# The charts' size and margins, in SVG units.
_WIDTH, _HEIGHT, _LEFT, _RIGHT, _BOTTOM, _TOP = 640, 260, 56, 16, 28, 24
_PLOT_WIDTH = _WIDTH - _LEFT - _RIGHT
# A date label's width is at most this per character (11px sans-serif: a digit is 7 in DejaVu
# Sans), and labels keep this gap between them.
_DIGIT_WIDTH, _LABEL_GAP = 0.65 * 11, 8
# The values labelled at the left stand at least this far apart (their font is 11).
_TICK_CLEARANCE = 14
# On a single day, the series stand side by side, this far apart, so that their intervals show.
_DODGE = 14
# One value a day per variant (None where undefined), and the interval around it.
type Series = dict[str, list[float | None]]
type Bands = dict[str, list[list[float] | None]]


@dataclass(frozen=True)
class _Frame:
    """Where a day and a value land in the chart: days spread over the width (a single day in the
    middle), values from low (bottom) to high (top); `shift` moves a series aside on a single day."""

    low: float
    high: float
    days: int
    shift: float = 0.0

    def x(self, day: int) -> float:
        if self.days == 1:
            return _LEFT + _PLOT_WIDTH / 2 + self.shift
        return _LEFT + day * _PLOT_WIDTH / (self.days - 1)

    def y(self, value: float) -> float:
        return _TOP + (self.high - value) / (self.high - self.low) * (_HEIGHT - _TOP - _BOTTOM)

    def of_series(self, index: int, count: int) -> "_Frame":
        """The frame a series draws in: on a single day, side by side with the others."""
        return replace(self, shift=(index - (count - 1) / 2) * _DODGE) if self.days == 1 else self


def _frame(values: list[float], days: int) -> _Frame:
    """The frame that fits every value and 0 (the no-difference line)."""
    low, high = min([*values, 0.0]), max([*values, 0.0])
    if high == low:
        high = low + 1
    return _Frame(low, high, days)


def _figure(title: str, content: str) -> str:
    return f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>{content}</figure>'


def _axes(frame: _Frame, title: str, days: list[str], as_percent: bool, counts: bool = False) -> list[str]:
    """The SVG's opening, the dashed zero line, the values' labels and the days'."""
    zero = frame.y(0)
    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="{_WIDTH}" height="{_HEIGHT}">',
        f'<line x1="{_LEFT}" y1="{zero:.1f}" x2="{_WIDTH - _RIGHT}" y2="{zero:.1f}" stroke="#999" '
        'stroke-dasharray="4 3"/>',
    ]
    for tick in _value_ticks(frame):
        label = f"{tick:,.0f}" if counts else _tick_label(tick, frame.high - frame.low, signed=as_percent)
        parts.append(
            f'<text x="{_LEFT - 6}" y="{frame.y(tick) + 4:.1f}" text-anchor="end" font-size="11">{label}</text>'
        )
    for i, anchor in _day_labels(frame, days):
        parts.append(
            f'<text x="{frame.x(i):.1f}" y="{_HEIGHT - 8}" text-anchor="{anchor}" font-size="11">'
            f"{html.escape(days[i])}</text>"
        )
    return parts


def _value_ticks(frame: _Frame) -> list[float]:
    """The values labelled at the left: 0, the no-difference line, always; then the lowest, the
    highest and the middle value, each where it keeps clear of the labels placed."""
    placed: list[float] = []
    for tick in (0.0, frame.low, frame.high, (frame.low + frame.high) / 2):
        if all(abs(frame.y(tick) - frame.y(other)) >= _TICK_CLEARANCE for other in placed):
            placed.append(tick)
    return placed


def _tick_label(value: float, span: float, signed: bool) -> str:
    """A value as a percentage, 0 as 0% (neither +0% nor -0%), with the decimals the chart's span
    needs for labels a clearance apart to read differently (and never as 0%)."""
    if value == 0:
        return "0%"
    decimals = max(0, math.ceil(math.log10(20 / (span * 100))))
    return f"{value:+.{decimals}%}" if signed else f"{value:.{decimals}%}"


def _day_labels(frame: _Frame, days: list[str]) -> list[tuple[int, str]]:
    """The days labelled under the chart, with their anchors: a single day centred under it; else
    the first (from its left end) and the last (to its right end), so neither leaves the chart, and
    between them every n-th day, centred, n the fewest days that keep a label and a gap apart from
    its neighbours."""
    if len(days) == 1:
        return [(0, "middle")]
    # How far a centred label stands from an end's (half its width and a whole one, and a gap).
    apart = 1.5 * max(map(len, days)) * _DIGIT_WIDTH + _LABEL_GAP
    last = len(days) - 1
    every = math.ceil(apart / (frame.x(1) - frame.x(0)))
    between = [(i, "middle") for i in range(every, last, every) if frame.x(last) - frame.x(i) >= apart]
    return [(0, "start"), *between, (last, "end")]


def _band(frame: _Frame, pairs: list[list[float] | None], colour: str) -> list[str]:
    """The interval around a series as a shaded polygon, or as an error bar when a single day has
    one (a polygon over one day has no width); none when no day has one."""
    upper = [(frame.x(i), frame.y(p[1])) for i, p in enumerate(pairs) if p]
    lower = [(frame.x(i), frame.y(p[0])) for i, p in enumerate(pairs) if p]
    if not upper:
        return []
    if len(upper) == 1:
        (x, top), (_, bottom) = upper[0], lower[0]
        bar = f"M{x - 5:.1f},{top:.1f}H{x + 5:.1f}M{x:.1f},{top:.1f}V{bottom:.1f}M{x - 5:.1f},{bottom:.1f}H{x + 5:.1f}"
        return [f'<path class="band" d="{bar}" fill="none" stroke="{colour}" stroke-width="1.5"/>']
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in upper + lower[::-1])
    return [f'<polygon class="band" points="{points}" fill="{colour}" fill-opacity="0.18"/>']


def _series(frame: _Frame, index: int, name: str, line: list[float | None], colour: str) -> list[str]:
    """A series' line (skipping undefined days), or its point when a single day has a value, and its
    name, stacked at the top right."""
    points = [(frame.x(i), frame.y(v)) for i, v in enumerate(line) if v is not None]
    if len(points) == 1:
        mark = f'<circle class="series" cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="4" fill="{colour}"/>'
    else:
        drawn = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        mark = f'<polyline class="series" points="{drawn}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
    return [
        mark,
        f'<text x="{_WIDTH - 12}" y="{_TOP + 14 * index}" text-anchor="end" font-size="12" fill="{colour}">'
        f"{html.escape(name)}</text>",
    ]


def chart(
    title: str, days: list[str], series: Series, bands: Bands | None, as_percent: bool, counts: bool = False
) -> str:
    """A line chart as inline SVG: one line per series (None gaps), optional interval bands; values
    labelled as percentages (signed for a lift), or as whole numbers (`counts`)."""
    bands = bands or {}
    values = [v for line in series.values() for v in line if v is not None]
    values += [v for pairs in bands.values() for pair in pairs if pair for v in pair]
    if not values or not days:
        return _figure(title, "<p>No data yet.</p>")
    frame = _frame(values, len(days))
    parts = _axes(frame, title, days, as_percent, counts)
    for index, (name, line) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        drawn_in = frame.of_series(index, len(series))
        parts += _band(drawn_in, bands.get(name) or [], colour) + _series(drawn_in, index, name, line, colour)
    parts.append("</svg>")
    return _figure(title, "".join(parts))
