"""Running a set of experiments on a set of shops into one run directory, and its summary."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.errors import ExperimentError
from harness.experiment import Experiment, discover, expand, experiment_name, load_experiment, repeats
from harness.experiment import results as results_mod
from harness.experiment.pool import HEAVY_RATE, ShopRun, run_in_pool
from harness.experiment.run import ProgressFn, effective, run_one, schedule_for
from harness.experiment.verdicts import status_of
from harness.infra.stack import SharedBroker
from harness.shops import SHOPS

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"


@dataclass(frozen=True)
class Selected:
    name: str
    path: Path
    experiment: Experiment


def select(names: list[str], directory: Path = EXPERIMENTS_DIR) -> list[Selected]:
    """Experiments named on the command line (file paths, names in `directory`, or one variant of a
    matrix as `NAME@field=value`), or all of them. Raises ExperimentError for a missing or invalid
    file or an unknown variant; nothing runs until all are valid."""
    if not names:
        return [Selected(n, p, e) for p in discover(directory) for n, e in expand(experiment_name(p), load_experiment(p), p)]
    selected: list[Selected] = []
    for name in names:
        base, _, variant = name.partition("@") if not name.endswith(".toml") else (name, "", "")
        path = Path(base)
        if path.suffix != ".toml":
            path = directory / f"{base}.toml"
        if not path.is_file():
            known = ", ".join(p.stem for p in discover(directory))
            raise ExperimentError(path, "", f"no such experiment file (known: {known})")
        runs = [Selected(n, path, e) for n, e in expand(experiment_name(path), load_experiment(path), path)]
        if variant:
            runs = [r for r in runs if r.name == f"{experiment_name(path)}@{variant}"]
            if not runs:
                variants = ", ".join(n for n, _ in expand(experiment_name(path), load_experiment(path), path))
                raise ExperimentError(path, "matrix", f"no variant {name!r} (variants: {variants})")
        selected.extend(runs)
    return selected


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class RunListener(Protocol):
    """What `run_all` tells as it goes (the CLI prints plain lines from it when not on a terminal)."""

    def shop_started(self, experiment: str, system: str, repetition: int, planned_s: float) -> None: ...

    def shop_finished(self, row: dict[str, Any], repetition: int) -> None: ...


def planned_seconds(selected: list[Selected], systems: list[str], *, profile: str, repeat: int = 1) -> float:
    """The arrival windows of every shop run of the set added up (s): the weight for time-left estimates."""
    return sum(effective(item.experiment, profile, None).run.duration_s for item in selected) * len(systems) * repeat


def run_all(selected: list[Selected], systems: list[str], *, profile: str, seed: int | None, out: Path,
            progress: ProgressFn | None = None, run_id: str | None = None,
            repeat: int = 1, listener: RunListener | None = None, jobs: int = 1) -> tuple[Path, list[dict[str, Any]]]:
    """Run every experiment on every system under OUT/runs/<run-id>/, `repeat` times each with
    seeds seed, seed+1, ... (see harness.experiment.repeats); repetitions alternate between the shops so
    that a drift of the machine touches both alike.

    A shop run that raises is recorded as an error (harness.experiment.run.run_one) and the set goes on;
    summary.json is rewritten after every shop run, so an interrupted set leaves what finished.
    The async shop runs share one RabbitMQ node (RUN_DIR/shared-broker, started at the first of
    them, stopped at the end), each in a vhost of its own; a run whose faults stop the broker
    starts a private node instead.

    `jobs` > 1 runs up to that many shop runs at once, in worker processes (harness.experiment.pool:
    the runs that boot their own broker run alone, each worker has its own shared node); the
    summary keeps the order of the serial set.
    """
    run_id = run_id or new_run_id()
    run_dir = Path(out).resolve() / "runs" / run_id   # absolute: the shops' processes run elsewhere
    runs = shop_runs(selected, systems, profile=profile, seed=seed, run_dir=run_dir, repeat=repeat)
    done: dict[int, dict[str, Any]] = {}
    folded: dict[tuple[str, str], dict[str, Any]] = {}   # repeated experiments, folded once
    summary: list[dict[str, Any]] = []

    def started(run: ShopRun) -> None:
        if listener is not None:
            listener.shop_started(run.name, run.system, run.repetition,
                                  effective(run.experiment, profile, None).run.duration_s)

    def finished(run: ShopRun, results: dict[str, Any]) -> None:
        done[run.index] = results
        if listener is not None:
            listener.shop_finished(summarise(results), run.repetition)
        summary[:] = _summary(runs, done, run_dir, folded)

    if jobs <= 1:
        with SharedBroker(run_dir / "shared-broker") as broker:
            for run in runs:
                started(run)
                finished(run, run_one(run.name, run.experiment, run.system, profile=profile, seed=run.seed,
                                      out_dir=run.out_dir, run_id=run_id, progress=progress, broker=broker))
    else:
        run_in_pool(runs, jobs=jobs, run_dir=run_dir, run_id=run_id, profile=profile, progress=progress,
                    on_start=started, on_done=finished)
    return run_dir, summary


def shop_runs(selected: list[Selected], systems: list[str], *, profile: str, seed: int | None, run_dir: Path,
              repeat: int = 1) -> list[ShopRun]:
    """Every shop run of the set, in the serial order: per experiment, per repetition, per shop."""
    runs: list[ShopRun] = []
    for item in selected:
        exp = effective(item.experiment, profile, None)
        base = seed if seed is not None else exp.run.seed
        private = exp.needs_private_broker()
        for k, seed_k in enumerate(repeats.seeds(base, repeat), start=1):
            heavy = schedule_for(exp, seed_k).busiest_second() >= HEAVY_RATE
            for system in systems:
                runs.append(ShopRun(len(runs), item.name, item.experiment, system, k, seed_k,
                                    repeats.out_dir(run_dir / item.name / system, k),
                                    exclusive=private and SHOPS[system].traits.needs_broker, heavy=heavy))
    return runs


def _summary(runs: list[ShopRun], done: dict[int, dict[str, Any]], run_dir: Path,
             folded: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The summary rows of every shop of an experiment whose runs (all its repetitions) have
    finished, in the set's order (repetitions folded once, see harness.experiment.repeats, and kept
    in `folded`); written to run_dir/summary.json, so that an interrupted set reports every shop
    run that finished."""
    summary: list[dict[str, Any]] = []
    names = list(dict.fromkeys(r.name for r in runs))
    for name in names:
        mine = [r for r in runs if r.name == name]
        for system in dict.fromkeys(r.system for r in mine):
            if not all(r.index in done for r in mine if r.system == system):
                continue
            reps = [done[r.index] for r in mine if r.system == system]
            results = reps[0]
            if len(reps) > 1:
                if (name, system) not in folded:
                    folded[name, system] = repeats.fold(results, reps)
                    results_mod.write(folded[name, system], run_dir / name / system / "results.json")
                results = folded[name, system]
            summary.append(summarise(results))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    orders, latency = results.get("orders", {}), results.get("latency_ms", {})
    return {
        "experiment": results["experiment"], "system": results["system"], "passed": results["passed"],
        "complete": results["complete"], "status": status_of(results),
        "error": results.get("error"), "wall_s": results.get("wall_s"),
        "not_applicable": results.get("not_applicable_because"),
        "attempted": orders.get("attempted"), "accepted": orders.get("accepted"), "lost": orders.get("lost"),
        "duplicated": orders.get("duplicated"),
        "acceptance_p99_ms": (latency.get("acceptance") or {}).get("p99"),
        "fulfilment_p99_ms": (latency.get("fulfilment") or {}).get("p99"),
        "availability": (results.get("availability") or {}).get("overall"),
        "failed_checks": results_mod.failed_checks(results),
        "failures": [{"name": c["name"], "expected": c.get("expected"), "observed": c.get("observed")}
                     for c in results.get("checks", []) if not c.get("passed")],
        "repeats": (results.get("repeats") or {}).get("n", 1),
        "intervals": {key: (results.get("repeats") or {}).get("metrics", {}).get(metric)
                      for key, metric in (("acceptance_p99_ms", "latency_ms.acceptance.p99"),
                                          ("fulfilment_p99_ms", "latency_ms.fulfilment.p99"))},
    }
