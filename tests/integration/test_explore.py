"""Exploration on the live sync shop: with idempotency off it finds a violation and shrinks it to
one or two faults, written as an experiment file whose replay has byte-identical arrival and fault
schedules; with idempotency on, the same budget finds nothing. And the state machine drives a live
shop step by step with its invariants holding (strong configuration)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from harness.experiment import load_experiment
from harness.explore.machine import machine_for
from harness.explore.search import explore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES, BUDGET_S = 6, 150


@pytest.mark.timeout(900)
def test_weak_sync_shop_violation_is_found_shrunk_and_replayable(tmp_path: Path) -> None:
    finding = explore("sync", "weak", examples=EXAMPLES, budget_s=BUDGET_S, out=tmp_path)
    print(json.dumps(finding.to_dict(), indent=1))
    assert finding.found and finding.minimal is not None
    assert "orders.duplicated" in finding.minimal_failed          # retries without a key brewed twice
    assert 1 <= len(finding.minimal.faults) <= 2
    assert finding.file is not None and load_experiment(finding.file) == finding.minimal
    assert finding.minimal_example is not None
    original = finding.run_dir / finding.minimal_example / "sync"
    replay = finding.run_dir / "counterexample" / "sync"
    assert (replay / "schedule.jsonl").read_bytes() == (original / "schedule.jsonl").read_bytes()
    declared = [json.loads((d / "results.json").read_text())["config"]["experiment"]["faults"]
                for d in (original, replay)]
    assert declared[0] == declared[1] == [f.model_dump(mode="json") for f in finding.minimal.faults]
    assert finding.reproduced is not None


@pytest.mark.timeout(900)
def test_strong_sync_shop_holds_under_the_same_budget(tmp_path: Path) -> None:
    finding = explore("sync", "strong", examples=EXAMPLES, budget_s=BUDGET_S, out=tmp_path)
    print(json.dumps(finding.to_dict(), indent=1))
    assert not finding.found, finding.to_dict()
    assert finding.examples and all(e["passed"] for e in finding.examples)


@pytest.mark.timeout(600)
def test_state_machine_on_a_live_sync_shop(tmp_path: Path) -> None:
    machine = machine_for("sync", "strong", tmp_path)
    run_state_machine_as_test(machine, settings=settings(max_examples=2, stateful_step_count=6, deadline=None,
                                                          database=None, suppress_health_check=list(HealthCheck)))
    started = sorted(p.name for p in tmp_path.iterdir())
    assert len(started) >= 2 and not list(tmp_path.rglob("timeline.toml"))   # a fresh shop per example, no failure
