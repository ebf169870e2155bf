"""The fault scenarios (SCENARIOS.md items 2, 3, 6, 7, 9) in the smoke profile on both shops,
through `chaoscafe run`: every expectation holds, every fault was applied (or reported as not
applicable), and every run ends healed: no toxic left, every proxy enabled, every replica running."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

SCENARIOS = ["barista-outage", "barista-pause", "order-service-outage", "broker-outage", "broker-outage-direct",
             "slow-barista", "flaky-network"]


def test_fault_scenarios_hold_on_both_shops(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", *SCENARIOS, "--profile", "smoke",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=1800, check=False)
    (run_dir,) = (out / "runs").iterdir()
    failures = []
    for name in SCENARIOS:
        for system in ("sync", "async"):
            results = json.loads((run_dir / name / system / "results.json").read_text())
            if not results["passed"]:
                failures.append((name, system, [c for c in results["checks"] if not c["passed"]]))
            assert results["healed"]["healed"], (name, system, results["healed"])
            applied = {f["name"] for f in results["faults"]}
            skipped = {f["name"] for f in results["not_applicable"]}
            declared = len(results["config"]["experiment"]["faults"])
            assert len(applied) + len(skipped) == declared, (name, system, applied, skipped)
            if name.startswith("broker-outage"):
                assert bool(skipped) == (system == "sync"), (name, system, skipped)
    assert not failures, failures
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
