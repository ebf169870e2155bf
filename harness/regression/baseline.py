"""Saving a run as the committed regression baseline: results only, time series dropped.

`save_baseline(run_dir, out)` replaces `out` with `<experiment>/<shop>/results.json` for every
shop run of `run_dir` (histories, schedules, logs and per-second series are left behind, so the
baseline stays small enough to commit) plus `BASELINE.json` saying where it came from.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from harness.errors import CompareError
from harness.regression.compare import load_set

DROP_KEYS = frozenset({"series"})   # per-bucket time series: the report's, not the comparison's


def trim(value: Any) -> Any:
    """`value` without any DROP_KEYS entry at any depth."""
    if isinstance(value, dict):
        return {k: trim(v) for k, v in value.items() if k not in DROP_KEYS}
    if isinstance(value, list):
        return [trim(v) for v in value]
    return value


def save_baseline(run_dir: Path, out: Path) -> list[Path]:
    """Write the trimmed results of `run_dir` into `out` (replacing what was there); return the files.
    Refuses an incomplete run: a baseline must come from a run that finished."""
    results = load_set(run_dir)
    incomplete = [f"{e}/{s}" for (e, s), r in results.items() if not r.get("complete", False)]
    if incomplete:
        raise CompareError(f"{run_dir}: incomplete runs cannot be a baseline: {', '.join(incomplete)}")
    if out.exists():
        shutil.rmtree(out)
    written = []
    for (experiment, system), data in sorted(results.items()):
        path = out / experiment / system / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(trim(data), indent=1, sort_keys=True) + "\n")
        written.append(path)
    first = next(iter(results.values()))
    meta = {"saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from_run": str(run_dir),
            "run_id": first.get("run_id"), "profile": first.get("profile"),
            "commit": (first.get("provenance") or {}).get("commit"),
            "shop_runs": [f"{e}/{s}" for e, s in sorted(results)]}
    (out / "BASELINE.json").write_text(json.dumps(meta, indent=1) + "\n")
    return written
