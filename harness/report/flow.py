"""The event flow of a few sampled orders, as swimlanes per service, in plain words.

`sample_orders` picks, per shop, a typical order (served, median time to serve), the latest one
served and, when there is one, an order that went wrong (lost, duplicated, unknown or refused).
`swimlane` draws one order: a lane per service, a dot per event at its time since the customer
meant to order, arrows in the order things happened. Every event comes from the history.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from harness.checkers.orders import shop_key
from harness.history import FAIL, INFO, OK, Record
from harness.report.svg import esc, nice_ticks, num
from harness.shops import TRAITS  # the registry: data only, no adapter
from harness.shops.traits import Flow

# the lanes of a shop the registry does not know (a run from another version): one front for everything
UNKNOWN = Flow(("Customer", "Shop", "Barista"), front="Shop", served="Shop", taken_before_brewing=False)


def flow_of(system: str) -> Flow:
    """The swimlanes of `system`, as its traits declare them (harness/shops/traits.py)."""
    shop = TRAITS.get(system)
    return shop.flow if shop is not None else UNKNOWN


LABEL_ROWS = (-9, 17, -21, 29)   # label offsets from a lane's centre line, tried in turn
LABEL_CHAR_PX = 6.0               # estimated width of a label character


@dataclass(frozen=True)
class Sample:
    """An order picked for the event flow, and why."""

    ref: str
    why: str


@dataclass(frozen=True)
class Event:
    lane: str
    time: float      # epoch seconds
    text: str


def sample_orders(orders: pd.DataFrame) -> list[Sample]:
    """Up to three orders: typical, latest served, and one that went wrong (if any)."""
    samples: list[Sample] = []
    served = orders[(orders.outcome == OK) & orders.fulfilment_ms.notna()]
    if len(served):
        median = served.fulfilment_ms.median()
        typical = served.iloc[(served.fulfilment_ms - median).abs().argsort().iloc[0]]
        samples.append(Sample(str(typical.ref), "a typical order (median time until served)"))
        latest = served.loc[served.served_s.idxmax()]
        if str(latest.ref) != samples[0].ref:
            samples.append(Sample(str(latest.ref), "the last coffee served"))
    problems = (
        (orders[(orders.outcome == OK) & (orders.servings == 0)], "a lost order (accepted, never served)"),
        (orders[(orders.brews > 1) | (orders.servings > 1)], "a duplicated order (made or served twice)"),
        (orders[orders.outcome == INFO], "an order whose outcome the customer never learnt"),
        (orders[orders.outcome == "none"], "something made that nobody ordered"),
        (orders[orders.outcome == FAIL], "a refused order"),
    )
    for frame, why in problems:
        if len(frame):
            samples.append(Sample(str(frame.iloc[0].ref), why))
            break
    return samples


def _answer(record: Record | None) -> str:
    if record is None:
        return "no answer recorded"
    status = record.get("status")
    words = {OK: "accepted", FAIL: "refused", INFO: "unclear answer"}[record["type"]]
    detail = f" ({status})" if status is not None else f" ({record.get('error_kind') or record.get('error') or 'no reply'})"
    return f"{words}{detail}"


def events(history: Sequence[Record], ref: str, system: str) -> list[Event]:
    """What happened to order `ref`, lane by lane, in time order."""
    invoke = next((r for r in history if r.get("type") == "invoke" and str(r.get("ref")) == ref), None)
    done = next((r for r in history if r.get("type") in (OK, FAIL, INFO) and str(r.get("ref")) == ref), None)
    found: list[Event] = []
    flow = flow_of(system)
    front = flow.front
    if invoke is not None:
        found.append(Event("Customer", float(invoke["intended"]), "meant to order"))
        if invoke.get("sent") is not None:
            found.append(Event("Customer", float(invoke["sent"]), "sent the order"))
    if done is not None:
        if flow.taken_before_brewing and done["type"] == OK:
            found.append(Event(front, float(done["time"]), "took the order"))
        found.append(Event("Customer", float(done["time"]), f"heard back: {_answer(done)}"))
    brews = sorted((r for r in history if r.get("type") == "brewed" and shop_key(r) == ref), key=lambda r: r["time"])
    for i, brew in enumerate(brews):
        again = " again" if i else ""
        if brew.get("started") is not None:
            found.append(Event("Barista", float(brew["started"]), f"started brewing{again}"))
        found.append(Event("Barista", float(brew["time"]), f"coffee ready{again}"))
    servings = sorted((r for r in history if r.get("type") == "served" and shop_key(r) == ref), key=lambda r: r["time"])
    for i, serving in enumerate(servings):
        lane = flow.served
        found.append(Event(lane, float(serving["time"]), "served the coffee" + (" again" if i else "")))
    return sorted(found, key=lambda e: e.time)


def _duration(seconds: float) -> str:
    return f"+{seconds * 1000:,.0f} ms" if abs(seconds) < 10 else f"+{seconds:,.1f} s"


def swimlane(history: Sequence[Record], sample: Sample, system: str, *, width: int = 900) -> str:
    """One order's flow as an SVG: a lane per service, time since the customer meant to order."""
    lanes = flow_of(system).lanes
    found = events(history, sample.ref, system)
    lane_h, left, right, top = 64, 120, 30, 34
    height = top + lane_h * len(lanes) + 34
    origin = found[0].time if found else 0.0
    span = max((e.time - origin for e in found), default=0.0) or 0.001
    plot_w = width - left - right

    def px(t: float) -> float:
        return left + (t - origin) / span * plot_w

    def lane_y(lane: str) -> float:
        return top + lane_h * lanes.index(lane if lane in lanes else lanes[0]) + lane_h / 2

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart flow" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img">',
           f"<title>order {esc(sample.ref)}: {esc(sample.why)}</title>",
           f'<text x="8" y="18" class="chart-title">Order {esc(sample.ref)} — {esc(sample.why)}</text>']
    for i, lane in enumerate(lanes):
        y = top + lane_h * i
        out.append(f'<rect x="0" y="{y}" width="{width}" height="{lane_h}" class="lane lane-{i % 2}"/>'
                   f'<text x="8" y="{num(y + lane_h / 2 + 4)}" class="lane-label">{esc(lane)}</text>')
    axis_y = top + lane_h * len(lanes)
    for tick in nice_ticks(0, span, 6):
        x = px(origin + tick)
        out.append(f'<line x1="{num(x)}" y1="{axis_y}" x2="{num(x)}" y2="{axis_y + 4}" class="axis"/>'
                   f'<text x="{num(x)}" y="{axis_y + 16}" class="tick" text-anchor="middle">{_duration(tick)}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" class="axis-label" text-anchor="middle">'
               f"time since the customer meant to order</text>")
    for before, after in zip(found, found[1:], strict=False):
        out.append(f'<line x1="{num(px(before.time))}" y1="{num(lane_y(before.lane))}" x2="{num(px(after.time))}" '
                   f'y2="{num(lane_y(after.lane))}" class="flow-step"/>')
    placed: dict[tuple[str, int], float] = {}  # (lane, label row) -> right edge of the last label
    for event in found:
        x, centre = px(event.time), lane_y(event.lane)
        text = f"{event.text} {_duration(event.time - origin)}"
        anchor = "end" if x > left + plot_w * 0.75 else "start"
        start, end = (x - 6 - LABEL_CHAR_PX * len(text), x - 6) if anchor == "end" else (x + 6, x + 6 + LABEL_CHAR_PX * len(text))
        row = next((r for r in range(len(LABEL_ROWS)) if placed.get((event.lane, r), -1e9) < start), len(LABEL_ROWS) - 1)
        placed[(event.lane, row)] = end
        out.append(f'<circle cx="{num(x)}" cy="{num(centre)}" r="5" class="flow-dot"><title>{esc(event.lane)}: '
                   f"{esc(event.text)} at {_duration(event.time - origin)}</title></circle>"
                   f'<text x="{num(start if anchor == "start" else end)}" y="{num(centre + LABEL_ROWS[row])}" '
                   f'class="flow-label" text-anchor="{anchor}">{esc(text)}</text>')
    if not found:
        out.append(f'<text x="{left}" y="{top + 20}" class="flow-label">nothing recorded for this order</text>')
    out.append("</svg>")
    return "".join(out)
