"""The load generator's ceiling: the highest constant open-loop rate it sustains with lag p99 < 5 ms.

A trivial endpoint (benchmarks/trivial_server.py, 202 to POST /orders) runs as a separate
process on a free 127.0.0.1 port; the harness's real driver (`ShardedDriver`, with
`--generator-workers` worker processes as `chaoscafe run` has them) sends uniform constant-rate
schedules at increasing rates, one step each, and stops at the first rate that fails. A rate
passes when lag p99 (sent - intended) < 5 ms, nothing was dropped and every order got 202. The
ceiling is the highest rate passed before the first failure.

Run: python -m benchmarks.generator_ceiling [--rates 100,200,...] [--step-s 5] [--generator-workers N] [--json PATH]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run by path: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    LAG_LIMIT_MS,
    RESULTS_DIR,
    StepResult,
    fmt,
    git_revision,
    machine,
    parse_rates,
    run_step,
    stamp,
    table,
    write_json,
)
from harness.infra.ports import free_port  # noqa: E402
from harness.infra.processes import ServiceSpec, Supervisor, install_signal_handlers  # noqa: E402
from harness.load.shards import check_workers, default_workers  # noqa: E402

DEFAULT_RATES = "100,200,400,600,800,1000,1200,1600,2000,2400,3200,4000,5000,6000,8000,10000,12000,16000"
SERVER = Path(__file__).resolve().parent / "trivial_server.py"


def judge(step: StepResult) -> list[str]:
    """Why the step fails the ceiling criteria ([] when it passes)."""
    reasons = []
    lag_p99 = step.lag_ms["p99"]
    if lag_p99 is None or lag_p99 >= LAG_LIMIT_MS:
        reasons.append(f"lag p99 {fmt(lag_p99, 2)} ms >= {LAG_LIMIT_MS:g} ms")
    if step.dropped:
        reasons.append(f"{step.dropped} dropped")
    if step.ok != step.scheduled:
        reasons.append(f"{step.scheduled - step.ok} not answered 202: {step.errors}")
    return reasons


def render(steps: list[dict[str, Any]]) -> str:
    headers = ["rate/s", "workers", "orders", "sent/s", "lag p50 ms", "lag p99 ms", "lag max ms", "dropped", "not 202",
               "resp p99 ms", "gen cores", "server cores", "other cores", "verdict"]
    rows = []
    for s in steps:
        cpu = s["extra"].get("cpu") or {}
        rows.append([fmt(s["rate"], 0), str(s["extra"].get("workers", 1)), str(s["scheduled"]), fmt(s["send_rate"]),
                     fmt(s["lag_ms"]["p50"], 2),
                     fmt(s["lag_ms"]["p99"], 2), fmt(s["lag_ms"]["max"], 1), str(s["dropped"]),
                     str(s["scheduled"] - s["ok"] - s["dropped"]), fmt(s["latency_ms"]["p99"], 2),
                     fmt(cpu.get("generator_cores"), 2), fmt(cpu.get("measured_pids_cores"), 2),
                     fmt(cpu.get("other_cores"), 2), "pass" if s["passed"] else "FAIL: " + "; ".join(s["reasons"])])
    return table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=DEFAULT_RATES, help=f"increasing rates per second (default {DEFAULT_RATES})")
    parser.add_argument("--step-s", type=float, default=5.0, help="seconds of load per rate (default 5)")
    parser.add_argument("--client-timeout-s", type=float, default=5.0, help="per-request timeout (default 5)")
    parser.add_argument("--max-in-flight", type=int, default=10_000, help="driver's max open requests (default 10000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--generator-workers", type=int, default=None, metavar="N",
                        help=f"generator worker processes (default: the harness's, {default_workers()} on this machine)")
    parser.add_argument("--budget-s", type=float, default=300.0,
                        help="no new step starts once this much time has passed (default 300)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "generator.json", help="where to write results")
    parser.add_argument("--run-dir", type=Path, default=None, help="logs of the trivial server (default under results/runs)")
    args = parser.parse_args(argv)
    try:
        rates = parse_rates(args.rates)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 < args.step_s <= 60:
        parser.error("--step-s: must be in (0, 60]")
    try:
        workers = check_workers(args.generator_workers if args.generator_workers is not None else default_workers(),
                                "--generator-workers")
    except ValueError as exc:
        parser.error(str(exc))
    install_signal_handlers()
    run_dir = args.run_dir or RESULTS_DIR / "runs" / f"generator-{stamp()}"
    command = " ".join(["python -m benchmarks.generator_ceiling", *(argv if argv is not None else sys.argv[1:])])
    out: dict[str, Any] = {
        "benchmark": "generator_ceiling", "command": command, "started": stamp(), "git": git_revision(),
        "machine": machine(),
        "settings": {"rates": rates, "step_s": args.step_s, "client_timeout_s": args.client_timeout_s,
                     "max_in_flight": args.max_in_flight, "seed": args.seed, "process": "uniform",
                     "generator_workers": workers,
                     "lag_limit_ms": LAG_LIMIT_MS, "endpoint": "benchmarks/trivial_server.py (separate process)"},
        "steps": [], "ceiling_per_s": None, "first_failing_per_s": None, "complete": False, "error": None,
    }
    steps: list[dict[str, Any]] = out["steps"]
    started = time.monotonic()
    code = 1
    try:
        with Supervisor(run_dir) as supervisor:
            port = free_port()
            lifetime = args.budget_s + len(rates) * (args.step_s + args.client_timeout_s + 5) + 60
            spec = ServiceSpec("trivial-server",
                               lambda i: [sys.executable, str(SERVER), "--port", str(port), "--lifetime-s", str(lifetime)],
                               lambda i: f"http://127.0.0.1:{port}/health", ready_timeout=20.0)
            supervisor.add(spec)
            out["settings"]["server_pid"] = supervisor.pids()
            url = f"http://127.0.0.1:{port}"
            print(f"trivial server on {url} (pid {', '.join(map(str, supervisor.pids()))}); "
                  f"{len(rates)} rates x {args.step_s:g}s, {workers} generator worker(s)", flush=True)
            for rate in rates:
                if time.monotonic() - started > args.budget_s:
                    out["error"] = f"budget of {args.budget_s:g}s used up before rate {rate:g}/s"
                    break
                step = run_step(url, rate, args.step_s, accepted_status=202, client_timeout_s=args.client_timeout_s,
                                max_in_flight=args.max_in_flight, seed=args.seed, workers=workers,
                                cpu_pids=lambda: {p: "trivial-server" for p in supervisor.pids()})
                reasons = judge(step)
                steps.append({**step.to_dict(), "passed": not reasons, "reasons": reasons})
                print(render(steps[-1:]).splitlines()[-1], flush=True)
                if reasons:
                    out["first_failing_per_s"] = rate
                    break
                out["ceiling_per_s"] = rate
            out["complete"] = True
            code = 0
    except KeyboardInterrupt:
        out["error"] = "interrupted"
        code = 130
    except Exception as exc:
        out["error"] = f"{exc.__class__.__name__}: {exc}"
        raise
    finally:
        out["wall_s"] = round(time.monotonic() - started, 1)
        write_json(args.json, out)
        print()
        print(render(steps))
        print(f"\ngenerator ceiling: {fmt(out['ceiling_per_s'], 0)}/s "
              f"(first failing rate: {fmt(out['first_failing_per_s'], 0)}/s); json: {args.json}")
        if out["error"]:
            print(f"note: {out['error']}")
    return code


if __name__ == "__main__":
    sys.exit(main())
