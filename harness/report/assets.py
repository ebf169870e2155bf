"""The report's shared assets, `assets/report.css` and `assets/report.js`, written once per report.

report.js records script errors in `document.body.dataset.errors` (so a headless browser's
--dump-dom shows them), sets `data-ready="1"` once it has bound every chart, and implements the
shared zoom: drag across any time chart to zoom every time chart of the page to that range,
double-click or "reset zoom" to see the whole run; a page opened with `#zoom=A,B` starts zoomed
to A..B seconds. It needs no library and no network.
"""
from __future__ import annotations

from pathlib import Path

REPORT_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #fafafa; }
header, main, footer { max-width: 1320px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 14px; } footer { color: #777; font-size: 12px; padding-bottom: 30px; }
h1 { font-size: 24px; margin: 8px 0; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 14px 0 6px; }
a { color: #1f5fa8; }
.claim { font-size: 16px; background: #fff; border-left: 4px solid #1f5fa8; padding: 8px 12px; }
.desc { color: #444; max-width: 1000px; }
details { margin: 4px 0 10px; } summary { cursor: pointer; color: #1f5fa8; }
table { border-collapse: collapse; background: #fff; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
table { max-width: 100%; }
th { background: #f0f0f0; font-weight: 600; }
td.num, span.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.diff td { background: #fff3cd; } tr.diff td:first-child::after { content: "  (differs)"; color: #a15c00; font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.pass { background: #d4edda; color: #155724; } .fail { background: #f8d7da; color: #721c24; }
.unknown { background: #e2e3e5; color: #383d41; }
.inconclusive { background: #ffe8a8; color: #7a4d00; } .not-applicable { background: #e2e3e5; color: #383d41; } .error { background: #721c24; color: #fff; }
.run-error { background: #fdecee; border-left: 4px solid #721c24; padding: 6px 12px; white-space: pre-wrap;
  overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: 13px; }
.sig { background: #dbe7f7; color: #1f4f8a; } tr.sig td { background: #eef4fc; }
td.cell { min-width: 260px; } td.cell dl { margin: 4px 0 0; display: grid; grid-template-columns: auto auto; gap: 0 10px; font-size: 13px; }
td.cell dt { color: #555; } td.cell dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.pair > div { flex: 1 1 600px; min-width: 0; }
.shop-name { font-weight: 700; text-transform: uppercase; letter-spacing: .05em; font-size: 12px; color: #555; }
.chart { max-width: 100%; height: auto; background: #fff; border: 1px solid #e4e4e4; }
.chart text { font: 11px system-ui, sans-serif; fill: #333; }
.chart .chart-title { font-size: 13px; font-weight: 600; }
.chart .tick { fill: #555; } .chart .axis-label { fill: #666; font-size: 11px; }
.chart .grid { stroke: #eee; } .chart .axis { stroke: #999; } .chart .frame { fill: none; stroke: #bbb; }
.chart .series { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
.chart .band { fill: rgba(220, 53, 69, .14); } .chart .band-label { fill: #a11; font-size: 10px; }
.chart .hover { fill: transparent; } .chart .hover:hover { fill: rgba(0, 0, 0, .07); }
.chart .selection { fill: rgba(31, 95, 168, .15); stroke: #1f5fa8; }
.chart .legend { font-size: 11px; }
.time-chart { cursor: crosshair; user-select: none; }
.zoom-bar { position: sticky; top: 0; z-index: 2; background: #fafafa; padding: 6px 0; border-bottom: 1px solid #eee; }
.zoom-bar button { font: inherit; } .zoom-bar .range { color: #555; margin-left: 8px; }
.flow .lane-0 { fill: #fff; } .flow .lane-1 { fill: #f4f6f8; } .flow .lane-label { font-weight: 600; font-size: 12px; }
.flow .flow-step { stroke: #8aa; stroke-width: 1.5; } .flow .flow-dot { fill: #1f5fa8; }
.flow .flow-label { font-size: 11px; }
.note { color: #666; font-size: 13px; }
.samples { font-size: 12px; color: #555; }
"""

REPORT_JS = r"""
(function () {
  "use strict";
  var errors = [];
  function note(message) {
    errors.push(String(message));
    if (document.body) { document.body.dataset.errors = errors.join(" | "); }
  }
  window.addEventListener("error", function (e) { note(e.message || "error"); });
  window.addEventListener("unhandledrejection", function (e) { note(e.reason || "rejection"); });

  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { return [lo]; }
    var raw = (hi - lo) / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; }).filter(function (s) { return s >= raw; })[0];
    var ticks = [], first = Math.ceil(lo / step - 1e-9) * step;
    for (var t = first; t <= hi + 1e-9; t += step) { ticks.push(Math.round(t * 1e6) / 1e6); }
    return ticks;
  }
  function fmt(v) { return Math.abs(v) >= 1000 ? v.toLocaleString() : String(+v.toPrecision(3)); }

  function Chart(svg) {
    var d = svg.dataset;
    this.svg = svg;
    this.x0 = +d.x0; this.x1 = +d.x1; this.left = +d.left; this.plotw = +d.plotw;
    this.top = +d.top; this.ploth = +d.ploth;
    this.area = svg.querySelector("svg.plot-area");
    this.axis = svg.querySelector("g.xaxis");
  }
  Chart.prototype.px = function (x) { return (x - this.x0) / (this.x1 - this.x0) * this.plotw; };
  Chart.prototype.dataX = function (clientX) {
    var box = this.svg.getBoundingClientRect(), vb = this.svg.viewBox.baseVal;
    var sx = (clientX - box.left) * vb.width / box.width - this.left;
    var frac = Math.min(1, Math.max(0, sx / this.plotw));
    return this.view[0] + frac * (this.view[1] - this.view[0]);
  };
  Chart.prototype.show = function (a, b) {
    this.view = [a, b];
    var pa = this.px(a), pb = this.px(b), self = this;
    this.area.setAttribute("viewBox", pa + " 0 " + Math.max(0.001, pb - pa) + " " + this.ploth);
    while (this.axis.firstChild) { this.axis.removeChild(this.axis.firstChild); }
    var bottom = this.top + this.ploth;
    niceTicks(a, b, 8).forEach(function (t) {
      var x = self.left + (t - a) / (b - a) * self.plotw;
      self.axis.appendChild(el("line", {x1: x, y1: bottom, x2: x, y2: bottom + 4, "class": "axis"}));
      self.axis.appendChild(el("text", {x: x, y: bottom + 16, "class": "tick", "text-anchor": "middle"}, fmt(t)));
    });
    Array.prototype.forEach.call(this.svg.querySelectorAll("[data-x]"), function (node) {
      var x = +node.dataset.x;
      node.setAttribute("x", self.left + (x - a) / (b - a) * self.plotw + (+node.dataset.dx || 0));
      node.style.display = (x >= a && x <= b) ? "" : "none";
    });
  };

  function init() {
    if (errors.length) { document.body.dataset.errors = errors.join(" | "); }
    var charts = Array.prototype.map.call(document.querySelectorAll("svg.time-chart"), function (s) { return new Chart(s); });
    var label = document.querySelector(".zoom-bar .range");
    function zoom(a, b) {
      charts.forEach(function (c) { c.show(a, b); });
      if (label) { label.textContent = "showing " + fmt(a) + "–" + fmt(b) + " s"; }
    }
    function reset() {
      charts.forEach(function (c) { c.show(c.x0, c.x1); });
      if (label) { label.textContent = "showing the whole run"; }
    }
    charts.forEach(function (chart) {
      chart.show(chart.x0, chart.x1);
      var start = null, sel = null;
      chart.svg.addEventListener("mousedown", function (e) {
        start = chart.dataX(e.clientX);
        sel = el("rect", {"class": "selection", y: chart.top, height: chart.ploth, x: 0, width: 0});
        chart.svg.appendChild(sel);
        e.preventDefault();
      });
      chart.svg.addEventListener("mousemove", function (e) {
        if (start === null) { return; }
        var now = chart.dataX(e.clientX), v = chart.view;
        var a = Math.min(start, now), b = Math.max(start, now);
        sel.setAttribute("x", chart.left + (a - v[0]) / (v[1] - v[0]) * chart.plotw);
        sel.setAttribute("width", (b - a) / (v[1] - v[0]) * chart.plotw);
      });
      window.addEventListener("mouseup", function (e) {
        if (start === null) { return; }
        var end = chart.dataX(e.clientX), a = Math.min(start, end), b = Math.max(start, end);
        start = null;
        if (sel) { sel.parentNode.removeChild(sel); sel = null; }
        if (b - a > (chart.view[1] - chart.view[0]) / 200) { zoom(a, b); }
      });
      chart.svg.addEventListener("dblclick", reset);
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-action=reset-zoom]"), function (b) {
      b.addEventListener("click", reset);
    });
    var wanted = /zoom=(-?[0-9.]+),(-?[0-9.]+)/.exec(window.location.hash);
    if (wanted && +wanted[2] > +wanted[1]) { zoom(+wanted[1], +wanted[2]); }
    document.body.dataset.charts = String(charts.length);
    document.body.dataset.ready = "1";
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
"""

ASSETS = {"report.css": REPORT_CSS.lstrip(), "report.js": REPORT_JS.lstrip()}


def write_assets(out: Path) -> list[Path]:
    """Write every shared asset into `out/assets/` (overwriting: one copy per report); the paths."""
    directory = Path(out) / "assets"
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in ASSETS.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
