"""Exploration's search loop with the shop run replaced: what counts as a violation found (an
inconclusive run, which could not test the claim, is not one; a failed or errored run is), and
what a seed and a bound on the runs fix."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.experiment.model import Experiment
from harness.explore import search


def fake_run(statuses: dict[str, str], calls: list[str]) -> Any:
    """A run_one stand-in: the status by whether the experiment has a 'kill' fault ("kill") or not ("other").
    `calls` gets each run's name and experiment (JSON)."""
    def run_one(name: str, exp: Experiment, system: str, *, out_dir: Path, **_: Any) -> dict[str, Any]:
        calls.extend([name, exp.model_dump_json()])
        out_dir.mkdir(parents=True, exist_ok=True)   # as the real run does: the run directory exists after it
        status = statuses["kill" if any(f.kind == "kill" for f in exp.faults) else "other"]
        checks = [{"name": "generator kept up", "kind": "validity", "passed": status != "inconclusive"},
                  {"name": "orders.lost", "kind": "expectation", "passed": status not in ("fail", "inconclusive")}]
        return {"status": status, "passed": status == "pass", "complete": status != "error",
                "error": "RuntimeError: boom" if status == "error" else None, "checks": checks}
    return run_one


def explore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, statuses: dict[str, str],
            calls: list[str] | None = None, **options: Any) -> search.Finding:
    monkeypatch.setattr(search, "run_one", fake_run(statuses, [] if calls is None else calls))
    return search.explore("async", "strong", **{"examples": 15, "budget_s": 60, "out": tmp_path, **options})


def test_inconclusive_runs_are_not_violations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    finding = explore(monkeypatch, tmp_path, {"kill": "inconclusive", "other": "inconclusive"})
    assert not finding.found and finding.file is None and finding.reproduced is None
    assert finding.examples and {e["status"] for e in finding.examples} == {"inconclusive"}
    assert all(not e["passed"] and "generator kept up" in e["failed_checks"] for e in finding.examples)
    summary = json.loads((finding.run_dir / "summary.json").read_text())
    assert {row["status"] for row in summary} == {"inconclusive"}


@pytest.mark.parametrize("violation", ["fail", "error"])
def test_a_failed_or_errored_run_is_a_violation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                violation: str) -> None:
    finding = explore(monkeypatch, tmp_path, {"kill": violation, "other": "inconclusive"})
    assert finding.found
    assert finding.minimal is not None and any(f.kind == "kill" for f in finding.minimal.faults)
    assert finding.reproduced is True and finding.replay_status == violation
    assert {e["status"] for e in finding.examples} <= {violation, "inconclusive"}
    saved = json.loads((finding.run_dir / "exploration.json").read_text())
    assert saved["found"] and saved["replay_status"] == violation


@pytest.mark.parametrize("statuses", [{"kill": "pass", "other": "pass"}, {"kill": "fail", "other": "pass"}])
def test_a_seed_runs_the_same_experiments_in_the_same_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            statuses: dict[str, str]) -> None:
    runs: list[list[str]] = [[], []]
    for calls, out in zip(runs, ("a", "b"), strict=True):
        finding = explore(monkeypatch, tmp_path / out, statuses, calls, examples=8, seed=3, max_runs=12)
        assert finding.seed == 3
    assert runs[0] == runs[1] and len(runs[0]) >= 2 * 8   # shrinking too, when a violation is found


def test_the_seed_is_recorded_where_the_finding_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    finding = explore(monkeypatch, tmp_path / "seeded", {"kill": "fail", "other": "fail"}, seed=5)
    assert json.loads((finding.run_dir / "exploration.json").read_text())["seed"] == 5
    assert finding.file is not None and "--config strong --seed 5`" in finding.file.read_text()
    open_search = explore(monkeypatch, tmp_path / "open", {"kill": "fail", "other": "fail"})
    assert open_search.seed is None and json.loads((open_search.run_dir / "exploration.json").read_text())["seed"] is None
    assert open_search.file is not None and "--seed" not in open_search.file.read_text()


def test_max_runs_bounds_the_runs_by_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    holds = explore(monkeypatch, tmp_path / "holds", {"kill": "pass", "other": "pass"}, seed=1, max_runs=3)
    assert len(holds.examples) == 3 and holds.budget_spent and not holds.found
    # a violation found at run k of an unbounded search: bounded at k runs, it is found and not shrunk
    unbounded = explore(monkeypatch, tmp_path / "unbounded", {"kill": "fail", "other": "pass"}, seed=1, examples=30)
    k = next(i for i, e in enumerate(unbounded.examples, 1) if e["status"] == "fail")
    assert unbounded.found and len(unbounded.examples) > k   # it went on to shrink
    bounded = explore(monkeypatch, tmp_path / "bounded", {"kill": "fail", "other": "pass"}, seed=1, examples=30,
                      max_runs=k)
    assert bounded.found and bounded.budget_spent and len(bounded.examples) == k
    assert bounded.minimal_example == f"example-{k:03d}" and bounded.examples == unbounded.examples[:k]
