"""Regression checks: two result sets (a baseline and a current run) compared per experiment and shop.

A result set is a directory holding `<experiment>/<shop>/results.json` (a run directory, or a
committed baseline). Rules, per metric (`TOLERANCES`, overridable from a TOML file):

- a verdict (`harness.experiment.verdicts.status_of`: pass, fail, inconclusive, error) may not flip from
  pass to anything else; a flip to pass is "improved", any other move "changed"; a check that
  passed may not fail; where either side is "not-applicable" (that shop run was not made) only
  the verdict's move is shown, as "changed", and nothing else is compared;
- ledger invariants (lost, duplicated, ...) are exact: where the experiment expects zero, the
  current value may not exceed the baseline's; where it does not (an unsafe variant that expects
  duplicates), any move is only "changed";
- latencies and throughputs compare as ratios: worse by more than `ratio` (and by more than the
  absolute `floor`, so that noise on small numbers never counts) is a regression;
- shares (availability, SLO) compare as differences: lower by more than `absolute` is a regression;
- an experiment/shop in the baseline but missing from the current set is a regression;
- a timing metric (any but the exact ones) of a current run on whose machine the hypervisor stole
  more than `STEAL_LIMIT` of the CPU time over the load and drain (results.json `host.steal_share`,
  harness.infra.host) that moved beyond its tolerance is "noisy", not a regression: the run had
  less CPU than its numbers say, so they are not like for like (a CI run on a busy host read
  26% steal and a probe share of 0.58 against 0.98). Ledger invariants, verdicts and checks are
  judged however busy the host was;
- a baseline saved from several runs (`chaoscafe baseline RUN1 RUN2 ...`) keeps every run's value
  of each metric (`envelope.json` beside results.json): the worst of them is the baseline value,
  so an outcome that varies from run to run (bimodal) is judged against its worst seen, not
  against one draw.

A metric judged "same" that used at least `NEAR_MISS` of its rule's room (`room_used`) is a near
miss: `chaoscafe compare` lists the closest, so a rule that noise nearly crosses is seen before a
run fails on it.

Pure except for `load_set`; `chaoscafe compare` prints `table_rows` and exits 1 on any regression.
"""
from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import CompareError
from harness.experiment.metrics import METRICS, lookup
from harness.experiment.verdicts import WORDS, status_of

Key = tuple[str, str]          # (experiment, shop)
Status = Literal["regression", "improved", "changed", "same", "new", "missing", "note", "noisy"]
# the share of the machine's CPU time the hypervisor may steal in a current run before its timing
# metrics are not judged (see the module docstring): the runs of a CI main job on a quiet host read
# under 0.02; in a busy minute vmstat read 0.16 and 0.26 over the two runs that left the baseline's
# envelope (docs/performance.md)
STEAL_LIMIT = 0.10
# a metric that used at least this share of the room its rule allows is listed as a near miss (the
# landing CI of 2026-12-02 failed on a metric that earlier runs had brought close to its line)
NEAR_MISS = 0.5


@dataclass(frozen=True)
class Tolerance:
    """How one metric may move. `better` is the direction of improvement; `exact` metrics may not
    worsen at all where the experiment expects zero; otherwise worsening counts when it exceeds
    both `ratio` (relative) or `absolute` (whichever is given) and `floor`."""

    better: Literal["lower", "higher"]
    exact: bool = False
    ratio: float | None = None
    absolute: float | None = None
    floor: float = 0.0

    def text(self) -> str:
        if self.exact:
            return "exact where expected 0"
        parts = []
        if self.ratio is not None:
            parts.append(f"x{1 + self.ratio:g}" if self.better == "lower" else f"/{1 + self.ratio:g}")
        if self.absolute is not None:
            parts.append(f"{'+' if self.better == 'lower' else '-'}{self.absolute:g}")
        if self.floor:
            parts.append(f"floor {self.floor:g}")
        return ", ".join(parts)


_INVARIANT = Tolerance("lower", exact=True)
TOLERANCES: dict[str, Tolerance] = {
    "orders.lost": _INVARIANT,
    "orders.duplicated": _INVARIANT,
    "orders.duplicate_brews": _INVARIANT,
    "orders.duplicate_servings": _INVARIANT,
    "orders.unexpected": _INVARIANT,
    # wide on purpose: smoke runs are short and the machine is shared; these catch breakage, not drift.
    # acceptance p50's floor: at two shop runs at a time a quiet host moved it by up to 196 ms
    # (late-comer@200 / sync-resilient, a 1 s history, ci38) and a busy one by 307-440 ms
    # (backpressure / sync-resilient, ci32 and ci36): 200 ms was within reach of noise
    "latency_ms.acceptance.p50": Tolerance("lower", ratio=4.0, floor=500.0),
    "latency_ms.acceptance.p99": Tolerance("lower", ratio=9.0, floor=1000.0),
    "latency_ms.fulfilment.p50": Tolerance("lower", ratio=4.0, floor=2000.0),
    "latency_ms.fulfilment.p99": Tolerance("lower", ratio=4.0, floor=5000.0),
    "throughput.accepted_per_s": Tolerance("higher", ratio=2.0, floor=2.0),
    "throughput.served_per_s": Tolerance("higher", ratio=2.0, floor=2.0),
    "availability.overall": Tolerance("higher", absolute=0.2),
    "availability.in_faults": Tolerance("higher", absolute=0.3),
    "probe.share_within_slo": Tolerance("higher", absolute=0.25),
}


def room_used(tol: Tolerance, base: Any, cur: Any) -> float | None:
    """The share of the room `tol` allows that moving from `base` to `cur` used: 0 when not worse,
    1 on the line (`judge` calls a move past it a regression), more beyond; None for exact metrics,
    missing values or a rule that allows no room. The line is the farther of the ratio's and the
    floor's (and of the absolute difference's), as in `judge`."""
    if tol.exact or base is None or cur is None:
        return None
    base, cur = float(base), float(cur)
    worse = cur > base if tol.better == "lower" else cur < base
    room = tol.floor
    if tol.absolute is not None:
        room = max(room, tol.absolute)
    if tol.ratio is not None and base > 0:
        line = base * (1 + tol.ratio) if tol.better == "lower" else base / (1 + tol.ratio)
        room = max(room, abs(line - base))
    if room <= 0:
        return None
    return round(abs(cur - base) / room, 3) if worse else 0.0


@dataclass(frozen=True)
class Change:
    experiment: str
    system: str
    metric: str
    baseline: Any
    current: Any
    status: Status
    rule: str = ""
    room_used: float | None = None   # room_used() of a compared metric (None: not a ruled metric)

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "system": self.system, "metric": self.metric,
                "baseline": self.baseline, "current": self.current, "status": self.status, "rule": self.rule,
                "room_used": self.room_used}


def load_set(directory: Path) -> dict[Key, dict[str, Any]]:
    """Every `<experiment>/<shop>/results.json` under `directory`. A directory holding `runs/`
    (an --out directory) means its newest run. Raises CompareError when there is nothing to compare."""
    if not directory.is_dir():
        raise CompareError(f"{directory}: no such directory")
    runs = directory / "runs"
    if runs.is_dir() and not list(directory.glob("*/*/results.json")):
        candidates = sorted(p for p in runs.iterdir() if p.is_dir())
        if not candidates:
            raise CompareError(f"{runs}: no runs in it")
        directory = candidates[-1]
    found: dict[Key, dict[str, Any]] = {}
    for path in sorted(directory.glob("*/*/results.json")):
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CompareError(f"{path}: not a results file ({exc})") from exc
        if not isinstance(results, dict):
            raise CompareError(f"{path}: not a results file (a JSON {type(results).__name__}, not an object)")
        found[(path.parent.parent.name, path.parent.name)] = results
    if not found:
        raise CompareError(f"{directory}: no <experiment>/<shop>/results.json in it")
    return found


ENVELOPE = "envelope.json"
Envelope = Mapping[str, list[Any]]   # metric -> its value in each baseline run


def load_envelopes(directory: Path) -> dict[Key, dict[str, list[Any]]]:
    """Every `<experiment>/<shop>/envelope.json` under a baseline directory ({} when none):
    {key: {metric: [value per baseline run]}}. CompareError for an unreadable file."""
    found: dict[Key, dict[str, list[Any]]] = {}
    for path in sorted(directory.glob(f"*/*/{ENVELOPE}")):
        try:
            values = json.loads(path.read_text())["values"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CompareError(f"{path}: not an envelope file ({exc})") from exc
        if not isinstance(values, dict) or not all(isinstance(v, list) for v in values.values()):
            raise CompareError(f"{path}: not an envelope file (\"values\" must map each metric to a list)")
        found[(path.parent.parent.name, path.parent.name)] = values
    return found


def worst(tol: Tolerance, values: list[Any]) -> Any:
    """The worst of a metric's baseline values under `tol` (None if none is a number)."""
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return None
    return max(numbers) if tol.better == "lower" else min(numbers)


def load_tolerances(path: Path) -> dict[str, Tolerance]:
    """TOLERANCES updated from a TOML file of `["metric.name"]` tables (fields of Tolerance)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CompareError(f"{path}: {exc}") from exc
    merged = dict(TOLERANCES)
    for metric, fields in data.items():
        if metric not in METRICS:
            raise CompareError(f"{path}: unknown metric {metric!r}")
        if not isinstance(fields, dict) or fields.get("better") not in ("lower", "higher"):
            raise CompareError(f"{path}: [{metric!r}] needs better = \"lower\" or \"higher\"")
        try:
            merged[metric] = Tolerance(**fields)
        except TypeError as exc:
            raise CompareError(f"{path}: [{metric!r}]: {exc}") from exc
    return merged


def _expects_zero(results: Mapping[str, Any], metric: str) -> bool:
    return any(c.get("name") == metric and c.get("max") == 0 for c in results.get("checks", []))


def judge(metric: str, tol: Tolerance, base: Any, cur: Any, *, expects_zero: bool) -> Status:
    """The status of one metric moving from `base` to `cur` under `tol`."""
    if base is None and cur is None:
        return "same"
    if base is None or cur is None:
        return "changed"
    base, cur = float(base), float(cur)
    if base == cur:
        return "same"
    worse = cur > base if tol.better == "lower" else cur < base
    if tol.exact:   # judged only where zero is expected (e.g. duplicates in an unsafe variant vary)
        if not expects_zero:
            return "changed"
        return "regression" if worse else "improved"
    delta = abs(cur - base)
    beyond = delta > tol.floor
    if tol.ratio is not None:
        low, high = sorted((base, cur))
        beyond &= high > low * (1 + tol.ratio) if low > 0 else True
    if tol.absolute is not None:
        beyond &= delta > tol.absolute
    if not beyond:
        return "same"
    return "regression" if worse else "improved"


def stolen(results: Mapping[str, Any]) -> float | None:
    """The run's `host.steal_share` (None where not recorded: older results, an interrupted run)."""
    share = (results.get("host") or {}).get("steal_share")
    return float(share) if isinstance(share, (int, float)) else None


def compare_one(key: Key, base: Mapping[str, Any], cur: Mapping[str, Any],
                tolerances: Mapping[str, Tolerance], envelope: Envelope | None = None,
                steal_limit: float = STEAL_LIMIT) -> list[Change]:
    """Every change between two results of the same experiment and shop, including 'same'; with
    an `envelope`, a metric's baseline value is the worst of its values there; a timing metric's
    regression in a run whose host stole more than `steal_limit` of the CPU is "noisy"."""
    exp, system = key
    steal = stolen(cur)
    changes: list[Change] = []
    was, now = status_of(base), status_of(cur)
    if "not-applicable" in (was, now):
        # one side was not run (nothing of the experiment applies to the shop): nothing to compare
        if was != now:
            changes.append(Change(exp, system, "verdict", WORDS[was], WORDS[now], "changed",
                                  "not applicable on one side: the shop run was not made"))
        return changes
    if was != now:
        if was == "pass":
            changes.append(Change(exp, system, "verdict", WORDS[was], WORDS[now], "regression",
                                  f"may not flip to {now}"))
        else:
            changes.append(Change(exp, system, "verdict", WORDS[was], WORDS[now],
                                  "improved" if now == "pass" else "changed"))
    base_checks = {c["name"]: c for c in base.get("checks", [])}
    for check in cur.get("checks", []):
        before = base_checks.get(check["name"])
        if before is not None and before.get("passed") and not check.get("passed"):
            changes.append(Change(exp, system, f"check: {check['name']}", before.get("observed"),
                                  check.get("observed"), "regression", f"expected {check.get('expected')}"))
    for note in _notes(base, cur):
        changes.append(Change(exp, system, note[0], note[1], note[2], "note", note[3]))
    for metric, tol in tolerances.items():
        b, c = lookup(dict(base), metric), lookup(dict(cur), metric)
        rule = tol.text()
        seen = (envelope or {}).get(metric) or []
        bound = worst(tol, seen) if len(seen) > 1 else None
        if bound is not None:
            b, rule = bound, f"{rule}; worst of {len(seen)} baseline runs"
        status = judge(metric, tol, b, c, expects_zero=_expects_zero(cur, metric) or _expects_zero(base, metric))
        if status == "regression" and not tol.exact and steal is not None and steal > steal_limit:
            status = "noisy"
            rule = f"{rule}; the host stole {steal:.0%} of the CPU in this run (over {steal_limit:.0%}): not judged"
        changes.append(Change(exp, system, metric, b, c, status, rule, room_used(tol, b, c)))
    return changes


def _notes(base: Mapping[str, Any], cur: Mapping[str, Any]) -> Iterable[tuple[str, Any, Any, str]]:
    """Differences that make the numbers less comparable (not regressions in themselves)."""
    if base.get("profile") != cur.get("profile"):
        yield "profile", base.get("profile"), cur.get("profile"), "different profiles: numbers not like for like"
    b_digest = (base.get("schedule") or {}).get("digest")
    c_digest = (cur.get("schedule") or {}).get("digest")
    if b_digest != c_digest:
        yield "arrival schedule", b_digest, c_digest, "different arrivals (seed or experiment changed)"


def compare_sets(baseline: Mapping[Key, Mapping[str, Any]], current: Mapping[Key, Mapping[str, Any]],
                 tolerances: Mapping[str, Tolerance] = TOLERANCES,
                 envelopes: Mapping[Key, Envelope] | None = None, *, ran_only: bool = False,
                 steal_limit: float = STEAL_LIMIT) -> list[Change]:
    """All changes between two result sets, in baseline order, then what is new; `envelopes`
    (load_envelopes) widen the baseline's numbers to the worst of its runs; `ran_only` judges only
    the shop runs `current` has (a part of the set: the rest of the baseline is not "missing");
    `steal_limit` as in compare_one (ValueError unless 0 <= steal_limit <= 1)."""
    if not 0.0 <= steal_limit <= 1.0:
        raise ValueError(f"steal limit {steal_limit!r}: expected a share between 0 and 1")
    changes: list[Change] = []
    for key, base in baseline.items():
        cur = current.get(key)
        if cur is None and ran_only:
            continue
        if cur is None:
            changes.append(Change(*key, "results", "present", "missing", "missing", "not run this time"))
            continue
        changes.extend(compare_one(key, base, cur, tolerances, (envelopes or {}).get(key), steal_limit))
    for key in current:
        if key not in baseline:
            changes.append(Change(*key, "results", None, "present", "new", "no baseline yet"))
    return changes


def regressions(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.status in ("regression", "missing")]


def near_misses(changes: Iterable[Change], share: float = NEAR_MISS) -> list[Change]:
    """The metrics judged "same" that used at least `share` of their rule's room, closest first:
    not regressions, but where noise is nearest to failing a run (a candidate for a wider rule, a
    longer load or more baseline runs)."""
    close = [c for c in changes if c.status == "same" and c.room_used is not None and c.room_used >= share]
    return sorted(close, key=lambda c: -(c.room_used or 0.0))
