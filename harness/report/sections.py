"""Experiment-page sections that only some experiments have: late-comers, the barista pool,
queueing theory and the broker cluster. Each returns "" when no shop of the experiment has the section, so html.py can
place them unconditionally. Pure rendering of results.json; nothing is computed here.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from harness.report.analysis import ShopRun


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def latecomers(shops: Sequence[ShopRun]) -> str:
    """Per shop and source: caught up, how fast, where it was killed, and whether the points were exact."""
    rows = []
    for shop in shops:
        late = shop.results.get("latecomer")
        if not late:
            continue
        if late.get("error"):
            rows.append([escape(shop.system), "–", f"error: {escape(late['error'])}", *["–"] * 6])
        for source, d in late.get("sources", {}).items():
            if "not_applicable" in d:
                rows.append([escape(shop.system), escape(source), "not applicable: " + escape(d["not_applicable"]),
                             *["–"] * 6])
                continue
            points = d.get("points") or {}
            exact = "exact" if points.get("correct") else \
                f"WRONG for {points.get('customers_wrong')} customers ({points.get('actual_total')} of " \
                f"{points.get('expected_total')} points)"
            rows.append([escape(shop.system), escape(source), "caught up" if d.get("caught_up") else "NOT caught up",
                         _num(late.get("history_orders")), _num(d.get("catch_up_s")), _num(d.get("awards_per_s")),
                         _num(d.get("killed_at_awarded")), _num(d.get("pages_read")), escape(exact)])
    if not rows:
        return ""
    return ("<h2>Late-comers</h2><p class=\"note\">A loyalty service started after the drain, once per source; "
            "it was killed once it was seen to have awarded a third of the orders (\"killed at\": a kill at the "
            "whole history came after the catch-up, not in it) and started again, then orders "
            "placed live had to earn points too. Catch-up time includes starting the process.</p>"
            + _table(["shop", "source", "", "orders in history", "catch-up s", "awards/s", "killed at",
                      "feed pages read", "points per customer"], rows))


def pool(shops: Sequence[ShopRun]) -> str:
    """Scale changes and the work per barista replica, when the experiment scaled or measured it."""
    parts = []
    for shop in shops:
        scaling = shop.results.get("scaling") or {}
        per = scaling.get("per_replica") or {}
        events = scaling.get("events") or []
        if not per and not events:
            continue
        parts.append(f"<h3>{escape(shop.system)} shop</h3>")
        if events:
            parts.append(_table(["at s", "from", "to", "trigger", "reason", "took s"],
                                [[_num(e.get("t")), _num(e.get("from")), _num(e.get("to")), _num(e.get("trigger")),
                                  _num(e.get("reason")), _num(e.get("took_s"))] for e in events]))
        if per:
            parts.append(_table(["replica", "brewed", "share", "wait p50 ms", "wait p99 ms"],
                                [[escape(name), _num(d.get("brewed")), _num(d.get("share")),
                                  _num((d.get("wait_ms") or {}).get("p50")), _num((d.get("wait_ms") or {}).get("p99"))]
                                 for name, d in per.items()]))
    if not parts:
        return ""
    return "<h2>The barista pool</h2>" + "".join(parts)


def theory(shops: Sequence[ShopRun]) -> str:
    """Measured against M/M/c and Little's law, with the notes that explain a gap."""
    rows, notes = [], []
    for shop in shops:
        t = shop.results.get("theory") or {}
        mmc, little = t.get("mmc") or {}, t.get("little") or {}
        if mmc.get("applies"):
            ratios = mmc.get("ratios") or {}
            rows.append([escape(shop.system), _num((mmc.get("model") or {}).get("servers")),
                         _num(ratios.get("throughput")), _num(ratios.get("mean_wait")), _num(ratios.get("mean_backlog")),
                         _num(little.get("ratio"))])
            notes += [f"{shop.system}: {n}" for n in mmc.get("notes") or []]
        elif little:
            rows.append([escape(shop.system), "–", "–", "–", "–", _num(little.get("ratio"))])
    if not rows:
        return ""
    return ("<h2>Measured against queueing theory</h2><p class=\"note\">Measured / predicted (M/M/c, Erlang C) and "
            "Little's law (mean backlog / arrival rate x mean time in the shop); 1 means theory and measurement "
            "agree.</p>" + _table(["shop", "servers", "throughput", "mean wait", "mean backlog", "Little"], rows)
            + ("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>" if notes else ""))


def _short(node: Any) -> str:
    """A cluster member's name without the run's token: "cafe-1a2b3c-n2@localhost" -> "n2"."""
    return "–" if not node else escape(str(node).split("@")[0].rsplit("-", 1)[-1])


def _queue_nodes(shop: ShopRun) -> str:
    """Where barista.orders was over time (backlog.orders_nodes: spans of samples on one node, with
    the fault windows they overlap), and per node the time it held the queue and the most orders
    ready or unacked in it meanwhile."""
    spans = (shop.results.get("backlog") or {}).get("orders_nodes") or []
    if not spans:
        return ""
    windows = shop.results.get("faults") or []
    rows = []
    for span in spans:
        during = [str(w.get("name")) for w in windows
                  if (w.get("start_s") or 0) <= span["to_s"] and (w.get("end_s") or 0) >= span["from_s"]]
        rows.append([_short(span.get("node")), _num(span.get("from_s")), _num(span.get("to_s")),
                     _num(span.get("max_orders")), escape(", ".join(during)) or "–"])
    per_node: dict[str, list[float]] = {}
    for span in spans:
        held = per_node.setdefault(str(span.get("node")), [0.0, 0.0])
        held[0] += float(span["to_s"]) - float(span["from_s"])
        held[1] = max(held[1], float(span.get("max_orders") or 0))
    totals = [[_short(node), _num(round(s, 1)), _num(int(most))] for node, (s, most) in per_node.items()]
    return ("<h4>barista.orders over time: the node leading (quorum) or holding (classic) it</h4>"
            + _table(["node", "from s", "to s", "most orders in the queue", "fault windows then"], rows)
            + _table(["node", "seconds holding the queue", "most orders in it"], totals))


def cluster(shops: Sequence[ShopRun]) -> str:
    """The RabbitMQ cluster under a shop: its members, and per cluster fault which members it hit,
    who led barista.orders at its start, just before its heal and after, and how long healing took;
    then where the queue was over time (`_queue_nodes`)."""
    parts = []
    for shop in shops:
        info = ((shop.results.get("config") or {}).get("broker") or {}).get("cluster")
        if not info:
            continue
        members = _table(["member", "node", "address", "AMQP port", "distribution port"],
                         [[_short(m.get("node")), escape(str(m.get("node"))), escape(str(m.get("address"))),
                           escape(str(m.get("amqp_port"))), escape(str(m.get("dist_port")))]   # ports: no separators
                          for m in info.get("members") or []])
        rows = []
        for fault in shop.results.get("faults") or []:
            d = fault.get("details") or {}
            if "leader_at_start" not in d:
                continue
            hit = ", ".join(_short(m) for m in d.get("members") or []) or \
                "; ".join(f"{_short(a)} x {_short(b)}" for a, b in d.get("cut") or [])
            rows.append([escape(str(fault.get("name"))), escape(str(d.get("mode") or d.get("node") or "")), hit,
                         _short(d.get("leader_at_start")), _short(d.get("leader_before_heal")),
                         _short(d.get("leader_after_heal")), _num(d.get("members_down")),
                         _num(d.get("healed_after_s"))])
        faults = _table(["fault", "which", "hit (members, or cut links)", "leader at start", "leader before heal",
                         "leader after", "members down", "healed after s"], rows) if rows else ""
        parts.append(f"<h3>{escape(shop.system)} shop: {_num(info.get('nodes'))} nodes, "
                     f"{escape(str(info.get('partition_handling')))}, net_ticktime {_num(info.get('net_ticktime_s'))} s, "
                     f"booted in {_num(info.get('started_after_s'))} s</h3>" + members + faults
                     + _queue_nodes(shop))
    if not parts:
        return ""
    return ("<h2>The broker cluster</h2><p class=\"note\">Leaders are those of barista.orders, read from the "
            "members' Raft state on the majority's side; a member is down when the majority no longer lists "
            "it as running. The queue's node over time is the management API's, sampled with the backlog "
            "(it lags an election by seconds). Fault windows are shaded in the charts above.</p>" + "".join(parts))
