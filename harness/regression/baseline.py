"""Saving a run as the committed regression baseline: results only, time series dropped.

`save_baseline(run_dir, out)` replaces `out` with `<experiment>/<shop>/results.json` for every
shop run of `run_dir` (histories, schedules, logs and per-second series are left behind, so the
baseline stays small enough to commit) plus `BASELINE.json` saying where it came from. With
`more` runs, each shop run also gets `envelope.json`: every compared metric's value in each run
that has it (the first run's included), whose worst `chaoscafe compare` takes as the baseline.
With `only` (experiment names), an existing baseline is updated instead: the shop runs of those
experiments (a name covers its matrix variants, "scale-out" -> "scale-out@baristas=1", ...) are
replaced from the runs, every other shop run is left as it was, and BASELINE.json lists the update
under "updates" (for an experiment whose file changed, without throwing away the others' envelopes).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from harness.errors import CompareError
from harness.experiment.metrics import lookup
from harness.regression.compare import ENVELOPE, TOLERANCES, load_set

DROP_KEYS = frozenset({"series"})   # per-bucket time series: the report's, not the comparison's


def trim(value: Any) -> Any:
    """`value` without any DROP_KEYS entry at any depth."""
    if isinstance(value, dict):
        return {k: trim(v) for k, v in value.items() if k not in DROP_KEYS}
    if isinstance(value, list):
        return [trim(v) for v in value]
    return value


def _some(keys: list[tuple[str, str]]) -> str:
    """The first three (experiment, shop) keys as "e/s, e/s, e/s, ..." for an error message."""
    return ", ".join("/".join(k) for k in keys[:3]) + (", ..." if len(keys) > 3 else "")


def covers(name: str, experiment: str) -> bool:
    """Whether an `only` name covers a shop run's experiment: the same name, or one of its variants."""
    return experiment == name or experiment.startswith(name + "@")


def save_baseline(run_dir: Path, out: Path, more: list[Path] | None = None, *, replace: bool = False,
                  only: list[str] | None = None) -> list[Path]:
    """Write the trimmed results of `run_dir` into `out` (replacing what was there), and with
    `more` runs an envelope per shop run; return the files. Refuses (CompareError) an incomplete
    run: a baseline must come from runs that finished; and, unless `replace`, a run that lacks
    shop runs the baseline already in `out` has (they would be dropped unasked). With `only`,
    updates those experiments' shop runs of the baseline in `out` (see the module docstring);
    CompareError when `out` holds no baseline or `run_dir` has no shop run of a name."""
    results = load_set(run_dir)
    meta: dict[str, Any] = {}
    if only is not None:
        if not (out / "BASELINE.json").is_file():
            raise CompareError(f"{out}: no baseline to update (BASELINE.json missing); save one without --only first")
        try:   # read before anything is removed: a bad file leaves the baseline as it was
            meta = json.loads((out / "BASELINE.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CompareError(f"{out / 'BASELINE.json'}: not readable ({exc})") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("updates", []), list):
            raise CompareError(f"{out / 'BASELINE.json'}: not a baseline's record (an object whose \"updates\", "
                               f"if any, is a list); save the baseline again without --only")
        missing = [name for name in only if not any(covers(name, e) for e, _ in results)]
        if missing:
            raise CompareError(f"{run_dir}: no shop run of {', '.join(repr(n) for n in missing)} to update the baseline with")
        results = {key: r for key, r in results.items() if any(covers(n, key[0]) for n in only)}
    elif (out / "BASELINE.json").is_file() and not replace:
        dropped = sorted(set(load_set(out)) - set(results))
        if dropped:
            raise CompareError(f"{out} holds {len(dropped)} shop run(s) that {run_dir} does not ({_some(dropped)}): "
                               f"--replace to drop them, or --out elsewhere")
    others = [load_set(path) for path in (more or [])]
    for path, found in zip(more or [], others, strict=True):   # an envelope needs the same shop runs in every run
        lacking = sorted(set(results) - set(found))
        if lacking:
            raise CompareError(f"{path}: lacks {len(lacking)} shop run(s) of {run_dir} ({_some(lacking)}); "
                               f"the runs of a baseline must be of the same set")
    for path, found in zip([run_dir, *(more or [])], [results, *others], strict=True):
        incomplete = [f"{e}/{s}" for (e, s), r in found.items() if not r.get("complete", False) and (e, s) in results]
        if incomplete:
            raise CompareError(f"{path}: incomplete runs cannot be a baseline: {', '.join(incomplete)}")
    if only is not None:
        for experiment, system in {k for k in load_set(out) if any(covers(n, k[0]) for n in only)}:
            shutil.rmtree(out / experiment / system)
    elif out.exists():
        shutil.rmtree(out)
    written = []
    for (experiment, system), data in sorted(results.items()):
        path = out / experiment / system / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(trim(data), indent=1, sort_keys=True) + "\n")
        written.append(path)
        runs = [data, *(o[(experiment, system)] for o in others if (experiment, system) in o)]
        if len(runs) > 1:
            envelope = {"runs": [r.get("run_id") for r in runs],
                        "values": {m: [lookup(r, m) for r in runs] for m in TOLERANCES}}
            written.append(path.with_name(ENVELOPE))
            written[-1].write_text(json.dumps(envelope, indent=1, sort_keys=True) + "\n")
    first = next(iter(results.values()))
    saved = {"saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from_run": str(run_dir),
             "run_id": first.get("run_id"), "profile": first.get("profile"),
             "commit": (first.get("provenance") or {}).get("commit")}
    if only is not None:
        meta["shop_runs"] = [f"{e}/{s}" for e, s in sorted(load_set(out))]
        meta.setdefault("updates", []).append({**saved, "experiments": list(only),
                                               "shop_runs": [f"{e}/{s}" for e, s in sorted(results)],
                                               "more_runs": [str(path) for path in (more or [])]})
    else:
        meta = {**saved, "shop_runs": [f"{e}/{s}" for e, s in sorted(results)],
                "more_runs": [str(path) for path in (more or [])]}
    (out / "BASELINE.json").write_text(json.dumps(meta, indent=1) + "\n")
    return written
