"""The report's corners: the broker-cluster section (issue 17: members, and per cluster fault whom it
hit and who led before and after, the barista queue's node over time; nothing for a run without a cluster) and a latency chart whose
values are all negative."""
from __future__ import annotations

from pathlib import Path

from harness.report import sections
from harness.report.analysis import ShopRun

N = "cafe-ab12cd-n{}@localhost"
CLUSTER = {"nodes": 3, "partition_handling": "pause_minority", "net_ticktime_s": 5, "started_after_s": 22.1,
           "members": [{"node": N.format(k), "address": f"127.150.7.{k}", "amqp_port": 20000 + k,
                        "dist_port": 30000 + k} for k in (1, 2, 3)]}
FAULTS = [
    {"name": "isolate-leader", "details": {"mode": "isolate-leader", "leader_at_start": N.format(1),
                                           "cut": [[N.format(1), N.format(2)], [N.format(1), N.format(3)]],
                                           "leader_before_heal": N.format(3), "leader_after_heal": N.format(3),
                                           "members_down": 1, "healed_after_s": 4.09}},
    {"name": "kill-follower", "details": {"node": "follower", "members": [N.format(2)], "leader_at_start": N.format(1),
                                          "leader_before_heal": N.format(1), "members_down": 1,
                                          "healed_after_s": None}},
    {"name": "latency-x", "details": {"toxic": "latency"}},   # not a cluster fault: no row
]


def shop(results: dict) -> ShopRun:   # type: ignore[type-arg]
    return ShopRun("broker-partition", "async", Path("."), results, [])


def test_the_cluster_section_names_members_hits_and_leaders() -> None:
    html = sections.cluster([shop({"config": {"broker": {"cluster": CLUSTER}}, "faults": FAULTS}),
                             shop({"config": {"broker": None}})])
    assert "<h2>The broker cluster</h2>" in html and "3 nodes, pause_minority" in html
    assert html.count("127.150.7.") == 3
    assert "<td>20001</td><td>30001</td>" in html   # ports as they are, no thousands separators
    assert "<td>isolate-leader</td><td>isolate-leader</td><td>n1 x n2; n1 x n3</td><td>n1</td><td>n3</td><td>n3</td>" in html
    assert "<td>kill-follower</td><td>follower</td><td>n2</td><td>n1</td><td>n1</td><td>–</td><td>1</td><td>–</td>" in html
    assert "latency-x" not in html


def test_the_queue_node_over_time_spans_and_totals_per_node() -> None:
    from harness.checkers.backlog import node_spans
    t0 = 1000.0
    history = [{"type": "run", "t0": t0}] + [
        {"type": "backlog", "time": t0 + t, "total": 0, "orders_node": N.format(node), "orders_ready": ready,
         "orders_unacked": 2} for t, node, ready in ((1, 1, 0), (2, 1, 3), (3, 2, 9), (4, 2, 1), (5, 1, 0))]
    history.append({"type": "backlog", "time": t0 + 6, "total": None, "error": "down"})   # no reading: no span
    spans = node_spans(history, t0)
    assert [(s["node"], s["from_s"], s["to_s"], s["samples"], s["max_orders"]) for s in spans] == [
        (N.format(1), 1.0, 2.0, 2, 5), (N.format(2), 3.0, 4.0, 2, 11), (N.format(1), 5.0, 5.0, 1, 2)]
    faults = [{"name": "kill-leader", "start_s": 2.5, "end_s": 4.5}]
    html = sections.cluster([shop({"config": {"broker": {"cluster": CLUSTER}}, "faults": faults,
                                   "backlog": {"orders_nodes": spans}})])
    assert "<td>n2</td><td>3</td><td>4</td><td>11</td><td>kill-leader</td>" in html
    assert "<td>n1</td><td>1</td><td>2</td><td>5</td><td>–</td>" in html
    assert "<td>n1</td><td>1</td><td>5</td></tr>" in html and "<td>n2</td><td>1</td><td>11</td></tr>" in html
    assert "orders_nodes" not in sections.cluster([shop({"config": {"broker": {"cluster": CLUSTER}}})])


def test_no_cluster_no_section() -> None:
    assert sections.cluster([shop({"config": {"broker": {"node": "x", "shared": True}}})]) == ""


def test_a_latency_chart_of_only_negative_values_still_draws() -> None:
    """A waiter whose clock runs 2 s behind stamps every serving before the order was sent: all
    fulfilment latencies are negative (the clock-skew experiment, seen in CI), and the log axis must not fail."""
    from harness.report.svg import percentile_chart

    chart = percentile_chart({"async": ([-720.0, -1500.0, -1900.0], "#36c"), "sync": ([], "#c63")},
                             title="time until served")
    assert chart.startswith("<svg") and "no data" in chart
