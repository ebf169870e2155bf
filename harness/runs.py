"""Running a set of experiments on a set of shops into one run directory, and its summary."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.experiment import Experiment, ExperimentError, discover, expand, experiment_name, load_experiment
from harness.run import ProgressFn, run_one

EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"


@dataclass(frozen=True)
class Selected:
    name: str
    path: Path
    experiment: Experiment


def select(names: list[str], directory: Path = EXPERIMENTS_DIR) -> list[Selected]:
    """Experiments named on the command line (file paths or names in `directory`), or all of them.
    Raises ExperimentError for a missing or invalid file; nothing runs until all are valid."""
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if not path.suffix:
            path = directory / f"{name}.toml"
        if not path.is_file():
            known = ", ".join(p.stem for p in discover(directory))
            raise ExperimentError(path, "", f"no such experiment file (known: {known})")
        paths.append(path)
    if not names:
        paths = discover(directory)
    return [Selected(name, p, exp) for p in paths for name, exp in expand(experiment_name(p), load_experiment(p), p)]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def run_all(selected: list[Selected], systems: list[str], *, profile: str, seed: int | None, out: Path,
            progress: ProgressFn | None = None, run_id: str | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """Run every experiment on every system (in that order) under reports/runs/<run-id>/."""
    run_id = run_id or new_run_id()
    run_dir = out / "runs" / run_id
    summary: list[dict[str, Any]] = []
    for item in selected:
        for system in systems:
            results = run_one(item.name, item.experiment, system, profile=profile, seed=seed,
                              out_dir=run_dir / item.name / system, run_id=run_id, progress=progress)
            summary.append(summarise(results))
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return run_dir, summary


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    orders, latency = results.get("orders", {}), results.get("latency_ms", {})
    return {
        "experiment": results["experiment"], "system": results["system"], "passed": results["passed"],
        "complete": results["complete"],
        "attempted": orders.get("attempted"), "accepted": orders.get("accepted"), "lost": orders.get("lost"),
        "duplicated": orders.get("duplicated"),
        "acceptance_p99_ms": (latency.get("acceptance") or {}).get("p99"),
        "fulfilment_p99_ms": (latency.get("fulfilment") or {}).get("p99"),
        "availability": (results.get("availability") or {}).get("overall"),
        "failed_checks": [c["name"] for c in results.get("checks", []) if not c["passed"]],
    }
