"""The charts of an experiment page, built from the analysis frames of each shop.

Time charts of one experiment share the x axis (seconds since t0, up to the later run end) and,
row by row, the y axis, so sync and async compare at a glance. A long run is re-bucketed so that
no series has more than MAX_POINTS points (the page stays small).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from harness.report.analysis import ShopRun, timeline_frame
from harness.report.svg import Band, Hover, Line, percentile_chart, time_chart
from harness.shops import TRAITS  # the registry: data only, no adapter

MAX_POINTS = 400
SHOP_COLORS = {name: traits.colour for name, traits in TRAITS.items()}   # harness/shops/traits.py
RATE_SERIES = (("sent", "sent", "#888888", True), ("accepted", "accepted", "#1f77b4", False),
               ("served", "served", "#2ca02c", False), ("rejected", "refused", "#d62728", False),
               ("unknown", "unknown", "#ff7f0e", False))


@dataclass(frozen=True)
class Row:
    """One row of side-by-side charts: a title and one SVG per shop, in shop order."""

    title: str
    note: str
    charts: list[tuple[str, str]]  # (system, svg)


def bucket_for(shops: Sequence[ShopRun]) -> float:
    """1 s, or wider when the longest run would give more than MAX_POINTS buckets."""
    longest = max((s.end_s for s in shops), default=0.0)
    return float(max(1, math.ceil(longest / MAX_POINTS)))


def timeline_of(shop: ShopRun, bucket_s: float) -> pd.DataFrame:
    return shop.timeline() if bucket_s == 1.0 else timeline_frame(shop.history, bucket_s)


def x_range(shops: Sequence[ShopRun], timelines: Sequence[pd.DataFrame], bucket_s: float) -> tuple[float, float]:
    end = max([s.end_s for s in shops] + [float(t.t.max()) + bucket_s for t in timelines if len(t)] + [1.0])
    return 0.0, math.ceil(end)


def bands(shop: ShopRun) -> list[Band]:
    """A band per fault window, and one per heal aftermath (a heal that closed the shop's
    connections, until the shop had them back): what fails there is the heal's doing."""
    out = []
    for w in shop.windows():
        label = f"{w.kind} {w.target}" if w.kind else w.name
        out.append(Band(w.start_s, w.end_s, label))
        if w.aftermath_end > w.end:
            out.append(Band(w.end_s, w.aftermath_end - w.t0, f"after the heal of {label}"))
    return out


def _value(v: object) -> float | None:
    return None if v is None or pd.isna(v) else float(v)  # type: ignore[arg-type]


def _tip(value: float | None, unit: str = "") -> str:
    return "–" if value is None else f"{value:,.1f}{unit}" if unit else f"{value:,.0f}"


def _row(title: str, note: str, shops: Sequence[ShopRun], timelines: Sequence[pd.DataFrame],
         columns: Sequence[tuple[str, str, str, bool]], *, unit: str, bucket_s: float,
         xr: tuple[float, float]) -> Row:
    """One chart per shop of `columns` (column, label, color, dashed), sharing the y maximum."""
    y_max = max([float(t[c].max()) for t in timelines for c, *_ in columns if len(t) and t[c].notna().any()] + [1.0])
    charts = []
    for shop, frame in zip(shops, timelines, strict=True):
        mid = frame.t + bucket_s / 2
        lines = [Line(label, [(float(x), _value(v)) for x, v in zip(mid, frame[column], strict=True)], color, dashed)
                 for column, label, color, dashed in columns]
        suffix = f" {unit}" if unit not in ("", "orders/s", "orders") else ""
        hovers = [Hover(float(row.t), float(row.t) + bucket_s,
                        f"{row.t:g}–{row.t + bucket_s:g} s: " + ", ".join(
                            f"{label} {_tip(_value(getattr(row, column)), suffix)}" for column, label, *_ in columns))
                  for row in frame.itertuples(index=False)]
        charts.append((shop.system, time_chart(lines, title=f"{shop.system}: {title}", x_range=xr, y_max=y_max,
                                               y_unit=unit, bands=bands(shop), hovers=hovers)))
    return Row(title, note, charts)


def timeline_rows(shops: Sequence[ShopRun]) -> list[Row]:
    """Orders per second, acceptance and fulfilment latency, backlog, the barista pool: one row each."""
    bucket_s = bucket_for(shops)
    timelines = [timeline_of(s, bucket_s) for s in shops]
    xr = x_range(shops, timelines, bucket_s)
    per = "per second" if bucket_s == 1 else f"per {bucket_s:g} s bucket"
    return [
        _row(f"orders {per}", "Orders sent by the customers, accepted by the shop, served, refused or with an "
             "unknown outcome, counted by the time each happened.", shops, timelines, RATE_SERIES,
             unit="orders", bucket_s=bucket_s, xr=xr),
        _row("time to accept an order", "How long a customer waited for the shop to take the order, from the moment "
             "they meant to order (p50: half of the orders were faster; p99: all but 1 in 100), by when the order "
             "was meant.", shops, timelines,
             (("acceptance_p50", "p50", "#1f77b4", False), ("acceptance_p99", "p99", "#9467bd", False)),
             unit="ms", bucket_s=bucket_s, xr=xr),
        _row("time until the coffee is served", "From the moment the customer meant to order until the coffee was "
             "served, for accepted orders that were served.", shops, timelines,
             (("fulfilment_p50", "p50", "#2ca02c", False), ("fulfilment_p99", "p99", "#8c564b", False)),
             unit="ms", bucket_s=bucket_s, xr=xr),
        _row("orders waiting in the shop (backlog)", "The largest backlog sampled in each bucket: "
             + "; ".join(f"{name} counts {traits.backlog_counts}" for name, traits in TRAITS.items()) + ".",
             shops, timelines, (("backlog", "backlog", "#17becf", False),), unit="orders", bucket_s=bucket_s, xr=xr),
        *([_row("barista replicas", "How many barista replicas the shop had (scheduled changes or the autoscaler; "
                "see the scaling section).", shops, timelines, (("replicas", "replicas", "#e377c2", False),),
                unit="", bucket_s=bucket_s, xr=xr)]
          if any(t["replicas"].notna().any() for t in timelines) else []),
    ]


def lag_row(shops: Sequence[ShopRun]) -> Row:
    bucket_s = bucket_for(shops)
    timelines = [timeline_of(s, bucket_s) for s in shops]
    return _row("load generator lag (worst per bucket)", "How late the load generator sent orders compared with "
                "the schedule; large values would mean the shop was not offered the planned load.", shops,
                timelines, (("lag_max_ms", "lag max", "#7f7f7f", False),), unit="ms", bucket_s=bucket_s,
                xr=x_range(shops, timelines, bucket_s))


def distribution_charts(shops: Sequence[ShopRun]) -> list[str]:
    """Acceptance and fulfilment latency by percentile, both shops in each chart."""
    charts = []
    for column, title in (("acceptance_ms", "time to accept an order, by percentile"),
                          ("fulfilment_ms", "time until served, by percentile")):
        charts.append(percentile_chart(
            {s.system: (s.orders()[column].dropna().tolist(), SHOP_COLORS.get(s.system, "#444")) for s in shops},
            title=title))
    return charts
