"""A tiny run directory built by hand, for the report tests (no processes, no clock).

Experiment "outage", t0 = 1000, a fault window "kill-barista-1" from 2 s to 4 s, six orders one
second apart. sync: orders 2 and 3 (in the window) get a 503 (unknown), the rest are served.
async: all accepted; order 1 is served twice (duplicated), order 5 is never served (lost).
results.json is produced by the real checkers and `results.assemble`, as a run would.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.checkers import CheckOptions, default_checkers, run_checkers
from harness.experiment import results as results_mod
from harness.experiment.model import Bound
from harness.history import Record

T0 = 1000.0
RUN_ID = "20240101-000000"
EXPERIMENT = "outage"
CLAIM = "The async shop keeps taking orders while the barista is out."


def history(system: str) -> list[Record]:
    records: list[Record] = [{"type": "run", "experiment": EXPERIMENT, "system": system, "seed": 7,
                              "profile": "smoke", "t0": T0, "run_id": RUN_ID}]
    accepted_status = 201 if system == "sync" else 202
    for i in range(6):
        intended = T0 + 0.5 + i
        ref = str(i)
        records.append({"type": "invoke", "ref": ref, "intended": intended, "sent": intended + 0.001,
                        "order": {"product": "Latte", "size": "small"}})
        if system == "sync" and i in (2, 3):
            records.append({"type": "info", "ref": ref, "time": intended + 0.05, "status": 503, "order_id": None,
                            "error": "no barista", "error_kind": None})
            continue
        records.append({"type": "ok", "ref": ref, "time": intended + 0.02 * (i + 1), "status": accepted_status,
                        "order_id": f"id-{system}-{i}", "error": None, "error_kind": None})
    records.append({"type": "fault", "phase": "start", "name": "kill-barista-1", "kind": "kill",
                    "target": "barista", "time": T0 + 2.0})
    records.append({"type": "fault", "phase": "end", "name": "kill-barista-1", "kind": "kill",
                    "target": "barista", "time": T0 + 4.0})
    for t, total in ((0.2, 0), (1.2, 1), (2.2, 3 if system == "async" else 0), (3.2, 5 if system == "async" else 0),
                     (4.2, 2), (5.2, 0)):
        records.append({"type": "backlog", "time": T0 + t, "total": total})
    for i in range(6):
        if system == "sync" and i in (2, 3):
            continue
        intended = T0 + 0.5 + i
        delay = 2.5 if system == "async" and i in (2, 3) else 0.0
        records.append({"type": "brewed", "ref": str(i), "order_id": f"id-{system}-{i}",
                        "time": intended + delay + 0.3, "started": intended + delay + 0.1, "barista": "barista-1"})
        if system == "async" and i == 5:
            continue  # lost: brewed, never served
        records.append({"type": "served", "ref": str(i), "order_id": f"id-{system}-{i}", "time": intended + delay + 0.4})
        if system == "async" and i == 1:
            records.append({"type": "served", "ref": "1", "order_id": f"id-{system}-1", "time": intended + 0.9})
    records.append({"type": "end", "time": T0 + 7.0, "complete": True})
    return records


EXPECT = {
    "sync": {"orders.lost": Bound(max=0), "availability.in_faults": Bound(max=0.2)},
    "async": {"orders.lost": Bound(max=0), "availability.in_faults": Bound(min=0.95)},
}


def results(system: str, records: list[Record]) -> dict[str, Any]:
    # two orders before the fault: a steady state for this tiny history (the default asks for five)
    checked = run_checkers(default_checkers(), records, CheckOptions(slo_s=10.0, steady_min_orders=2))
    experiment_config = {"title": "The barista is out", "claim": CLAIM, "description": "A hand-built run.",
                         "run": {"duration_s": 6.0, "seed": 7}, "load": {"rate": 1.0},
                         "shop": {"baristas": 1, "brewers": 2},
                         "faults": [{"kind": "kill", "target": "barista", "start_s": 2.0, "duration_s": 2.0},
                                    {"kind": "latency", "target": "barista->waiter", "start_s": 1.0,
                                     "duration_s": 1.0, "params": {"latency": 100}}]}
    header = {
        "experiment": EXPERIMENT, "title": "The barista is out", "claim": CLAIM, "system": system, "seed": 7,
        "profile": "smoke", "run_id": RUN_ID, "complete": True, "started_at": T0 - 2, "wall_s": 9.5,
        "config": {"shop": {"kind": system, "settings": {"baristas": 1, "brewers": 2,
                                                          "capacity": 8 if system == "sync" else 9}},
                   "experiment": experiment_config},
        "schedule": {"arrivals": 6, "duration_s": 6.0, "digest": "abc123"},
        "faults": [{"name": "kill-barista-1", "kind": "kill", "target": "barista", "start_s": 2.0, "end_s": 4.0}],
        "not_applicable": ([{"name": "latency-barista->waiter-2", "kind": "latency", "target": "barista->waiter",
                             "reason": "the sync shop has no waiter"}] if system == "sync" else []),
        "healed": {"healed": True},
        "fault_errors": [],
        "host": {"window_s": 9.5, "cores": 2, "steal_share": 0.2612, "busy_share": 0.5, "idle_share": 0.2388},
    }
    provenance = {"chaoscafe": "0.1.0", "commit": "deadbeef", "python": "3.11.2", "host": "testhost"}
    return results_mod.assemble(header, checked, EXPECT[system], provenance)


def build_run(root: Path) -> Path:
    """Write the run directory under root/runs/<RUN_ID>/ and return it."""
    run_dir = root / "runs" / RUN_ID
    summary = []
    for system in ("sync", "async"):
        shop_dir = run_dir / EXPERIMENT / system
        shop_dir.mkdir(parents=True)
        records = history(system)
        (shop_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        document = results(system, records)
        results_mod.write(document, shop_dir / "results.json")
        summary.append({"experiment": EXPERIMENT, "system": system, "passed": document["passed"]})
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir
