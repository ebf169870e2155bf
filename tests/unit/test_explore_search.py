"""Exploration's search loop with the shop run replaced: what counts as a violation found. An
inconclusive run (it could not test the claim) is not one; a failed or errored run is."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.experiment.model import Experiment
from harness.explore import search


def fake_run(statuses: dict[str, str], calls: list[str]) -> Any:
    """A run_one stand-in: the status by whether the experiment has a 'kill' fault ("kill") or not ("other")."""
    def run_one(name: str, exp: Experiment, system: str, *, out_dir: Path, **_: Any) -> dict[str, Any]:
        calls.append(name)
        out_dir.mkdir(parents=True, exist_ok=True)   # as the real run does: the run directory exists after it
        status = statuses["kill" if any(f.kind == "kill" for f in exp.faults) else "other"]
        checks = [{"name": "generator kept up", "kind": "validity", "passed": status != "inconclusive"},
                  {"name": "orders.lost", "kind": "expectation", "passed": status not in ("fail", "inconclusive")}]
        return {"status": status, "passed": status == "pass", "complete": status != "error",
                "error": "RuntimeError: boom" if status == "error" else None, "checks": checks}
    return run_one


def explore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, statuses: dict[str, str]) -> search.Finding:
    calls: list[str] = []
    monkeypatch.setattr(search, "run_one", fake_run(statuses, calls))
    return search.explore("async", "strong", examples=15, budget_s=60, out=tmp_path)


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
