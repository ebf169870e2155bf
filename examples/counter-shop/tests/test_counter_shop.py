"""The example shop plugin installs and runs. This folder is pip-installed (no dependencies: the
chaoscafe under test is the one installed) into a directory of its own, and `python -m harness`, with
that directory on PYTHONPATH, finds the shop through its `chaoscafe.shops` entry point, lists it
beside the built-in shops, and runs the shipped steady state on it: every check passes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]
ROOT = HERE.parents[1]   # the chaoscafe checkout this example lives in
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a `python -m harness` that sees the plugin (and no other process does)."""
    target = tmp_path_factory.mktemp("plugin")
    source = tmp_path_factory.mktemp("source") / HERE.name   # a build writes beside the sources: not in the checkout
    shutil.copytree(HERE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, timeout=300, capture_output=True)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")])))


def harness(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_the_plugin_is_listed_beside_the_built_in_shops(env: dict[str, str], tmp_path: Path) -> None:
    out = harness(env, "shops", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "plugin (chaoscafe-counter-shop)" in out.stdout and "chaoscafe_counter.adapter:CounterShop" in out.stdout
    assert "built-in" in out.stdout and "not loaded" not in out.stdout + out.stderr


def test_the_steady_state_runs_and_passes_on_the_plugin_shop(env: dict[str, str], tmp_path: Path) -> None:
    out = harness(env, "run", str(ROOT / "experiments" / "steady-state.toml"), "--system", "counter",
                  "--profile", "fast", "--out", str(tmp_path / "reports"), "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [results_file] = (tmp_path / "reports" / "runs").glob("*/steady-state/counter/results.json")
    results = json.loads(results_file.read_text())
    assert results["status"] == "pass", [c for c in results["checks"] if not c["passed"]]
    assert results["orders"]["accepted"] == results["orders"]["attempted"] > 0
    assert results["orders"]["lost"] == 0 and results["orders"]["duplicated"] == 0
    assert results["config"]["shop"]["kind"] == "counter"
    assert (tmp_path / "reports" / "index.html").is_file()
