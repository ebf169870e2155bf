"""The elasticity experiments in the smoke profile on both shops: scale-out with 1 and 2 baristas
(throughput grows, the theory section is filled in) and the autoscaled morning rush (at least one
scale-up, no accepted order lost). Judged over the main run (tests/integration/mainrun.py): the
shipped experiment files' variants, run once for CI's main job or once per session."""
from __future__ import annotations

from typing import Any

import pytest
from mainrun import MainRun

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
SYSTEMS = ("sync", "async")
SCALE_OUT = ("scale-out@baristas=1", "scale-out@baristas=2")
AUTOSCALE = "autoscale-rush@max_replicas=6"


def results(main_run: MainRun, names: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(name, system): main_run.results(name, system) for name in names for system in SYSTEMS}


def failed(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in results["checks"] if not c["passed"]]


@pytest.mark.main_run(*SCALE_OUT)
def test_scale_out_smoke_with_one_and_two_baristas(main_run: MainRun) -> None:
    by = results(main_run, SCALE_OUT)
    for (name, system), r in by.items():
        assert r["complete"] and r["passed"], (name, system, failed(r))
        theory = r["theory"]
        assert theory["mmc"]["applies"] and theory["little"] is not None, (name, system, theory)
        assert set(theory["mmc"]["ratios"]) == {"throughput", "mean_wait", "mean_backlog"}
    for system in SYSTEMS:
        one = by[("scale-out@baristas=1", system)]
        two = by[("scale-out@baristas=2", system)]
        assert two["config"]["shop"]["services"]["barista"] == ["barista-1", "barista-2"]
        t1, t2 = (r["theory"]["mmc"]["measured"]["throughput_per_s"] for r in (one, two))
        assert t2 > 1.5 * t1, (system, t1, t2)
        shares = two["scaling"]["per_replica"]
        assert set(shares) == {"barista-1", "barista-2"} and min(s["share"] for s in shares.values()) > 0.3
    # fairness: both shops saw the same arrivals
    for name in SCALE_OUT:
        assert by[(name, "sync")]["schedule"]["digest"] == by[(name, "async")]["schedule"]["digest"]


@pytest.mark.main_run(AUTOSCALE)
def test_autoscale_rush_smoke_scales_up_and_loses_nothing(main_run: MainRun) -> None:
    by = results(main_run, (AUTOSCALE,))
    for (name, system), r in by.items():
        scaling = r["scaling"]
        assert r["complete"] and r["passed"], (name, system, failed(r))
        assert scaling["scale_ups"] >= 1 and scaling["max_replicas"] >= 2, (system, scaling["events"])
        assert r["orders"]["lost"] == 0 and r["orders"]["served"] == r["orders"]["accepted"]
        up = next(e for e in scaling["events"] if e["to"] > e["from"])
        assert up["trigger"] == "autoscaler" and "backlog" in up["reason"]
