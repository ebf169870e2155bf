"""The load generator against an independent open-loop tool: Vegeta, at one constant rate, on one endpoint.

Issue 19 asks that the generator's acceptance latencies at 500 orders/s be within 10% of those of
an independent open-loop load tool run at the same constant rate against the same endpoint. The
reference is Vegeta (github.com/tsenart/vegeta, Go): a constant-rate attacker that starts each
request on its own schedule whatever the earlier ones do (open loop), with keep-alive connections.

Each round runs both tools once, `--step-s` seconds each, against the trivial endpoint
(benchmarks/trivial_server.py, a separate process; `--delay-ms D` makes it answer after D/2 to
3D/2 ms, so a latency has something besides the loopback in it). Rounds alternate which tool goes first
(ABBA), so a drift of the machine falls on both alike. Both tools' latencies are summarised with
the harness's own percentiles (`harness.checkers.distribution`), in milliseconds:

- ours: from each order's *intended* time to its 202 (what `chaoscafe run` reports), and from
  its *sent* time (what a tool that times from the send would report);
- Vegeta's: its `latency` field, from the start of each request; and, computed the way ours is,
  from each request's intended time on Vegeta's own constant-rate schedule. Vegeta records no
  intended time, so its schedule is placed as early as its starts allow (anchor + i / rate, the
  anchor the least start_i - i / rate): no lag is negative, and Vegeta's lags are the smallest any
  placement gives, which makes the reference as punctual as it can honestly be.

A round passes when
- from the send (both clients timing the same thing: the request), our p50 and p99 are each within
  `--tolerance` (10%) of Vegeta's, either way;
- from the intended time, our p50 and p99 are at most `--tolerance` above Vegeta's (our own lag may
  add no more than the reference's does; being more punctual than the reference is no fault);
- and both tools had every order answered 202.
A difference within `--floor-ms` always passes: on a sub-millisecond endpoint 10% is tens of
microseconds, which no two clients on a shared machine agree on. The verdict is the majority of the
rounds.

Vegeta is found at `$CHAOSCAFE_VEGETA`, on PATH, or in ~/go/bin; install it with
`go install github.com/tsenart/vegeta/v12@v12.12.0`. Missing, the benchmark exits 2 naming the
command.

Run: python -m benchmarks.generator_reference [--rate 500] [--step-s 10] [--rounds 3] [--delay-ms 0] [--json PATH]
Exit codes: 0 most rounds passed, 1 they did not (or the run failed), 2 bad arguments, an
unwritable --json or no Vegeta, 130 interrupted.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):  # run by path: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    RESULTS_DIR,
    _dist,
    _process_cpu_s,
    fmt,
    git_revision,
    machine,
    run_step,
    stamp,
    table,
    write_json,
)
from harness.infra.ports import free_port  # noqa: E402
from harness.infra.processes import ServiceSpec, Supervisor, install_signal_handlers  # noqa: E402

VEGETA_ENV = "CHAOSCAFE_VEGETA"
VEGETA_PKG = "github.com/tsenart/vegeta/v12@v12.12.0"
SERVER = Path(__file__).resolve().parent / "trivial_server.py"
BODY = b'{"product":"Latte","size":"small","ref":"0"}'   # the shape our driver sends


def find_vegeta() -> Path | None:
    """`$CHAOSCAFE_VEGETA` if set, else `vegeta` on PATH, else ~/go/bin/vegeta; None if none is executable."""
    configured = os.environ.get(VEGETA_ENV)
    candidates = [Path(configured)] if configured else [
        *(Path(p) for p in filter(None, [shutil.which("vegeta")])), Path.home() / "go" / "bin" / "vegeta"]
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def schedule_lags_ms(starts: list[float], rate: float) -> list[float]:
    """Each start's lag (ms) against the earliest constant-rate schedule anchor + i / rate that no
    start precedes (the anchor is the least start_i - i / rate): every lag >= 0, the smallest is 0."""
    anchor = min((start - i / rate for i, start in enumerate(starts)), default=0.0)
    return [(start - (anchor + i / rate)) * 1000.0 for i, start in enumerate(starts)]


def vegeta_version(vegeta: Path) -> str | None:
    """The module version a `go install` build carries (`go version -m`), else what `vegeta --version`
    prints (empty for such a build), else None."""
    go = shutil.which("go")
    if go:
        try:
            info = subprocess.run([go, "version", "-m", str(vegeta)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            info = ""
        for line in info.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "mod" and "vegeta" in parts[1]:
                return f"{parts[1]} {parts[2]}"
    try:
        printed = subprocess.run([str(vegeta), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    text = " ".join(printed.split())
    return text if text.removeprefix("Version:").strip() else None


def vegeta_step(vegeta: Path, url: str, rate: float, duration_s: float, timeout_s: float,
                work: Path) -> dict[str, Any]:
    """One constant-rate Vegeta attack on POST {url}/orders; its hits summarised (latencies in ms).

    `lag_ms` is each hit's start against Vegeta's own ideal schedule (anchor + i / rate, the anchor
    the least start_i - i / rate, so no lag is negative),
    `latency_from_sent_ms` its `latency` field (start of the request to the end of the response),
    `latency_ms` lag + latency (from the intended time, as ours), over the hits answered 202;
    `cpu_cores` is the attacker's CPU over the attack's wall time.
    """
    targets, body, results = work / "targets.txt", work / "body.json", work / "results.bin"
    body.write_bytes(BODY)
    targets.write_text(f"POST {url}/orders\nContent-Type: application/json\n@{body}\n")
    attack = [str(vegeta), "attack", f"-rate={round(rate)}/1s", f"-duration={round(duration_s * 1000)}ms",
              f"-timeout={round(timeout_s * 1000)}ms",
              "-keepalive=true", "-http2=false", "-max-body=0", f"-targets={targets}", f"-output={results}"]
    started = time.monotonic()
    proc = subprocess.Popen(attack, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    cpu = 0.0
    try:
        while proc.poll() is None:
            cpu = _process_cpu_s(proc.pid) or cpu   # the last reading before it exits
            time.sleep(0.05)
        _, err = proc.communicate(timeout=duration_s + timeout_s + 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        first = [line for line in err.decode(errors="replace").splitlines() if line.strip()][:3]
        raise RuntimeError(f"vegeta attack exited {proc.returncode}: {' / '.join(first)}")
    encoded = subprocess.run([str(vegeta), "encode", "-to=json", str(results)], capture_output=True, check=True,
                             timeout=60).stdout
    hits = [orjson.loads(line) for line in encoded.splitlines() if line.strip()]
    hits.sort(key=lambda h: h["seq"])
    starts = [datetime.fromisoformat(h["timestamp"]).timestamp() for h in hits]
    lags = schedule_lags_ms(starts, rate)
    ok = [(lag, h["latency"] / 1e6) for lag, h in zip(lags, hits, strict=True) if h["code"] == 202]
    return {"tool": "vegeta", "scheduled": round(rate * duration_s), "sent": len(hits), "ok": len(ok),
            "errors": sorted({h["error"] for h in hits if h["error"]})[:5],
            "lag_ms": _dist(lags), "latency_ms": _dist([lag + ms for lag, ms in ok]),
            "latency_from_sent_ms": _dist([ms for _, ms in ok]),
            "cpu_cores": round(cpu / wall, 3) if wall > 0 else None, "wall_s": round(wall, 2)}


def ours_step(url: str, rate: float, duration_s: float, timeout_s: float, seed: int, workers: int) -> dict[str, Any]:
    """One constant-rate step with the harness's driver (benchmarks.common.run_step), in the same shape."""
    step = run_step(url, rate, duration_s, accepted_status=202, client_timeout_s=timeout_s, max_in_flight=10_000,
                    seed=seed, workers=workers)
    from_sent = step.extra.get("latency_from_sent_ms")
    return {"tool": "chaoscafe", "scheduled": step.scheduled, "sent": step.sent, "ok": step.ok,
            "errors": list(step.errors), "lag_ms": step.lag_ms, "latency_ms": step.latency_ms,
            "latency_from_sent_ms": from_sent,
            "cpu_cores": (step.extra.get("cpu") or {}).get("generator_cores"), "wall_s": step.wall_s}


def judge(ours: dict[str, Any], ref: dict[str, Any], tolerance: float, floor_ms: float) -> dict[str, Any]:
    """Our p50 and p99 against Vegeta's, from the intended time (`p50_ratio`, ...: ours may be lower,
    or higher by at most `tolerance` or `floor_ms`) and from the send (`sent_p50_ratio`, ...: within
    `tolerance` or `floor_ms` either way); `reasons` says what failed, `passed` is none did."""
    out: dict[str, Any] = {"reasons": []}
    for field, prefix, what, both_ways in (("latency_ms", "", "from the intended time", False),
                                           ("latency_from_sent_ms", "sent_", "from the send", True)):
        for key in ("p50", "p99"):
            a, b = (ours.get(field) or {}).get(key), (ref.get(field) or {}).get(key)
            if a is None or b is None:
                out["reasons"].append(f"{key} {what}: no latency ({a}, {b})")
                continue
            out[f"{prefix}{key}_ratio"] = round(a / b, 3) if b > 0 else None
            out[f"{prefix}{key}_diff_ms"] = round(a - b, 3)
            off = abs(a - b) if both_ways else a - b
            if off > max(tolerance * b, floor_ms):
                out["reasons"].append(f"{key} {what} {a:.3f} ms vs vegeta {b:.3f} ms: "
                                      f"{'off' if both_ways else 'above'} by more than {tolerance:.0%} "
                                      f"and more than {floor_ms:g} ms")
    for tool in (ours, ref):
        if tool["ok"] != tool["scheduled"]:
            out["reasons"].append(f"{tool['tool']}: {tool['ok']} of {tool['scheduled']} answered 202 {tool['errors']}")
    out["passed"] = not out["reasons"]
    return out


def render(rounds: list[dict[str, Any]]) -> str:
    headers = ["round", "tool", "sent", "202", "lag p99 ms", "lat p50 ms", "lat p99 ms", "lat max ms",
               "from sent p50/p99 ms", "cores", "verdict"]
    rows = []
    for r in rounds:
        for tool in r["order"]:
            t = r[tool]
            sent = t.get("latency_from_sent_ms") or {}
            rows.append([str(r["round"]), tool, str(t["sent"]), str(t["ok"]), fmt(t["lag_ms"]["p99"], 2),
                         fmt(t["latency_ms"]["p50"], 3), fmt(t["latency_ms"]["p99"], 3), fmt(t["latency_ms"]["max"], 2),
                         f"{fmt(sent.get('p50'), 3)} / {fmt(sent.get('p99'), 3)}",
                         fmt(t["cpu_cores"], 2),
                         ("pass" if r["judged"]["passed"] else "FAIL: " + "; ".join(r["judged"]["reasons"]))
                         if tool == "chaoscafe" else ""])
    return table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="orders per second (default 500)")
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds per tool per round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating which tool goes first (default 3)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the endpoint answers after this long (default 0)")
    parser.add_argument("--tolerance", type=float, default=0.10, help="relative difference allowed (default 0.10)")
    parser.add_argument("--floor-ms", type=float, default=0.1,
                        help="absolute difference always allowed, in ms (default 0.1)")
    parser.add_argument("--generator-workers", type=int, default=1, help="our driver's worker processes (default 1)")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="per-request timeout of both tools (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "generator-reference.json")
    parser.add_argument("--run-dir", type=Path, default=None, help="logs of the trivial server")
    args = parser.parse_args(argv)
    for name, value, ok in (("--rate", args.rate, 0 < args.rate <= 20_000 and float(args.rate).is_integer()),
                            ("--step-s", args.step_s, 0.1 <= args.step_s <= 60),
                            ("--timeout-s", args.timeout_s, 0.1 <= args.timeout_s <= 60),
                            ("--rounds", args.rounds, 1 <= args.rounds <= 20),
                            ("--delay-ms", args.delay_ms, 0 <= args.delay_ms <= 1000),
                            ("--tolerance", args.tolerance, 0 < args.tolerance < 1),
                            ("--floor-ms", args.floor_ms, 0 <= args.floor_ms),
                            ("--generator-workers", args.generator_workers, 1 <= args.generator_workers <= 16)):
        if not (math.isfinite(value) and ok):
            parser.error(f"{name}: out of range: {value!r} (--rate: a whole number in (0, 20000], Vegeta's unit; "
                         "--step-s and --timeout-s: 0.1 to 60)")
    vegeta = find_vegeta()
    if vegeta is None:
        print(f"error: Vegeta not found (${VEGETA_ENV}, PATH, ~/go/bin): install it with `go install {VEGETA_PKG}`",
              file=sys.stderr)
        return 2
    install_signal_handlers()
    run_dir = args.run_dir or RESULTS_DIR / "runs" / f"reference-{stamp()}"
    command = " ".join(["python -m benchmarks.generator_reference", *(argv if argv is not None else sys.argv[1:])])
    version = vegeta_version(vegeta)
    out: dict[str, Any] = {
        "benchmark": "generator_reference", "command": command, "started": stamp(), "git": git_revision(),
        "machine": machine(),
        "settings": {"rate": args.rate, "step_s": args.step_s, "rounds": args.rounds, "delay_ms": args.delay_ms,
                     "tolerance": args.tolerance, "floor_ms": args.floor_ms, "seed": args.seed,
                     "generator_workers": args.generator_workers, "timeout_s": args.timeout_s,
                     "reference": {"tool": "vegeta", "binary": str(vegeta), "version": version},
                     "endpoint": "benchmarks/trivial_server.py (separate process)"},
        "rounds": [], "median": None, "passed": None, "error": None,
    }
    try:
        write_json(args.json, out)   # a path that cannot be written fails now, not after the run
    except OSError as exc:
        print(f"error: --json {args.json}: cannot be written ({exc.strerror or exc})", file=sys.stderr)
        return 2
    started, code = time.monotonic(), 1
    try:
        with Supervisor(run_dir) as supervisor, tempfile.TemporaryDirectory(prefix="chaoscafe-vegeta-") as tmp:
            port = free_port()
            lifetime = args.rounds * 2 * (args.step_s + args.timeout_s + 10) + 120
            supervisor.add(ServiceSpec(
                "trivial-server", lambda i: [sys.executable, str(SERVER), "--port", str(port), "--lifetime-s",
                                             str(lifetime), "--delay-ms", str(args.delay_ms)],
                lambda i: f"http://127.0.0.1:{port}/health", ready_timeout=20.0))
            url = f"http://127.0.0.1:{port}"
            print(f"trivial server on {url} (delay {args.delay_ms:g} ms); {args.rounds} round(s) of "
                  f"{args.rate:g}/s x {args.step_s:g} s per tool; reference {vegeta}", flush=True)
            for n in range(1, args.rounds + 1):
                order = ["vegeta", "chaoscafe"] if n % 2 else ["chaoscafe", "vegeta"]
                result: dict[str, Any] = {"round": n, "order": order}
                for tool in order:
                    result[tool] = (vegeta_step(vegeta, url, args.rate, args.step_s, args.timeout_s, Path(tmp))
                                    if tool == "vegeta" else
                                    ours_step(url, args.rate, args.step_s, args.timeout_s, args.seed,
                                              args.generator_workers))
                result["judged"] = judge(result["chaoscafe"], result["vegeta"], args.tolerance, args.floor_ms)
                out["rounds"].append(result)
                print(render([result]), flush=True)
            judged = [r["judged"] for r in out["rounds"]]
            out["median"] = {key: statistics.median(j[key] for j in judged if j.get(key) is not None)
                             for key in ("p50_ratio", "p99_ratio", "p50_diff_ms", "p99_diff_ms", "sent_p50_ratio",
                                         "sent_p99_ratio", "sent_p50_diff_ms", "sent_p99_diff_ms")
                             if any(j.get(key) is not None for j in judged)}
            out["passed"] = sum(j["passed"] for j in judged) * 2 > len(judged)
            code = 0 if out["passed"] else 1
    except KeyboardInterrupt:
        out["error"], code = "interrupted", 130
    except Exception as exc:
        out["error"] = f"{exc.__class__.__name__}: {exc}"
        raise
    finally:
        out["wall_s"] = round(time.monotonic() - started, 1)
        try:
            write_json(args.json, out)
        except OSError as exc:   # the results still reach the terminal
            print(f"note: --json {args.json} could not be written: {exc}", file=sys.stderr)
        print()
        print(render(out["rounds"]))
        print(f"\nmedian over the rounds: {out['median']}; passed: {out['passed']}; json: {args.json}")
        if out["error"]:
            print(f"note: {out['error']}")
    return code


if __name__ == "__main__":
    sys.exit(main())
