"""Render the benchmarks' JSON results as Markdown (the tables and derived numbers of docs/performance.md).

Every number printed is read from the JSON files or computed from them here, never typed in.
With `--before-generator` / `--before-shops` (the same benchmarks run on an older tree, in the same
session) it first prints a before -> after table of the headline numbers.
Run: python -m benchmarks.report [--generator PATH] [--shops PATH] [--before-generator PATH] [--before-shops PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run by path: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import generator_ceiling, shop_ceiling  # noqa: E402
from benchmarks.common import RESULTS_DIR, fmt, table  # noqa: E402


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def machine_lines(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    others = [s["extra"]["cpu"].get("other_cores") for s in steps_of(data) if s["extra"].get("cpu")]
    others = [o for o in others if o is not None]
    spread = f"{min(others):.2f}-{max(others):.2f}" if others else "-"
    return [f"- command: `{data['command']}` (started {data['started']}, git {str(data.get('git'))[:12]}, "
            f"wall {fmt(data.get('wall_s'))} s, complete: {data['complete']})",
            f"- machine: nproc {m['nproc']}, CPU `{m['cpu_model']}`, Python {m['python']}, load average at start "
            f"{m['loadavg']}; other work on the machine during the steps: {spread} cores"]


def steps_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    if "steps" in data:
        return list(data["steps"])
    return [s for run in data["runs"] for s in run["steps"]]


def ceiling_step(run: dict[str, Any]) -> dict[str, Any] | None:
    return next((s for s in run["steps"] if s["rate"] == run["ceiling_per_s"]), None)


def cpu_per_order(step: dict[str, Any]) -> float | None:
    """Shop CPU milliseconds per accepted order during a step."""
    cpu = step["extra"].get("cpu") or {}
    rate = step.get("accepted_per_s")
    return cpu["measured_pids_cores"] / rate * 1000 if cpu and rate else None


def generator_section(data: dict[str, Any]) -> list[str]:
    out = ["### Generator ceiling", "", *machine_lines(data), "",
           generator_ceiling.render(data["steps"]), "",
           f"Generator ceiling: **{fmt(data['ceiling_per_s'], 0)}/s** (first failing rate: "
           f"{fmt(data['first_failing_per_s'], 0)}/s)."]
    failing = [s for s in data["steps"] if not s["passed"]]
    if failing:
        out.append(f"Lag p99 per second of the failing step ({fmt(failing[0]['rate'], 0)}/s): "
                   f"{', '.join(fmt(x, 2) for x in failing[0]['lag_p99_per_s'])} ms.")
    return out


def shops_section(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    out = ["### Shop acceptance ceilings", "", *machine_lines(data),
           f"- settings: {s['baristas']} baristas x {s['brewers']} brewers (cashier capacity {s['capacity']}, "
           f"prefetch {s['prefetch']}), brew fixed {fmt(s['brew_ms'], 0)} ms (brewing capacity c x mu = "
           f"{fmt(s['brewing_capacity_per_s'], 0)}/s), {fmt(s['step_s'], 0)} s per rate, uniform arrivals, "
           f"client timeout {fmt(s['client_timeout_s'], 0)} s", ""]
    for run in data["runs"]:
        paused = f", paused: {', '.join(run['paused'])}" if run.get("paused") else ""
        out += [f"#### {run['label']}{paused}: acceptance bound {run['bound_ms']:g} ms, "
                f">= {run['min_share']:.0%} accepted", "",
                f"Start-up {fmt(run.get('startup_s'))} s; shop CPU when idle "
                f"{fmt((run.get('idle_cpu') or {}).get('measured_pids_cores'), 3)} cores.", "",
                shop_ceiling.render(run["steps"]), "",
                f"Ceiling: **{fmt(run['ceiling_per_s'], 0)}/s**; first failing rate "
                f"{fmt(run['first_failing_per_s'], 0)}/s: {run['failure'] or '-'}.", ""]
    return out


def headline(gen: dict[str, Any] | None, shops: dict[str, Any] | None) -> list[str]:
    rows: list[list[str]] = []
    if gen:
        rows.append(["generator ceiling (lag p99 < 5 ms)", f"{fmt(gen['ceiling_per_s'], 0)}/s"])
    if shops:
        runs = {r["label"]: r for r in shops["runs"]}
        for label, run in runs.items():
            rows.append([f"{label} ceiling", f"{fmt(run['ceiling_per_s'], 0)}/s"])
        sync, asyn, paused = runs.get("sync"), runs.get("async"), runs.get("async-baristas-paused")
        if sync and asyn and sync["ceiling_per_s"] and asyn["ceiling_per_s"]:
            rows.append(["async / sync acceptance ceiling", f"{asyn['ceiling_per_s'] / sync['ceiling_per_s']:.2f}"])
        if sync and paused and sync["ceiling_per_s"] and paused["ceiling_per_s"]:
            rows.append(["async (baristas paused) / sync", f"{paused['ceiling_per_s'] / sync['ceiling_per_s']:.2f}"])
        brew_run = runs.get((shops.get("brew_limited") or {}).get("label", ""))
        if paused and brew_run and paused["ceiling_per_s"] and brew_run["ceiling_per_s"]:
            rows.append([f"async (baristas paused) / {brew_run['label']}",
                         f"{paused['ceiling_per_s'] / brew_run['ceiling_per_s']:.2f}"])
        if gen and sync and gen["ceiling_per_s"] and sync["ceiling_per_s"]:
            rows.append(["generator ceiling / sync ceiling", f"{gen['ceiling_per_s'] / sync['ceiling_per_s']:.2f}"])
        for label, run in runs.items():
            step = ceiling_step(run)
            if step is not None and (ms := cpu_per_order(step)) is not None:
                cpu = step["extra"]["cpu"]
                parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu["by_process"].items(), key=lambda kv: -kv[1]))
                rows.append([f"{label}: shop CPU per accepted order at its ceiling",
                             f"{ms:.1f} ms ({cpu['measured_pids_cores']:.2f} cores at {fmt(step['accepted_per_s'])}/s: "
                             f"{parts}; generator {cpu['generator_cores']:.2f}, other work {cpu['other_cores']:.2f})"])
        brew = shops.get("brew_limited")
        if brew:
            run = runs[brew["label"]]
            first = run["steps"][0] if run["steps"] else None
            rows.append([f"{brew['label']}: c x mu", f"{brew['c']} x {brew['mu_per_s']:g}/s = {brew['c_times_mu']:g}/s"])
            rows.append([f"{brew['label']}: measured ceiling (bound {brew['bound_ms']:g} ms)",
                         f"{fmt(brew['measured_ceiling_per_s'], 0)}/s"])
            if first and first["latency_ms"]["p50"]:
                eff = brew["c"] / (first["latency_ms"]["p50"] / 1000)
                rows.append([f"{brew['label']}: c / acceptance p50 at {fmt(first['rate'], 0)}/s (effective c x mu)",
                             f"{brew['c']} / {first['latency_ms']['p50']:.1f} ms = {eff:.1f}/s"])
    return ["### Headline (computed from the JSON)", "", table(["what", "value"], rows, align_numbers=False)]


def _headline_numbers(gen: dict[str, Any] | None, shops: dict[str, Any] | None) -> dict[str, str]:
    """{what: value} of one tree's results: ceilings, served/s and CPU per order at each shop's ceiling."""
    out: dict[str, str] = {}
    if gen:
        out["generator ceiling (lag p99 < 5 ms)"] = f"{fmt(gen['ceiling_per_s'], 0)}/s"
    runs = {r["label"]: r for r in (shops or {}).get("runs", [])}
    for label, run in runs.items():
        out[f"{label}: acceptance ceiling"] = f"{fmt(run['ceiling_per_s'], 0)}/s"
        step = ceiling_step(run)
        if step is not None:
            if step.get("served_per_s") is not None:
                out[f"{label}: served/s at its ceiling"] = f"{fmt(step['served_per_s'])}/s"
            # during the step, as every tree's JSON has it (the headline's measure too)
            if (ms := cpu_per_order(step)) is not None:
                out[f"{label}: shop CPU per accepted order at its ceiling, during the step"] = f"{ms:.2f} ms"
            if step.get("shop_cpu_ms_per_order") is not None:   # newer JSON only: until the shop was idle
                out[f"{label}: shop CPU per accepted order at its ceiling, until idle"] = \
                    f"{step['shop_cpu_ms_per_order']:.2f} ms"
        served = [s["served_per_s"] for s in run["steps"] if s.get("served_per_s") is not None]
        if served:
            out[f"{label}: highest served/s in any step"] = f"{fmt(max(served))}/s"
    sync, asyn = runs.get("sync"), runs.get("async")
    if sync and asyn and sync["ceiling_per_s"] and asyn["ceiling_per_s"]:
        out["async / sync acceptance ceiling"] = f"{asyn['ceiling_per_s'] / sync['ceiling_per_s']:.2f}"
    return out


def before_after(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """A Markdown table: what, before, after (a row for every key in either)."""
    keys = list(dict.fromkeys([*after, *before]))
    rows = [[k, before.get(k, "-"), after.get(k, "-")] for k in keys]
    return ["### Before and after (computed from the JSON)", "", table(["what", "before", "after"], rows,
                                                                         align_numbers=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, default=RESULTS_DIR / "generator.json")
    parser.add_argument("--shops", type=Path, default=RESULTS_DIR / "shops.json")
    parser.add_argument("--before-generator", type=Path, default=None, help="the generator benchmark on an older tree")
    parser.add_argument("--before-shops", type=Path, default=None, help="the shop benchmark on an older tree")
    args = parser.parse_args(argv)
    gen, shops = load(args.generator), load(args.shops)
    if gen is None and shops is None:
        print(f"no results: run the benchmarks first ({args.generator}, {args.shops})", file=sys.stderr)
        return 1
    sections: list[str] = []
    if args.before_generator or args.before_shops:
        before = [load(p) if p else None for p in (args.before_generator, args.before_shops)]
        missing = [str(p) for p, data in zip((args.before_generator, args.before_shops), before, strict=True)
                   if p and data is None]
        if missing:
            print(f"no such results: {', '.join(missing)}", file=sys.stderr)
            return 1
        sections += before_after(_headline_numbers(*before), _headline_numbers(gen, shops)) + [""]
    sections += headline(gen, shops) + [""]
    if gen:
        sections += generator_section(gen) + [""]
    if shops:
        sections += shops_section(shops)
    print("\n".join(sections).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
