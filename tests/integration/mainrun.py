"""The main run: one fast run of the shipped experiments that the integration tests assert over,
instead of each module running the experiments again (the fixtures are in conftest.py).

`CHAOSCAFE_MAIN_RUN` names the run directory of a `chaoscafe run --profile fast` (or smoke; the directory
holding `<experiment>/<shop>/results.json`, e.g. reports/runs/<run-id>); `.ci/run` sets it to the
run its main job wrote, so CI runs every experiment once. Without it, the tests run what they need
themselves: a test runs, in one `chaoscafe run --profile fast` into the session's tmp dir, the
experiments its `main_run` marker names that no earlier test of the session ran (so each runs once
per session; under pytest-xdist each worker process is a session of its own).

A missing or unreadable results file, or a run in another profile than fast or smoke, fails the test that
needs it and says why; what the results say (a failed verdict, an incomplete run) is for the
test's own assertions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

ENV = "CHAOSCAFE_MAIN_RUN"
PROFILE = "fast"                  # what the session runs itself: CI's profile
PROFILES = ("fast", "smoke")      # what a given run may be: the assertions hold for both
RUN_TIMEOUT_S = 1800


class MainRun:
    """Where each experiment's results are: one given run directory, or fast runs made here."""

    def __init__(self, given: Path | None, scratch: Path) -> None:
        self.given = given
        self.scratch = scratch
        self.run_dirs: dict[str, Path] = {}   # experiment -> the run directory holding it (runs made here)
        self.sets = 0

    def origin(self) -> str:
        return f"{ENV}={self.given}" if self.given else f"the session's own fast run under {self.scratch}"

    def need(self, experiments: Iterable[str]) -> None:
        """Make sure these experiments have results; without a given run, run the missing ones
        together (both shops, the fast profile)."""
        missing = sorted(set(experiments) - set(self.run_dirs))
        if self.given is not None or not missing:
            return
        # relative --out from its own directory, as the main job runs from the clone's root
        self.sets += 1
        cwd = self.scratch / f"set-{self.sets}"
        cwd.mkdir(parents=True)
        proc = subprocess.run([sys.executable, "-m", "harness", "run", *missing, "--profile", PROFILE,
                               "--out", "reports", "--quiet"], capture_output=True, text=True, cwd=cwd,
                              timeout=RUN_TIMEOUT_S, check=False)
        written = cwd / "reports" / "runs"
        runs = sorted(p for p in written.iterdir() if p.is_dir()) if written.is_dir() else []
        if proc.returncode not in (0, 1, 3) or len(runs) != 1:   # 1 and 3: verdicts, for the tests to judge
            pytest.fail(f"the main run of {', '.join(missing)} did not run (exit {proc.returncode}):\n"
                        f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}", pytrace=False)
        self.run_dirs.update(dict.fromkeys(missing, runs[0]))

    def shop_dir(self, experiment: str, system: str) -> Path:
        """`<run>/<experiment>/<shop>/` with its results.json (history.jsonl, infra/ beside it)."""
        self.need([experiment])
        run_dir = self.given if self.given is not None else self.run_dirs[experiment]
        path = run_dir / experiment / system
        if not (path / "results.json").is_file():
            pytest.fail(f"{self.origin()}: no {experiment}/{system}/results.json in {run_dir}; the tests need a fast "
                        f"run of {experiment} on both shops (chaoscafe run {experiment} --profile fast)", pytrace=False)
        return path

    def results(self, experiment: str, system: str) -> dict[str, Any]:
        path = self.shop_dir(experiment, system) / "results.json"
        try:
            results: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            pytest.fail(f"{self.origin()}: {path} is not a results file ({exc})", pytrace=False)
        if results.get("profile") not in PROFILES:
            pytest.fail(f"{self.origin()}: {path} is a {results.get('profile')!r} run; the tests assert over a "
                        f"{' or '.join(PROFILES)} run", pytrace=False)
        return results


def given_run() -> Path | None:
    """The run directory named by CHAOSCAFE_MAIN_RUN (None when unset); fails when it is not one."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    run_dir = Path(value).resolve()
    if not run_dir.is_dir():
        pytest.fail(f"{ENV}={value}: no such directory (name the run directory a `chaoscafe run --profile fast` "
                    f"wrote, e.g. reports/runs/<run-id>)", pytrace=False)
    if not list(run_dir.glob("*/*/results.json")):
        hint = " (an --out directory: name one of its runs/<run-id>)" if (run_dir / "runs").is_dir() else ""
        pytest.fail(f"{ENV}={value}: no <experiment>/<shop>/results.json in it{hint}", pytrace=False)
    return run_dir
