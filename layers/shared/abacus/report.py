"""The results as a person reads them: a self-contained HTML page (verdict, variants table, and
inline SVG charts of the cumulative lift with its interval and of the probability to be best over
the days), and the same as text for a terminal. Pure functions of the snapshots."""

import html

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


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.2%}"


def verdict_sentence(snapshot: dict) -> str:
    verdict = snapshot["verdict"]
    decision = verdict["decision"]
    if decision == "ship":
        return f"Ship '{verdict['variant']}': {verdict['reason']}."
    if decision == "invalid":
        return f"Invalid: {verdict['reason']}. Fix the split before trusting any number here."
    if decision == "no_effect":
        return f"Stop, no effect: {verdict['reason']}."
    return f"Keep running: {verdict['reason']}."


def rows(snapshot: dict) -> list[dict]:
    """One display row per variant."""
    shown = []
    for row in snapshot["variants"]:
        lift = row.get("lift")
        interval = lift["relative_ci"] if lift else None
        shown.append(
            {
                "variant": row["key"],
                "exposures": str(row["exposures"]),
                "value": str(row.get("conversions", round(row.get("sum", 0.0), 2))),
                "mean": _percent(row["mean"]) if snapshot.get("kind") == "conversion" else f"{row['mean']:.4g}",
                "best": _percent(row.get("probability_to_be_best")),
                "lift": "(control)"
                if lift is None
                else _percent(lift["relative"], True)
                + (f" [{_percent(interval[0], True)}, {_percent(interval[1], True)}]" if interval else ""),
                "p": "" if lift is None else ("n/a" if row["p_value"] is None else f"{row['p_value']:.4f}"),
            }
        )
    return shown


def _line(variant: str, exposures: str, value: str, mean: str, best: str, lift: str, p: str) -> str:
    return f"{variant:<14}{exposures:>10}{value:>12}{mean:>10}{best:>9}   {lift:<30}{p:>8}"


def text(snapshot: dict, experiment: str) -> str:
    metric = snapshot.get("metric", {})
    lines = [
        f"{experiment}: results for {snapshot['date']} (metric {metric.get('event', '?')}, {metric.get('kind', '')})",
        "",
        _line("variant", "exposures", "value", "mean", "P(best)", "lift (95% CI)", "p-value"),
    ]
    for r in rows(snapshot):
        lines.append(_line(r["variant"], r["exposures"], r["value"], r["mean"], r["best"], r["lift"], r["p"]))
    srm = snapshot["srm"]
    lines += ["", f"Sample ratio check: p = {srm['p_value']:.3f}" + (" MISMATCH" if srm["mismatch"] else " (ok)")]
    lines.append(verdict_sentence(snapshot))
    return "\n".join(lines)


def _chart(title: str, days: list[str], series: dict[str, list], band: dict[str, list] | None, as_percent: bool) -> str:
    """A line chart as inline SVG: one line per series (None gaps), optional interval bands."""
    width, height, left, bottom, top = 640, 260, 56, 28, 24
    values = [v for line in series.values() for v in line if v is not None]
    for low_high in (band or {}).values():
        values += [v for pair in low_high if pair for v in pair]
    if not values or not days:
        return f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption><p>No data yet.</p></figure>'
    low, high = min([*values, 0.0]), max([*values, 0.0])
    if high == low:
        high = low + 1
    step = (width - left - 16) / max(1, len(days) - 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + (high - v) / (high - low) * (height - top - bottom)

    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">',
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 16}" y2="{y(0):.1f}" stroke="#999" stroke-dasharray="4 3"/>',
    ]
    for tick in (low, (low + high) / 2, high):
        label = f"{tick:+.0%}" if as_percent else f"{tick:.0%}"
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    for i, anchor in ((0, "start"), (len(days) - 1, "end")):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="{anchor}" font-size="11">{days[i]}</text>')
    for n, (name, line) in enumerate(series.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        pairs = (band or {}).get(name)
        if pairs:
            upper = [(x(i), y(p[1])) for i, p in enumerate(pairs) if p]
            lower = [(x(i), y(p[0])) for i, p in enumerate(pairs) if p]
            if upper:
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in upper + lower[::-1])
                parts.append(f'<polygon class="band" points="{points}" fill="{colour}" fill-opacity="0.18"/>')
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line) if v is not None)
        parts.append(f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        parts.append(
            f'<text x="{width - 12}" y="{top + 14 * n}" text-anchor="end" font-size="12" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>{"".join(parts)}</figure>'


def page(experiment: dict, history: list[dict]) -> str:
    """The report page for an experiment (its API description) and its snapshots, oldest first."""
    name = html.escape(experiment.get("name") or experiment["key"])
    if not history:
        body = "<p>No results yet: the nightly job computes the first snapshot after a full day running.</p>"
    else:
        latest = history[-1]
        days = [s["date"] for s in history]
        treatments = [r["key"] for r in latest["variants"] if "lift" in r]
        lifts, bands = {}, {}
        for key in treatments:
            rows_by_day = [next((r for r in s["variants"] if r["key"] == key), {}) for s in history]
            lifts[key] = [(r.get("lift") or {}).get("relative") for r in rows_by_day]
            bands[key] = [(r.get("lift") or {}).get("relative_ci") for r in rows_by_day]
        best = {
            r["key"]: [
                next((x for x in s["variants"] if x["key"] == r["key"]), {}).get("probability_to_be_best")
                for s in history
            ]
            for r in latest["variants"]
        }
        table = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(r[k])}</td>" for k in ("variant", "exposures", "value", "mean", "best", "lift", "p")
            )
            + "</tr>"
            for r in rows(latest)
        )
        metric = latest.get("metric", {})
        body = (
            f'<p class="verdict verdict-{latest["verdict"]["decision"]}">{html.escape(verdict_sentence(latest))}</p>'
            f"<p>Data up to {html.escape(latest['date'])}; metric <b>{html.escape(str(metric.get('event', '')))}</b> "
            f"({html.escape(str(metric.get('kind', '')))}); {html.escape(latest.get('method', ''))}.</p>"
            "<table><thead><tr><th>Variant</th><th>Exposures</th><th>Conversions / sum</th><th>Mean</th>"
            "<th>P(best)</th><th>Relative lift (95% interval)</th><th>p-value</th></tr></thead>"
            f"<tbody>{table}</tbody></table>"
            + _chart("Cumulative relative lift over control, with its 95% interval", days, lifts, bands, True)
            + _chart("Probability to be best", days, best, None, False)
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{name}: Abacus results</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 760px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.verdict {{ font-size: 1.2rem; padding: .75rem 1rem; border-radius: 6px; background: #eef; }}
.verdict-ship {{ background: #e3f4e1; }} .verdict-invalid {{ background: #fde2e1; }}
figure.chart {{ margin: 1.5rem 0; }} figcaption {{ font-weight: 600; margin-bottom: .5rem; }}
</style></head>
<body><h1>{name}</h1><p><code>{html.escape(experiment["key"])}</code> · {html.escape(experiment.get("status", ""))}</p>
{body}
</body></html>"""
