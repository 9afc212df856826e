"""Server-side SVG charts for the quality pages: bars, lines, intervals, a reliability diagram.

Plain Python (no numpy): the web process draws what the stats job stored. Each chart is one
inline `<svg role="img">` named by its `<title>` and `<desc>`, drawn on a 400-unit-wide viewBox
with no width or height, so it takes its container's width and keeps its proportions; at 390 px
the 12- and 14-unit texts are 11 and 13 px. No script, no event handler, no style attribute (the
pages' CSP allows no inline style): presentation attributes and class names (`chart-*`) that a
stylesheet may override. Every piece of text is escaped; non-finite numbers are not drawn.
Colours are the Okabe-Ito palette (told apart by colour-blind readers), and line series also
differ by dash pattern.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TypeGuard

WIDTH = 400
FONT = 14
SMALL = 12
CHAR = 0.56 * FONT  # average advance of a character, for layout only
ROW = 28
MAX_LABEL_CHARS = 22
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
INK = "#222222"
MUTED = "#666666"
GRID = "#dddddd"
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per x label; None leaves a gap


@dataclass(frozen=True, slots=True)
class IntervalRow:
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class ReliabilityPoint:
    mean_prob: float
    observed: float
    count: int


def _ok(x: float | None) -> TypeGuard[float]:
    return x is not None and math.isfinite(x)


def fmt(x: float) -> str:
    """A short, readable number: 1,234 / 12.5 / 0.843."""
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    text = f"{x:.2f}" if abs(x) >= 1 else f"{x:.3f}"
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        lo, hi = (lo - 1.0, hi + 1.0) if lo == 0 else (lo - abs(lo) * 0.1, hi + abs(hi) * 0.1)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t < hi + step * 0.5:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _scale(
    lo: float, hi: float, fixed_lo: float | None, fixed_hi: float | None, count: int
) -> tuple[float, float, list[float]]:
    """Axis bounds and ticks: the caller's bounds where given, else widened to round ticks."""
    ticks = nice_ticks(
        lo if fixed_lo is None else fixed_lo, hi if fixed_hi is None else fixed_hi, count
    )
    low = ticks[0] if fixed_lo is None else fixed_lo
    high = ticks[-1] if fixed_hi is None else fixed_hi
    if high <= low:
        high = low + 1.0
    return low, high, [t for t in ticks if low - 1e-9 <= t <= high + 1e-9]


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _attrs(**attrs: object) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None or value == "":
            continue
        name = key.rstrip("_").replace("_", "-")
        if isinstance(value, float):
            value = f"{value:.2f}".rstrip("0").rstrip(".")
        parts.append(f'{name}="{escape(str(value), quote=True)}"')
    return " ".join(parts)


def _text(x: float, y: float, content: str, **attrs: object) -> str:
    base = {"font_size": FONT, "fill": INK}
    base.update(attrs)
    return f"<text {_attrs(x=x, y=y, **base)}>{escape(content, quote=False)}</text>"


def _svg(title: str, desc: str, height: float, body: list[str], chart_id: str | None) -> str:
    inner = "".join(body)
    if chart_id is None:
        digest = hashlib.sha1(f"{title}\0{desc}\0{inner}".encode(), usedforsecurity=False)
        chart_id = "chart-" + digest.hexdigest()[:10]
    elif not _ID.match(chart_id):
        raise ValueError("chart_id must start with a letter and hold letters, digits, - or _.")
    head = _attrs(
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {WIDTH} {math.ceil(height)}",
        role="img",
        aria_labelledby=f"{chart_id}-title {chart_id}-desc",
        class_="chart",
        font_family="system-ui, sans-serif",
    )
    return (
        f"<svg {head}>"
        f'<title id="{chart_id}-title">{escape(title, quote=False)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc, quote=False)}</desc>'
        f"{inner}</svg>"
    )


def _empty(title: str, desc: str, message: str, chart_id: str | None) -> str:
    body = [_text(WIDTH / 2, 44, message, text_anchor="middle", fill=MUTED, class_="chart-empty")]
    return _svg(title, desc, 72, body, chart_id)


def _label_width(labels: Sequence[str]) -> float:
    longest = max((len(_short(label)) for label in labels), default=0)
    return min(max(longest * CHAR + 12, 48), WIDTH * 0.45)


def _x_axis(
    ticks: list[float], scale_x: Callable[[float], float], top: float, bottom: float
) -> list[str]:
    """Vertical grid lines at the ticks, their values under the plot."""
    out = []
    for t in ticks:
        x = scale_x(t)
        out.append(
            f"<line {_attrs(x1=x, y1=top, x2=x, y2=bottom, stroke=GRID, class_='chart-grid')}/>"
        )
        out.append(_text(x, bottom + 16, fmt(t), font_size=SMALL, fill=MUTED, text_anchor="middle"))
    return out


def bar_chart(
    title: str,
    desc: str,
    bars: Sequence[tuple[str, float | None]],
    *,
    unit: str = "",
    chart_id: str | None = None,
) -> str:
    """Horizontal bars, one row per (label, value), value written at the bar's end.

    Bars start at zero; negative values draw to the left of it. None: "no data" in the row.
    """
    if not bars:
        return _empty(title, desc, "No data yet.", chart_id)
    values = [v for _, v in bars if _ok(v)]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    if lo == hi:
        hi = 1.0
    left = _label_width([label for label, _ in bars])
    value_room = 64
    plot_left, plot_right = left, WIDTH - value_room

    def sx(v: float) -> float:
        return plot_left + (v - lo) / (hi - lo) * (plot_right - plot_left)

    top = 8
    body: list[str] = []
    zero = sx(0.0)
    for i, (label, value) in enumerate(bars):
        y = top + i * ROW
        row = [f"<title>{escape(label, quote=False)}: {escape(_value_text(value, unit))}</title>"]
        row.append(_text(left - 8, y + ROW / 2 + 5, _short(label), text_anchor="end"))
        if _ok(value):
            x0, x1 = sorted((zero, sx(value)))
            bar = _attrs(
                x=x0, y=y + 5, width=max(x1 - x0, 1.0), height=ROW - 10, fill=PALETTE[0],
                class_="chart-bar",
            )  # fmt: skip
            row.append(f"<rect {bar}/>")
            row.append(_text(max(x1, zero) + 6, y + ROW / 2 + 5, _value_text(value, unit)))
        else:
            row.append(_text(zero + 6, y + ROW / 2 + 5, "no data", fill=MUTED))
        body.append(f'<g class="chart-row">{"".join(row)}</g>')
    bottom = top + len(bars) * ROW
    body.append(
        f"<line {_attrs(x1=zero, y1=top, x2=zero, y2=bottom, stroke=MUTED, class_='chart-axis')}/>"
    )
    return _svg(title, desc, bottom + 8, body, chart_id)


def _value_text(value: float | None, unit: str) -> str:
    if not _ok(value):
        return "no data"
    return f"{fmt(value)}{unit}"


def line_chart(
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    y_min: float | None = None,
    y_max: float | None = None,
    chart_id: str | None = None,
) -> str:
    """Lines over categorical x (dates, steps), one per series, with a legend below."""
    points = [v for s in series for v in s.values if _ok(v)]
    if not x_labels or not points:
        return _empty(title, desc, "No data yet.", chart_id)
    for s in series:
        if len(s.values) != len(x_labels):
            raise ValueError(f"series {s.name!r} needs one value per x label.")
    lo, hi, ticks = _scale(min(points), max(points), y_min, y_max, 5)
    left = max(len(fmt(t)) for t in ticks) * CHAR + 16
    top, plot_h = (26 if y_label else 10), 200
    right = WIDTH - 12
    n = len(x_labels)

    def sx(i: int) -> float:
        return left + (i / (n - 1) if n > 1 else 0.5) * (right - left)

    def sy(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    body: list[str] = []
    if y_label:
        body.append(_text(4, 14, y_label, font_size=SMALL, fill=MUTED))
    for t in ticks:
        y = sy(t)
        body.append(
            f"<line {_attrs(x1=left, y1=y, x2=right, y2=y, stroke=GRID, class_='chart-grid')}/>"
        )
        body.append(_text(left - 6, y + 4, fmt(t), font_size=SMALL, fill=MUTED, text_anchor="end"))
    step = max(1, math.ceil(n / 6))
    for i in range(0, n, step):
        anchor = "start" if n > 1 and i == 0 else "end" if i == n - 1 else "middle"
        body.append(
            _text(
                sx(i),
                top + plot_h + 18,
                x_labels[i],
                font_size=SMALL,
                fill=MUTED,
                text_anchor=anchor,
            )
        )
    for k, s in enumerate(series):
        colour, dash = PALETTE[k % len(PALETTE)], DASHES[k % len(DASHES)]
        d, pen_down = [], False
        for i, v in enumerate(s.values):
            if _ok(v):
                d.append(f"{'L' if pen_down else 'M'}{sx(i):.1f} {sy(v):.1f}")
                pen_down = True
            else:
                pen_down = False
        group = [f"<title>{escape(s.name, quote=False)}</title>"]
        path = _attrs(
            d=" ".join(d), fill="none", stroke=colour, stroke_width=2.5, stroke_dasharray=dash,
            stroke_linejoin="round", class_="chart-line",
        )  # fmt: skip
        group.append(f"<path {path}/>")
        if n <= 40:
            for i, v in enumerate(s.values):
                if _ok(v):
                    group.append(f"<circle {_attrs(cx=sx(i), cy=sy(v), r=3, fill=colour)}/>")
        body.append(f'<g class="chart-series">{"".join(group)}</g>')
    legend_top = top + plot_h + 34
    height = _legend(body, [s.name for s in series], legend_top)
    return _svg(title, desc, height, body, chart_id)


def _legend(body: list[str], names: Sequence[str], top: float) -> float:
    """Legend entries flowing left to right, wrapping at the chart's width; returns the bottom."""
    x, y = 8.0, top
    for k, name in enumerate(names):
        label = _short(name)
        width = 30 + len(label) * CHAR + 16
        if x > 8 and x + width > WIDTH:
            x, y = 8.0, y + 22
        colour, dash = PALETTE[k % len(PALETTE)], DASHES[k % len(DASHES)]
        swatch = _attrs(
            x1=x, y1=y, x2=x + 24, y2=y, stroke=colour, stroke_width=3, stroke_dasharray=dash
        )
        text = _text(x + 30, y + 5, label, font_size=SMALL)
        body.append(f'<g class="chart-legend"><line {swatch}/>{text}</g>')
        x += width
    return y + 16


def interval_chart(
    title: str,
    desc: str,
    rows: Sequence[IntervalRow],
    *,
    reference: float | None = None,
    x_min: float | None = None,
    x_max: float | None = None,
    chart_id: str | None = None,
) -> str:
    """A point per row with its interval as whiskers (leaderboards, agreement with CIs).

    `reference` draws a dashed vertical line (e.g. the anchor score, or 0 for kappa).
    """
    drawn = [r for r in rows if _ok(r.value)]
    if not drawn:
        return _empty(title, desc, "No data yet.", chart_id)
    extent = [v for r in drawn for v in (r.value, r.low, r.high) if _ok(v)]
    if reference is not None and math.isfinite(reference):
        extent.append(reference)
    lo, hi, ticks = _scale(min(extent), max(extent), x_min, x_max, 4)
    left = _label_width([r.label for r in rows])
    value_room = 52
    plot_left, plot_right = left + 6, WIDTH - value_room

    def sx(v: float) -> float:
        return plot_left + (v - lo) / (hi - lo) * (plot_right - plot_left)

    top = 8
    bottom = top + len(rows) * ROW
    body = _x_axis(ticks, sx, top, bottom)
    if reference is not None and math.isfinite(reference):
        x = sx(reference)
        ref = _attrs(
            x1=x, y1=top, x2=x, y2=bottom, stroke=MUTED, stroke_dasharray="4 3",
            class_="chart-reference",
        )  # fmt: skip
        body.append(f"<line {ref}/>")
    for i, r in enumerate(rows):
        y = top + i * ROW + ROW / 2
        bounds = ""
        if _ok(r.low) and _ok(r.high):
            bounds = f" (95% interval {fmt(r.low)} to {fmt(r.high)})"
        value = "no data" if not _ok(r.value) else fmt(r.value)
        parts = [f"<title>{escape(r.label, quote=False)}: {escape(value + bounds)}</title>"]
        parts.append(_text(left - 4, y + 5, _short(r.label), text_anchor="end"))
        if _ok(r.value):
            if _ok(r.low) and _ok(r.high):
                x0, x1 = sx(r.low), sx(r.high)
                whisker = _attrs(
                    x1=x0, y1=y, x2=x1, y2=y, stroke=PALETTE[0], stroke_width=2,
                    class_="chart-whisker",
                )  # fmt: skip
                parts.append(f"<line {whisker}/>")
                for xc in (x0, x1):
                    cap = _attrs(
                        x1=xc, y1=y - 6, x2=xc, y2=y + 6, stroke=PALETTE[0], stroke_width=2
                    )
                    parts.append(f"<line {cap}/>")
            point = _attrs(cx=sx(r.value), cy=y, r=5, fill=PALETTE[0], class_="chart-point")
            parts.append(f"<circle {point}/>")
        parts.append(_text(WIDTH - 4, y + 5, value, text_anchor="end", font_size=SMALL))
        body.append(f'<g class="chart-row">{"".join(parts)}</g>')
    return _svg(title, desc, bottom + 26, body, chart_id)


def reliability_diagram(
    title: str,
    desc: str,
    points: Sequence[ReliabilityPoint],
    *,
    chart_id: str | None = None,
) -> str:
    """Observed frequency against predicted probability per bin, with the diagonal of perfect
    calibration; a point's area follows its bin's count."""
    shown = [p for p in points if _ok(p.mean_prob) and _ok(p.observed) and p.count > 0]
    if not shown:
        return _empty(title, desc, "No data yet.", chart_id)
    left, top, side = 56.0, 28.0, WIDTH - 56.0 - 24.0

    def sx(v: float) -> float:
        return left + v * side

    def sy(v: float) -> float:
        return top + (1.0 - v) * side

    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    body = _x_axis(ticks, sx, top, top + side)
    for t in ticks:
        body.append(f"<line {_attrs(x1=left, y1=sy(t), x2=left + side, y2=sy(t), stroke=GRID)}/>")
        body.append(
            _text(left - 6, sy(t) + 4, fmt(t), font_size=SMALL, fill=MUTED, text_anchor="end")
        )
    diagonal = _attrs(
        x1=sx(0), y1=sy(0), x2=sx(1), y2=sy(1), stroke=MUTED, stroke_dasharray="4 3",
        class_="chart-reference",
    )  # fmt: skip
    body.append(f"<line {diagonal}/>")
    shown = sorted(shown, key=lambda p: p.mean_prob)
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{sx(p.mean_prob):.1f} {sy(p.observed):.1f}"
        for i, p in enumerate(shown)
    )
    body.append(f"<path {_attrs(d=path, fill='none', stroke=PALETTE[0], stroke_width=2)}/>")
    biggest = max(p.count for p in shown)
    for p in shown:
        r = 3 + 6 * math.sqrt(p.count / biggest)
        tip = f"predicted {fmt(p.mean_prob)}, observed {fmt(p.observed)}, {p.count} items"
        circle = _attrs(
            cx=sx(p.mean_prob), cy=sy(p.observed), r=r, fill=PALETTE[0], fill_opacity=0.8,
            class_="chart-point",
        )  # fmt: skip
        body.append(f"<circle {circle}><title>{escape(tip, quote=False)}</title></circle>")
    bottom = top + side
    body.append(_text(left + side / 2, bottom + 36, "predicted probability", font_size=SMALL,
                      fill=MUTED, text_anchor="middle"))  # fmt: skip
    body.append(_text(4, 14, "observed", font_size=SMALL, fill=MUTED))
    return _svg(title, desc, bottom + 46, body, chart_id)
