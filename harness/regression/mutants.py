"""Mutation tests for the guarantees: does some experiment fail on a shop that breaks one?

`mutants/mutants.toml` lists mutants: small edits to a copy of `systems/` and of the services'
library `cafe/`, each breaking exactly one guarantee that docs/architecture.md claims. For each
mutant this runs the experiments of its `catch` list (fast profile by default, what CI runs) on the
patched shop, with the service programs taken from the copy ($CHAOSCAFE_SYSTEMS) and `cafe`
imported from the copy by every service process ($CHAOSCAFE_LIBRARY, first on their PYTHONPATH:
harness.infra.paths.services_pythonpath; the harness itself keeps the `cafe` it has loaded), and
calls it killed when at least one shop run's status is "fail"
(inconclusive and error do not count: they prove nothing). The score is killed / mutants.

    python -m harness.regression.mutants [--only NAME ...] [--out DIR] [--profile P]   # or: tox -e mutants

Exit 0 when every mutant was killed, 1 when one survived, 2 for a bad mutants file.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from harness.errors import MutantError
from harness.shops import SHOP_NAMES  # the registry: data only

ROOT = Path(__file__).resolve().parents[2]
MUTANTS_FILE = ROOT / "mutants" / "mutants.toml"


class Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str = Field(min_length=1, description="a path under systems/, or cafe/<module>.py (the services' library)")
    find: str = Field(min_length=1, description="must occur exactly once in the file")
    replace: str


class Mutant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    shop: str = Field(description="a registered shop (harness.shops.SHOP_NAMES)")
    guarantee: str = Field(min_length=1)
    catch: list[str] = Field(min_length=1, description="experiments expected to fail on this mutant")
    edit: list[Edit] = Field(min_length=1)

    @field_validator("shop", mode="before")
    @classmethod
    def _registered(cls, shop: Any) -> Any:
        if shop not in SHOP_NAMES:   # worded as pydantic words a Literal's error
            *others, last = (repr(name) for name in SHOP_NAMES)
            expected = f"{', '.join(others)} or {last}" if others else last
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return shop


def load_mutants(path: Path = MUTANTS_FILE) -> list[Mutant]:
    """The mutants of `path`; MutantError naming the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        mutants = [Mutant(**m) for m in data.get("mutant", [])]
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MutantError(f"{path}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MutantError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    names = [m.name for m in mutants]
    if len(set(names)) != len(names):
        raise MutantError(f"{path}: mutant names repeat: {names}")
    return mutants


def apply(mutant: Mutant, systems: Path) -> None:
    """Apply the mutant's edits to the systems/ tree at `systems` (a copy). MutantError when an
    edit's `find` does not occur exactly once (the code moved on: update the mutant). A file under
    cafe/ is edited in the copy of the library beside it, `<systems>/../lib/cafe/`."""
    for edit in mutant.edit:
        path = (systems.parent / "lib" / edit.file) if edit.file.startswith("cafe/") else systems / edit.file
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        count = text.count(edit.find)
        if count != 1:
            raise MutantError(f"mutant {mutant.name}: {edit.file}: `find` occurs {count} times, not once: "
                              f"{edit.find[:60]!r}")
        path.write_text(text.replace(edit.find, edit.replace), encoding="utf-8")


@dataclass(frozen=True)
class Outcome:
    mutant: str
    shop: str
    guarantee: str
    killed: bool
    runs: list[dict[str, Any]]   # experiment, status, failed checks
    seconds: float


def run_mutant(mutant: Mutant, out: Path, source: Path = ROOT / "systems", profile: str = "fast",
               library: Path = ROOT / "cafe") -> Outcome:
    """Run the mutant's catch list (in `profile`) on a patched copy of `source` and of `library`
    (the cafe package); results under out/<name>/."""
    from harness.experiment.runs import run_all, select

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"chaoscafe-mutant-{mutant.name}-") as tmp:
        systems = Path(tmp) / "systems"
        shutil.copytree(source, systems, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(library, Path(tmp) / "lib" / "cafe", ignore=shutil.ignore_patterns("__pycache__"))
        apply(mutant, systems)
        lib = str(Path(tmp) / "lib")
        previous = {name: os.environ.get(name) for name in ("CHAOSCAFE_SYSTEMS", "CHAOSCAFE_LIBRARY")}
        os.environ["CHAOSCAFE_SYSTEMS"] = str(systems)
        os.environ["CHAOSCAFE_LIBRARY"] = lib
        try:
            _, summary = run_all(select(mutant.catch), [mutant.shop], profile=profile, seed=None,
                                 out=out / mutant.name)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    runs = [{"experiment": row["experiment"], "status": row["status"], "failed_checks": row["failed_checks"]}
            for row in summary]
    return Outcome(mutant.name, mutant.shop, mutant.guarantee, any(r["status"] == "fail" for r in runs), runs,
                   round(time.monotonic() - started, 1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.regression.mutants", description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    p.add_argument("--out", default="reports/mutants", help="runs and score.json go here (default reports/mutants)")
    p.add_argument("--profile", choices=["fast", "smoke", "full"], default="fast",
                   help="the experiments' profile (default fast: what CI runs, so CI's verdicts are the ones proven)")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    try:
        mutants = load_mutants()
        if args.only:
            unknown = set(args.only) - {m.name for m in mutants}
            if unknown:
                raise MutantError(f"{MUTANTS_FILE}: no mutant {', '.join(sorted(unknown))}")
            mutants = [m for m in mutants if m.name in args.only]
    except MutantError as exc:
        print(f"mutants: {exc}", file=sys.stderr)
        return 2
    outcomes = []
    for mutant in mutants:
        print(f"mutant {mutant.name} ({mutant.shop}): breaks '{mutant.guarantee}'; running {', '.join(mutant.catch)}",
              flush=True)
        outcome = run_mutant(mutant, out, profile=args.profile)
        outcomes.append(outcome)
        caught = [f"{r['experiment']} {r['status']} ({', '.join(r['failed_checks'])})" for r in outcome.runs]
        print(f"  {'KILLED' if outcome.killed else 'SURVIVED'} in {outcome.seconds:.0f} s: {'; '.join(caught)}",
              flush=True)
    killed = sum(o.killed for o in outcomes)
    out.mkdir(parents=True, exist_ok=True)
    (out / "score.json").write_text(json.dumps({"killed": killed, "mutants": len(outcomes),
                                                "outcomes": [o.__dict__ for o in outcomes]}, indent=2))
    print(f"mutation score: {killed}/{len(outcomes)} killed (details in {out / 'score.json'})")
    return 0 if killed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
