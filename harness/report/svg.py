"""A small SVG plot generator, no plotting library: time charts with shaded fault windows and
percentile (HDR-style) plots. Every function returns one `<svg>` element as a string that is
well-formed XML (all text escaped).

Interactivity lives in `assets.REPORT_JS`, bound by class names and data attributes:
- hover: every bucket of a time chart has a transparent `rect.hover` holding a `<title>`;
- zoom: a time chart (`svg.time-chart`, `data-x0`/`data-x1` its full x domain, `data-left`/
  `data-plotw` its plot area) draws its data inside a nested `svg.plot-area` whose viewBox the
  script narrows; `g.xaxis` is rebuilt and elements with `data-x` are moved by the script.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from harness.checkers.distribution import value_at

Point = tuple[float, float | None]

MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 14, 46, 44
TITLE_Y, LEGEND_Y = 16, 31


def esc(text: object) -> str:
    """Text for XML content and attribute values."""
    return escape(str(text), {'"': "&quot;"})


def num(value: float) -> str:
    """A coordinate: two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


def label(value: float) -> str:
    """A tick label: short, no needless decimals."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:g}k" if value % 100 == 0 else f"{value:,.0f}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


@dataclass(frozen=True)
class Line:
    """One series; a None value breaks the line."""

    label: str
    points: Sequence[Point]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded x interval (a fault window), with a label shown above it and on hover."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class Hover:
    """A hover column over [start, end) with the tooltip text."""

    start: float
    end: float
    text: str


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    parts, pen_down = [], False
    for point in points:
        if point is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{num(point[0])} {num(point[1])}")
        pen_down = True
    return " ".join(parts)


def _legend(lines: Sequence[Line], x: float, y: float) -> str:
    items, offset = [], 0.0
    for line in lines:
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        items.append(f'<line x1="{num(x + offset)}" y1="{num(y - 4)}" x2="{num(x + offset + 18)}" y2="{num(y - 4)}" '
                     f'stroke="{esc(line.color)}" stroke-width="2.5"{dash}/>'
                     f'<text x="{num(x + offset + 22)}" y="{num(y)}" class="legend">{esc(line.label)}</text>')
        offset += 30 + 6.2 * len(line.label)
    return "".join(items)


def time_chart(lines: Sequence[Line], *, title: str, x_range: tuple[float, float], y_max: float | None = None,
               y_unit: str = "", bands: Sequence[Band] = (), hovers: Sequence[Hover] = (),
               width: int = 620, height: int = 230, x_unit: str = "s") -> str:
    """A line chart over a shared time axis (seconds since t0) with shaded `bands`.

    y runs from 0 to `y_max` (default: the largest value, at least 1). Zoomable by report.js.
    """
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1
    values = [v for line in lines for _, v in line.points if v is not None and math.isfinite(v)]
    top = (y_max if y_max and y_max > 0 else max(values, default=0) or 1) * 1.06  # headroom above the peak
    ticks = nice_ticks(0, top)
    top = max(top, ticks[-1])
    plot_w, plot_h = width - MARGIN_LEFT - MARGIN_RIGHT, height - MARGIN_TOP - MARGIN_BOTTOM

    def px(x: float) -> float:
        return (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return plot_h - max(0.0, min(y, top)) / top * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart time-chart" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" data-x0="{num(x0)}" data-x1="{num(x1)}" data-left="{MARGIN_LEFT}" '
           f'data-plotw="{plot_w}" data-top="{MARGIN_TOP}" data-ploth="{plot_h}" data-unit="{esc(x_unit)}" role="img">',
           f"<title>{esc(title)}</title>",
           f'<text x="{MARGIN_LEFT}" y="{TITLE_Y}" class="chart-title">{esc(title)}</text>']
    for tick in ticks:
        y = MARGIN_TOP + py(tick)
        out.append(f'<line x1="{MARGIN_LEFT}" y1="{num(y)}" x2="{MARGIN_LEFT + plot_w}" y2="{num(y)}" class="grid"/>'
                   f'<text x="{MARGIN_LEFT - 6}" y="{num(y + 4)}" class="tick" text-anchor="end">{label(tick)}</text>')
    if y_unit:
        out.append(f'<text x="12" y="{num(MARGIN_TOP + plot_h / 2)}" class="axis-label" text-anchor="middle" '
                   f'transform="rotate(-90 12 {num(MARGIN_TOP + plot_h / 2)})">{esc(y_unit)}</text>')
    out.append(f'<g class="xaxis">{_x_ticks(x0, x1, px, MARGIN_LEFT, MARGIN_TOP + plot_h, x_unit)}</g>')
    out.append(f'<text x="{num(MARGIN_LEFT + plot_w / 2)}" y="{height - 6}" class="axis-label" text-anchor="middle">'
               f'seconds since the start of the run</text>')
    for band in bands:
        out.append(f'<text x="{num(MARGIN_LEFT + px(band.start) + 3)}" y="{MARGIN_TOP + 11}" class="band-label" '
                   f'data-x="{num(band.start)}" data-dx="3">{esc(band.label)}</text>')
    out.append(f'<svg class="plot-area" x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" '
               f'viewBox="0 0 {plot_w} {plot_h}" preserveAspectRatio="none">')
    for band in bands:
        out.append(f'<rect class="band" x="{num(px(band.start))}" y="0" width="{num(max(0.5, px(band.end) - px(band.start)))}" '
                   f'height="{plot_h}"><title>{esc(band.label)}: {num(band.start)}–{num(band.end)} s</title></rect>')
    for line in lines:
        points = [None if v is None or not math.isfinite(v) else (px(x), py(v)) for x, v in line.points]
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        out.append(f'<path class="series" d="{_path(points)}" stroke="{esc(line.color)}"{dash}>'
                   f"<title>{esc(line.label)}</title></path>")
    for hover in hovers:
        out.append(f'<rect class="hover" x="{num(px(hover.start))}" y="0" width="{num(max(0.5, px(hover.end) - px(hover.start)))}" '
                   f'height="{plot_h}"><title>{esc(hover.text)}</title></rect>')
    out.append("</svg>")
    out.append(f'<rect class="frame" x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}"/>')
    out.append(_legend(lines, MARGIN_LEFT, LEGEND_Y))
    out.append("</svg>")
    return "".join(out)


def _x_ticks(x0: float, x1: float, px: Callable[[float], float], left: float, bottom: float, unit: str) -> str:
    parts = []
    for tick in nice_ticks(x0, x1, 8):
        x = left + px(tick)
        parts.append(f'<line x1="{num(x)}" y1="{num(bottom)}" x2="{num(x)}" y2="{num(bottom + 4)}" class="axis"/>'
                     f'<text x="{num(x)}" y="{num(bottom + 16)}" class="tick" text-anchor="middle">{label(tick)}</text>')
    return "".join(parts)


# --- percentile plot -------------------------------------------------------------------------------------

PERCENTILE_MARKS = ((50.0, "50%"), (90.0, "90%"), (99.0, "99%"), (99.9, "99.9%"), (99.99, "99.99%"))


def _nines(percentile: float) -> float:
    """x position of a percentile on an HDR plot: log10(1 / (1 - p))."""
    return math.log10(1 / max(1e-6, 1 - percentile / 100))


def percentile_chart(distributions: dict[str, tuple[Sequence[float], str]], *, title: str, unit: str = "ms",
                     width: int = 620, height: int = 260, points: int = 120) -> str:
    """Latency by percentile, HDR style: x is 0%, 90%, 99%, 99.9% ... (log of 1/(1-p)), y log scale.

    `distributions` maps a label to (values, color); values need not be sorted; empty ones are
    listed in the legend as "no data". A point is the value at its percentile by the harness's rank
    rule (`harness.checkers.distribution.value_at`), the value itself, not HDR-rounded.
    """
    data = {name: (sorted(v for v in values if v is not None and math.isfinite(v)), color)
            for name, (values, color) in distributions.items()}
    counts = [len(v) for v, _ in data.values() if v]
    x_max = max(2.0, math.log10(max(counts, default=100)))
    # a log axis: values <= 0 (a skewed clock's fulfilment; a distribution of zeros) sit on its floor
    positives = [max(v[0], 1e-3) for v, _ in data.values() if v] + [max(v[-1], 1e-3) for v, _ in data.values() if v]
    lo = 10 ** math.floor(math.log10(min(positives))) if positives else 1
    hi = 10 ** math.ceil(math.log10(max(positives))) if positives else 10
    if hi <= lo:
        hi = lo * 10
    plot_w, plot_h = width - MARGIN_LEFT - MARGIN_RIGHT, height - MARGIN_TOP - MARGIN_BOTTOM

    def px(nines: float) -> float:
        return MARGIN_LEFT + min(nines, x_max) / x_max * plot_w

    def py(value: float) -> float:
        v = min(max(value, lo), hi)
        return MARGIN_TOP + plot_h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart percentile-chart" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img">', f"<title>{esc(title)}</title>",
           f'<text x="{MARGIN_LEFT}" y="{TITLE_Y}" class="chart-title">{esc(title)}</text>']
    exponent = round(math.log10(lo))
    while 10 ** exponent <= hi * 1.0001:
        y = py(10 ** exponent)
        out.append(f'<line x1="{MARGIN_LEFT}" y1="{num(y)}" x2="{MARGIN_LEFT + plot_w}" y2="{num(y)}" class="grid"/>'
                   f'<text x="{MARGIN_LEFT - 6}" y="{num(y + 4)}" class="tick" text-anchor="end">{label(10 ** exponent)}</text>')
        exponent += 1
    for percentile, text in ((0.0, "0%"), *PERCENTILE_MARKS):
        if _nines(percentile) <= x_max + 1e-9:
            x = px(_nines(percentile))
            out.append(f'<line x1="{num(x)}" y1="{MARGIN_TOP}" x2="{num(x)}" y2="{MARGIN_TOP + plot_h}" class="grid"/>'
                       f'<text x="{num(x)}" y="{MARGIN_TOP + plot_h + 16}" class="tick" text-anchor="middle">{text}</text>')
    out.append(f'<text x="12" y="{num(MARGIN_TOP + plot_h / 2)}" class="axis-label" text-anchor="middle" '
               f'transform="rotate(-90 12 {num(MARGIN_TOP + plot_h / 2)})">{esc(unit)} (log scale)</text>'
               f'<text x="{num(MARGIN_LEFT + plot_w / 2)}" y="{height - 6}" class="axis-label" text-anchor="middle">'
               f'share of orders at or below the value (percentile)</text>')
    legend = []
    for name, (values, color) in data.items():
        if not values:
            legend.append(Line(f"{name}: no data", [], color, dashed=True))
            continue
        legend.append(Line(name, [], color))
        steps = [x_max * i / points for i in range(points + 1)]
        coords: list[tuple[float, float] | None] = [
            (px(s), py(value_at(values, 100 * (1 - 10 ** -s)))) for s in steps]
        out.append(f'<path class="series" d="{_path(coords)}" stroke="{esc(color)}"><title>{esc(name)}</title></path>')
        for percentile, text in PERCENTILE_MARKS:
            if _nines(percentile) <= x_max + 1e-9:
                v = value_at(values, percentile)
                out.append(f'<circle cx="{num(px(_nines(percentile)))}" cy="{num(py(v))}" r="3.5" fill="{esc(color)}" '
                           f'class="mark"><title>{esc(name)}: {text} of {len(values)} orders within {v:,.1f} {esc(unit)}'
                           f"</title></circle>")
    out.append(f'<rect class="frame" x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}"/>')
    out.append(_legend(legend, MARGIN_LEFT, LEGEND_Y))
    out.append("</svg>")
    return "".join(out)
