"""`chaoscafe explore`: search for a fault schedule that breaks a property, then shrink it.

Hypothesis generates experiments (harness.explore.strategies); each example is a real run of
`harness.experiment.run.run_one` on a fresh shop, and a property is violated when the run fails or errors
(`harness.experiment.verdicts.status_of`; its expectations are the ledger invariants, plus the built-in
checks). An inconclusive run (it could not test the claim: generator behind, no steady state, a
fault not applied, ...) is not a violation: its example says status "inconclusive".
`hypothesis.find` returns the smallest violating experiment it reached: fewer faults, earlier
and shorter windows, kinds nearer the front of the menu. Verdicts are memoised per experiment,
so Hypothesis sees one answer per input even though the live shop is not deterministic, and a
spent budget only stops *new* examples. The minimal schedule is written as an experiment TOML
file and replayed once from that file, exactly as `chaoscafe run FILE` would; both the examples
and the replay get an HTML report.

What a replay reproduces: the arrival schedule and the fault schedule, byte for byte (same seed,
same windows). What it cannot: thread and process interleavings, OS scheduling, which replica a
broker hands a message to, Toxiproxy's timing. So a violation can fail to reproduce; the
result says whether it did.

A search is open by default: Hypothesis draws from fresh randomness, so each search may try other
schedules. `seed` fixes that draw (`find(random=Random(seed))`): the same seed generates the same
examples in the same order. The runs' own seeds are fixed either way (every example's arrivals come
from the same run seed, harness.explore.strategies), so a seeded search runs the same experiments
each time as long as the live shop gives the same verdicts; a different verdict (the shop is not
deterministic) changes what Hypothesis tries next.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import tomli_w
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from harness.experiment import Experiment, load_experiment
from harness.experiment.results import failed_checks
from harness.experiment.run import ProgressFn, run_one
from harness.experiment.runs import new_run_id
from harness.experiment.verdicts import status_of
from harness.explore.strategies import experiments

VIOLATIONS = ("fail", "error")   # statuses that count as a violation found; "inconclusive" does not


@dataclass
class Finding:
    """The outcome of an exploration."""

    system: str
    config: str
    run_dir: Path
    examples: list[dict[str, Any]] = field(default_factory=list)   # {name, faults, status, passed, failed_checks}
    seconds: float = 0.0
    minimal: Experiment | None = None
    minimal_failed: list[str] = field(default_factory=list)
    minimal_example: str | None = None          # the example (directory name) that ran the minimal schedule
    file: Path | None = None
    reproduced: bool | None = None
    replay_status: str | None = None            # the replay's status (an inconclusive replay did not reproduce)
    budget_spent: bool = False
    seed: int | None = None                     # Hypothesis's seed; None: an open search

    @property
    def found(self) -> bool:
        return self.minimal is not None

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "config": self.config, "run_dir": str(self.run_dir),
                "examples": self.examples, "seconds": round(self.seconds, 1), "found": self.found,
                "minimal_faults": [f.model_dump(exclude_none=True) for f in self.minimal.faults] if self.minimal else None,
                "minimal_failed": self.minimal_failed, "minimal_example": self.minimal_example, "file": str(self.file) if self.file else None,
                "reproduced": self.reproduced, "replay_status": self.replay_status,
                "budget_spent": self.budget_spent, "seed": self.seed}


def to_toml(experiment: Experiment) -> str:
    """The experiment as a TOML file that loads back to the same Experiment."""
    return tomli_w.dumps(experiment.model_dump(mode="json", exclude_none=True))


def explore(system: str, config: str, *, examples: int, budget_s: float, out: Path, max_faults: int = 3,
            seed: int | None = None, max_runs: int | None = None, progress: ProgressFn | None = None,
            on_example: Callable[[dict[str, Any]], None] | None = None) -> Finding:
    """Search `examples` generated schedules (at most `budget_s` seconds of new examples) against
    `system` in the `config` configuration; shrink, write and replay a violation if one is found.
    `seed` fixes Hypothesis's generation (None: an open search, different each time). `max_runs`
    bounds the runs of new examples, generated or shrunk (the replay not counted), by count where
    `budget_s` bounds them by time: with a seed, a count gives the same examples on a slow machine
    as on a fast one."""
    run_id = f"explore-{system}-{config}-{new_run_id()}"
    finding = Finding(system, config, Path(out).resolve() / "runs" / run_id, seed=seed)
    verdicts: dict[str, tuple[bool, list[str]]] = {}   # experiment (JSON) -> (violated, the checks its run failed)
    names: dict[str, str] = {}            # experiment (JSON) -> the example that ran it
    started = time.monotonic()

    def violated(exp: Experiment) -> bool:
        key = exp.model_dump_json()
        if key in verdicts:
            return verdicts[key][0]
        if time.monotonic() - started > budget_s or (max_runs is not None and len(finding.examples) >= max_runs):
            finding.budget_spent = True
            return False
        name = f"example-{len(finding.examples) + 1:03d}"
        results = run_one(name, exp, system, profile="smoke", seed=None, out_dir=finding.run_dir / name / system,
                          run_id=run_id, progress=progress)
        bad = failed_checks(results, incomplete=True)
        status = status_of(results)
        example = {"name": name, "faults": [f"{f.kind} {f.target} @{f.start_s:g}s+{f.duration_s:g}s" for f in exp.faults],
                   "status": status, "passed": status == "pass", "failed_checks": bad}
        finding.examples.append(example)
        if on_example:
            on_example(example)
        verdicts[key], names[key] = (status in VIOLATIONS, bad), name
        return status in VIOLATIONS

    try:
        finding.minimal = find(experiments(system, config, max_faults), violated,
                               settings=settings(max_examples=examples, deadline=None, database=None,
                                                 phases=[Phase.generate, Phase.shrink],
                                                 suppress_health_check=list(HealthCheck)),
                               random=None if seed is None else Random(seed))
    except NoSuchExample:
        finding.minimal = None
    finding.seconds = time.monotonic() - started
    if finding.minimal is not None:
        finding.minimal_failed = verdicts[finding.minimal.model_dump_json()][1]
        finding.minimal_example = names[finding.minimal.model_dump_json()]
        finding.file = finding.run_dir / f"counterexample-{system}.toml"
        finding.file.write_text(_header(finding) + to_toml(finding.minimal))
        replay = run_one("counterexample", load_experiment(finding.file), system, profile="smoke", seed=None,
                         out_dir=finding.run_dir / "counterexample" / system, run_id=run_id, progress=progress)
        finding.replay_status = status_of(replay)
        finding.reproduced = finding.replay_status in VIOLATIONS
    (finding.run_dir / "exploration.json").write_text(json.dumps(finding.to_dict(), indent=2))
    (finding.run_dir / "summary.json").write_text(json.dumps(
        [{"experiment": e["name"], "system": system, "status": e["status"], "passed": e["passed"]}
         for e in finding.examples]
        + ([{"experiment": "counterexample", "system": system, "status": finding.replay_status,
             "passed": finding.replay_status == "pass"}] if finding.file else []), indent=2))
    return finding


def _header(finding: Finding) -> str:
    seeded = "" if finding.seed is None else f" --seed {finding.seed}"
    return (f"# Found by `chaoscafe explore --shop {finding.system} --config {finding.config}{seeded}` after "
            f"{len(finding.examples)} runs;\n# it broke: {', '.join(finding.minimal_failed)}. "
            "Replay: chaoscafe run THIS_FILE --system " + finding.system + "\n")
