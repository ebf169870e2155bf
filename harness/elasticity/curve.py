"""The scaling curve across the runs of a matrix experiment (e.g. scale-out@baristas=1..8): for each
shop and replica count, throughput, scaling efficiency and the measured / predicted ratios.

    python -m harness.elasticity.curve reports/runs/<run-id> [EXPERIMENT]     # a Markdown table

`curve` is pure: give it the results.json documents, get rows.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.elasticity.theory import scaling_efficiency


def curve(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (system, replicas), sorted, from results with an M/M/c "theory" section:
    {experiment, system, replicas, arrival_rate, throughput_per_s, predicted_throughput_per_s,
    efficiency, utilisation, mean_wait_ms, predicted_wait_ms, mean_backlog, predicted_backlog,
    ratios {throughput, mean_wait, mean_backlog}, little_ratio, agrees, lost}."""
    rows = []
    for r in results:
        mmc = (r.get("theory") or {}).get("mmc") or {}
        if not mmc.get("applies"):
            continue
        model, measured = mmc["model"], mmc["measured"]
        wait = measured.get("mean_wait_s")
        rows.append({
            "experiment": r["experiment"], "system": r["system"], "replicas": model["servers"],
            "arrival_rate": model["arrival_rate"], "throughput_per_s": measured["throughput_per_s"],
            "predicted_throughput_per_s": model["throughput_per_s"], "utilisation": model["utilisation"],
            "mean_wait_ms": None if wait is None else round(wait * 1000, 2),
            "predicted_wait_ms": None if model["mean_wait_s"] is None else round(model["mean_wait_s"] * 1000, 2),
            "mean_backlog": measured.get("mean_in_system"), "predicted_backlog": model["mean_in_system"],
            "ratios": mmc["ratios"], "agrees": mmc["agrees"],
            "little_ratio": ((r.get("theory") or {}).get("little") or {}).get("ratio"),
            "lost": (r.get("orders") or {}).get("lost"),
        })
    rows.sort(key=lambda row: (row["system"], row["replicas"]))
    for system in {row["system"] for row in rows}:
        mine = [row for row in rows if row["system"] == system]
        eff = scaling_efficiency({row["replicas"]: row["throughput_per_s"] for row in mine})
        for row in mine:
            row["efficiency"] = eff[row["replicas"]]
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| shop | c | λ/s | served/s | eff. | wait ms (M/M/c) | backlog (M/M/c) | "
            "ratio thr / wait / backlog | Little |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        ratios = r["ratios"]
        lines.append(f"| {r['system']} | {r['replicas']} | {r['arrival_rate']:g} | {r['throughput_per_s']:.2f} | "
                     f"{r['efficiency']} | {r['mean_wait_ms']} ({r['predicted_wait_ms']}) | "
                     f"{r['mean_backlog']} ({round(r['predicted_backlog'], 2)}) | "
                     f"{ratios['throughput']} / {ratios['mean_wait']} / {ratios['mean_backlog']} | {r['little_ratio']} |")
    return "\n".join(lines)


def load_results(run_dir: Path, experiment: str = "scale-out") -> list[dict[str, Any]]:
    """Every results.json of `experiment`'s variants under a run directory."""
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob(f"{experiment}@*/*/results.json"))]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m harness.elasticity.curve RUN_DIR [EXPERIMENT]", file=sys.stderr)
        return 2
    if not Path(argv[0]).is_dir():
        print(f"{argv[0]}: no such directory", file=sys.stderr)
        return 2
    rows = curve(load_results(Path(argv[0]), argv[1] if len(argv) > 1 else "scale-out"))
    if not rows:
        print(f"{argv[0]}: no run with an M/M/c theory section", file=sys.stderr)
        return 1
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
