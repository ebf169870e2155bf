"""The experiment page's optional sections (late-comers, the barista pool, queueing theory) and the
replicas timeline, on a hand-built run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_report_support import EXPERIMENT, T0, build_run

from harness.report import write_report
from harness.report.analysis import timeline_frame


def patch(run_dir: Path, system: str, **sections: Any) -> None:
    path = run_dir / EXPERIMENT / system / "results.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **sections}))


def page(tmp_path: Path, run_dir: Path) -> str:
    write_report(run_dir, tmp_path / "out")
    return (tmp_path / "out" / run_dir.name / f"{EXPERIMENT}.html").read_text()


def test_sections_appear_only_with_their_data(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "reports")
    plain = page(tmp_path, run_dir)
    assert "Late-comers" not in plain and "backlog 12" not in plain     # no late-comers, no scale change
    patch(run_dir, "async", latecomer={"history_orders": 300, "correct": True, "sources": {
        "replay": {"caught_up": True, "catch_up_s": 2.5, "awards_per_s": 400.0, "killed_at_awarded": 100,
                   "pages_read": None, "points": {"correct": True}},
        "feed": {"caught_up": True, "catch_up_s": 1.2, "awards_per_s": 900.0, "killed_at_awarded": 120,
                 "pages_read": 5, "points": {"correct": False, "customers_wrong": 2, "actual_total": 299,
                                             "expected_total": 300}}}},
          scaling={"events": [{"t": 3.0, "from": 1, "to": 3, "trigger": "autoscaler", "reason": "backlog 12",
                               "took_s": 0.8}],
                   "per_replica": {"barista-1": {"brewed": 10, "share": 0.5, "wait_ms": {"p50": 3.0, "p99": 9.0}}}},
          theory={"little": {"ratio": 0.97}, "mmc": {"applies": True, "model": {"servers": 2},
                                                     "ratios": {"throughput": 1.0, "mean_wait": 1.6, "mean_backlog": 1.2},
                                                     "notes": ["waits exceed the prediction: handover"]}})
    patch(run_dir, "sync", latecomer={"history_orders": 300, "correct": True, "sources": {
        "replay": {"source": "replay", "not_applicable": "the sync shop keeps no events"}}})
    html = page(tmp_path, run_dir)
    assert "<h2>Late-comers</h2>" in html and "WRONG for 2 customers (299 of 300 points)" in html
    assert "not applicable: the sync shop keeps no events" in html
    assert "<h2>The barista pool</h2>" in html and "backlog 12" in html
    assert "Measured against queueing theory" in html and "waits exceed the prediction: handover" in html


def test_replicas_column_follows_replicas_and_scale_records() -> None:
    history = [{"type": "run", "t0": T0}, {"type": "replicas", "service": "barista", "target": "barista",
                                           "count": 1, "time": T0 + 0.1},
               {"type": "scale", "time": T0 + 2.5, "to": 3, "from": 1},
               {"type": "scale", "time": T0 + 3.5, "to": 9, "from": 3, "error": "no"},
               {"type": "end", "time": T0 + 5, "complete": True}]
    frame = timeline_frame(history, 1.0)
    assert list(frame.replicas) == [1.0, 1.0, 3.0, 3.0, 3.0]
