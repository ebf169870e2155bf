"""Analysis of a run directory with pandas: every shop's results and history as DataFrames.

A run directory is `reports/runs/<run-id>/` holding `<experiment>/<shop>/{results.json,
history.jsonl}` (a shop whose results.json is missing, e.g. an interrupted run, is skipped).

    orders_frame(history)    one row per order key: what was sent, how it completed, what the shop did
    timeline_frame(history)  one row per bucket of `bucket_s` seconds since t0
    export_csv(run)          `<experiment>/<shop>/{orders,timeline}.csv` next to each results.json

Times in the frames are seconds since the run's t0 (columns ending in `_s`) and durations are ms;
latency percentiles use the checkers' HDR semantics, so they equal the numbers in results.json.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.checkers.distribution import percentile
from harness.checkers.orders import shop_key
from harness.checkers.timeline import FaultSpan, bucket_count, bucket_index, fault_windows, run_end, t0
from harness.history import FAIL, INFO, OK, Record, load
from harness.shops import SHOP_NAMES  # the registry: data only, no adapter

SYSTEMS = SHOP_NAMES   # report order: the registry's
ORDER_COLUMNS = (
    "ref", "outcome", "status", "order_id", "error", "product", "size",
    "intended_s", "sent_s", "completed_s", "brew_started_s", "brewed_s", "served_s",
    "lag_ms", "acceptance_ms", "response_ms", "fulfilment_ms", "brews", "servings", "barista",
)
TIMELINE_COLUMNS = (
    "t", "sent", "accepted", "rejected", "unknown", "brewed", "served",
    "acceptance_p50", "acceptance_p99", "fulfilment_p50", "fulfilment_p99", "backlog", "lag_max_ms", "in_fault",
    "replicas",
)


@dataclass
class ShopRun:
    """One experiment on one shop: its results document and its history records."""

    experiment: str
    system: str
    path: Path
    results: dict[str, Any]
    history: list[Record]
    _orders: pd.DataFrame | None = field(default=None, repr=False)
    _timeline: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def t0(self) -> float:
        return t0(self.history)

    @property
    def end_s(self) -> float:
        """The run end in seconds since t0."""
        return run_end(self.history) - self.t0

    def windows(self) -> list[FaultSpan]:
        return fault_windows(self.history)

    def orders(self) -> pd.DataFrame:
        if self._orders is None:
            self._orders = orders_frame(self.history)
        return self._orders

    def timeline(self) -> pd.DataFrame:
        if self._timeline is None:
            self._timeline = timeline_frame(self.history)
        return self._timeline


@dataclass(frozen=True)
class RunData:
    """Every shop run of one run directory, in (experiment, sync before async) order."""

    path: Path
    run_id: str
    shops: list[ShopRun]

    def experiments(self) -> list[str]:
        return list(dict.fromkeys(s.experiment for s in self.shops))

    def shop(self, experiment: str, system: str) -> ShopRun | None:
        return next((s for s in self.shops if s.experiment == experiment and s.system == system), None)

    def of(self, experiment: str) -> list[ShopRun]:
        return [s for s in self.shops if s.experiment == experiment]


def _system_order(system: str) -> tuple[int, str]:
    return (SYSTEMS.index(system), system) if system in SYSTEMS else (len(SYSTEMS), system)


def load_run(run_dir: Path) -> RunData:
    """Every `<experiment>/<shop>/` of run_dir that has both results.json and history.jsonl.

    Experiments keep the order of summary.json when there is one, else alphabetical.
    Raises FileNotFoundError when run_dir holds no shop run at all.
    """
    run_dir = Path(run_dir)
    order: list[str] = []
    summary = run_dir / "summary.json"
    if summary.is_file():
        order = list(dict.fromkeys(row["experiment"] for row in json.loads(summary.read_text())))
    shops: list[ShopRun] = []
    for results_path in sorted(run_dir.glob("*/*/results.json")):
        history_path = results_path.parent / "history.jsonl"
        if not history_path.is_file():
            continue
        results = json.loads(results_path.read_text())
        shops.append(ShopRun(results.get("experiment", results_path.parent.parent.name),
                             results.get("system", results_path.parent.name), results_path.parent,
                             results, load(history_path)))
    if not shops:
        raise FileNotFoundError(f"{run_dir}: no <experiment>/<shop>/results.json with a history.jsonl")
    rank = {name: i for i, name in enumerate(order)}
    shops.sort(key=lambda s: (rank.get(s.experiment, len(rank)), s.experiment, _system_order(s.system)))
    return RunData(run_dir, run_dir.name, shops)


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000


def orders_frame(history: Sequence[Record]) -> pd.DataFrame:
    """One row per order key (the ref, or "order:<id>" for shop records without one).

    Invoked orders (first invoke wins) with their first completion; outcome is ok/fail/info, info
    also when no completion was recorded; "dropped" for an arrival the generator never sent and
    "none" for something the shop brewed or served that was never invoked (unexpected).
    brewed_s/served_s are the first brew and serving, brews/servings how many there were.
    """
    origin = t0(history)

    def rel(value: Any) -> float | None:
        return None if value is None else float(value) - origin

    rows: dict[str, dict[str, Any]] = {}
    completions: dict[str, Record] = {}
    for r in history:
        if r.get("type") in (OK, FAIL, INFO):
            completions.setdefault(str(r["ref"]), r)
    for r in history:
        kind = r.get("type")
        if kind == "invoke" and str(r["ref"]) not in rows:
            ref = str(r["ref"])
            done = completions.get(ref, {})
            order = r.get("order") or {}
            intended, sent, completed = float(r["intended"]), r.get("sent"), done.get("time")
            outcome = done.get("type", INFO)
            rows[ref] = {
                "ref": ref, "outcome": outcome, "status": done.get("status"), "order_id": done.get("order_id"),
                "error": done.get("error"), "product": order.get("product"), "size": order.get("size"),
                "intended_s": intended - origin, "sent_s": rel(sent), "completed_s": rel(completed),
                "lag_ms": _ms(intended, sent), "response_ms": _ms(intended, completed),
                "acceptance_ms": _ms(intended, completed) if outcome == OK else None,
            }
        elif kind == "dropped" and str(r["ref"]) not in rows:
            rows[str(r["ref"])] = {"ref": str(r["ref"]), "outcome": "dropped", "error": r.get("reason"),
                                   "intended_s": float(r["intended"]) - origin}
    for r in history:
        kind = r.get("type")
        if kind not in ("brewed", "served"):
            continue
        row = rows.setdefault(shop_key(r), {"ref": shop_key(r), "outcome": "none", "order_id": r.get("order_id")})
        time_s = float(r["time"]) - origin
        count_key, time_key = ("brews", "brewed_s") if kind == "brewed" else ("servings", "served_s")
        row[count_key] = row.get(count_key, 0) + 1
        if row.get(time_key) is None or time_s < row[time_key]:
            row[time_key] = time_s
            if kind == "brewed":
                row["brew_started_s"], row["barista"] = rel(r.get("started")), r.get("barista")
    for row in rows.values():
        if row.get("outcome") == OK and row.get("served_s") is not None:
            row["fulfilment_ms"] = (row["served_s"] - row["intended_s"]) * 1000
        row.setdefault("brews", 0)
        row.setdefault("servings", 0)
    frame = pd.DataFrame(list(rows.values()), columns=list(ORDER_COLUMNS))
    return frame.astype({"brews": "int64", "servings": "int64"})


def timeline_frame(history: Sequence[Record], bucket_s: float = 1.0) -> pd.DataFrame:
    """One row per bucket [t, t + bucket_s) of seconds since t0, from t = 0 to the run end.

    sent / accepted / rejected / unknown count completions by their time (sent by send time);
    brewed / served count every brew and serving record (duplicates too) by their time;
    acceptance_* / fulfilment_* are HDR percentiles (ms) of the orders *intended* in the bucket
    (as the latency checker computes them); backlog is the largest sampled backlog in the bucket
    (NaN when no sample was taken); lag_max_ms the generator's worst lag; in_fault whether the
    bucket overlaps a fault window; replicas the barista pool at the bucket's end (from the
    "replicas" and "scale" records; NaN before the first). Times before t0 fall in the first bucket.
    """
    origin = t0(history)
    orders = orders_frame(history)
    times = [float(r[f]) for r in history if r.get("type") != "end" for f in ("time", "intended", "sent")
             if isinstance(r.get(f), (int, float)) and not isinstance(r.get(f), bool)]
    count = bucket_count(origin, run_end(history), bucket_s, times)
    columns: dict[str, list[Any]] = {name: [0] * count for name in ("sent", "accepted", "rejected", "unknown",
                                                                        "brewed", "served")}
    latency: dict[str, list[list[float]]] = {k: [[] for _ in range(count)] for k in ("acceptance", "fulfilment")}
    backlog: list[float] = [math.nan] * count
    lag: list[float] = [math.nan] * count

    def index(time: float) -> int:
        return bucket_index(origin, time, bucket_s)

    outcome_column = {OK: "accepted", FAIL: "rejected", INFO: "unknown"}
    for r in history:
        kind = r.get("type")
        if kind == "invoke" and r.get("sent") is not None:
            i = index(float(r["sent"]))
            columns["sent"][i] += 1
            lag[i] = max(0.0 if math.isnan(lag[i]) else lag[i], (float(r["sent"]) - float(r["intended"])) * 1000)
        elif kind in outcome_column:
            columns[outcome_column[kind]][index(float(r["time"]))] += 1
        elif kind in ("brewed", "served"):
            columns[kind][index(float(r["time"]))] += 1
        elif kind == "backlog" and r.get("total") is not None:
            i = index(float(r["time"]))
            backlog[i] = max(float(r["total"]), -math.inf if math.isnan(backlog[i]) else backlog[i])
    for row in orders.itertuples(index=False):
        if row.outcome != OK or pd.isna(row.intended_s):
            continue
        i = bucket_index(0.0, float(row.intended_s), bucket_s)
        if not pd.isna(row.acceptance_ms):
            latency["acceptance"][i].append(float(row.acceptance_ms))
        if not pd.isna(row.fulfilment_ms):
            latency["fulfilment"][i].append(float(row.fulfilment_ms))
    windows = [(w.start_s, w.end_s) for w in fault_windows(history)]
    frame = pd.DataFrame({
        "t": [round(i * bucket_s, 6) for i in range(count)],
        **columns,
        **{f"{kind}_p{p}": [percentile(values, float(p)) for values in latency[kind]]
           for kind in ("acceptance", "fulfilment") for p in (50, 99)},
        "backlog": backlog,
        "lag_max_ms": lag,
        "in_fault": [any(s < (i + 1) * bucket_s and e > i * bucket_s for s, e in windows) for i in range(count)],
        "replicas": _pool(history, origin, count, bucket_s),
    }, columns=list(TIMELINE_COLUMNS))
    return frame


def _pool(history: Sequence[Record], origin: float, count: int, bucket_s: float) -> list[float]:
    """The barista pool size at the end of each bucket (NaN until the first record)."""
    changes = sorted((float(r["time"]), float(r["count"])) for r in history
                     if r.get("type") == "replicas" and r.get("target", "barista") == "barista" and "count" in r)
    changes += sorted((float(r["time"]), float(r["to"])) for r in history
                      if r.get("type") == "scale" and not r.get("error") and r.get("to") is not None)
    changes.sort()
    pool, current, j = [], math.nan, 0
    for i in range(count):
        end = origin + (i + 1) * bucket_s
        while j < len(changes) and changes[j][0] < end:
            current = changes[j][1]
            j += 1
        pool.append(current)
    return pool


def export_csv(run: RunData) -> list[Path]:
    """Write `<experiment>/<shop>/orders.csv` and `timeline.csv` for every shop run; the paths."""
    written = []
    for shop in run.shops:
        for name, frame in (("orders.csv", shop.orders()), ("timeline.csv", shop.timeline())):
            path = shop.path / name
            frame.to_csv(path, index=False)
            written.append(path)
    return written
