"""Each shop's acceptance ceiling: the highest constant open-loop rate whose orders are accepted.

For each shop (sync, async) the real services start on a fresh Infrastructure (Toxiproxy, plus a
private RabbitMQ node for async) with the same settings (default 2 baristas x 4 brewers, cashier
capacity 8, prefetch 4, brew fixed 5 ms: a short brew, so that taking orders, not brewing, is the
limit). The real OpenLoopDriver then sends uniform constant-rate schedules through `shop.entry_url`
at increasing rates, one step each, waiting for the shop to be idle between steps, and stops at
the first rate that fails. A rate passes when >= 99% of its orders were accepted (201 sync, 202
async) and the acceptance p99, measured from the intended send time, is under the bound (100 ms).

Also, for the sync shop with brew fixed 100 ms and the same capacity, the ceiling set by brewing:
c x mu = 8 x 10/s = 80/s in theory, measured with the bound brew + 100 ms (a customer there waits
for the coffee by design). With --paused-baristas-run, also the async shop with its baristas
SIGSTOPped: the acceptance path alone (order service, outbox relay, broker).

For a shop on a broker, first the raw-broker row: persistent publishes with confirms, W in flight
(W = 1, 16, 64, 256), through a Toxiproxy proxy of their own to the same broker and into a quorum
queue, so that the shop's ceiling reads as a fraction of what its broker allows. Each step also
gives the end-to-end rate (served/s: the step's coffees served, over the time until the last was
served) and the shop's CPU per accepted order from the step's start until it was idle again.

Run: python -m benchmarks.shop_ceiling [--shop sync|async|both] [--rates ...] [--step-s 5] [--json PATH]
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
    LEAD_S,
    RESULTS_DIR,
    CpuMeter,
    StepResult,
    _process_cpu_s,  # noqa: E402
    fmt,
    git_revision,
    machine,
    parse_rates,
    run_step,
    stamp,
    table,
    write_json,
)
from cafe.brewing import BrewTime  # noqa: E402
from harness.infra.processes import install_signal_handlers  # noqa: E402
from harness.infra.stack import Infrastructure  # noqa: E402
from harness.shops import SHOP_NAMES, SHOPS, TRAITS, Shop, ShopSettings  # noqa: E402

DEFAULT_RATES = "25,50,100,200,300,400,600,800,1000,1200,1500,2000"
DEFAULT_BREW_RATES = "40,60,70,75,80,85,90,100,120"
SETTLE_POLL_S = 0.25
IDLE_S = 3.0          # the shop's own CPU use with no orders, measured once after start
RAW_QUEUE = "bench.raw-publishes"   # the raw-broker row's quorum queue (bound to nothing the shop reads)
RAW_ROUTING_KEY = "RawPublish"
RAW_WINDOWS = (1, 16, 64, 256)
PUBLISHES_PER_ORDER = 3   # the async shop publishes CoffeeOrdered, CoffeeBrewed and CoffeeServed
RAW_BODY = b'{"eventType":"CoffeeOrdered","payload":{"product":"Latte","size":"small"}}'.ljust(320, b" ")


def raw_broker(shop: Shop, infra: Infrastructure, windows: tuple[int, ...], seconds: float) -> list[dict[str, Any]]:
    """What the shop's broker allows: persistent publishes with confirms, up to W in flight
    (cafe.amqp.Link, as the services publish), through a Toxiproxy proxy of their own to the same
    broker, into a quorum queue like the shop's (declared here, deleted after). One row per W:
    confirmed publishes/s over `seconds` and the CPU per publish of the broker and Toxiproxy."""
    import asyncio

    import pika

    from cafe.amqp import Link
    from cafe.topology import EXCHANGE

    broker = infra.broker
    assert broker is not None
    settings = shop.settings
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(RAW_QUEUE, durable=True,
                              arguments=settings.queues.arguments(limited=False))
        channel.queue_bind(RAW_QUEUE, EXCHANGE, routing_key=RAW_ROUTING_KEY)
    finally:
        connection.close()
    proxy = infra.toxiproxy.create_proxy("bench-raw-broker", f"127.0.0.1:{broker.amqp_port}")
    pids = {pid: name for pid, name in shop_pids(shop, infra).items() if name in ("rabbitmq", "toxiproxy")}

    async def publish_for(window: int) -> dict[str, Any]:
        link = Link("bench-raw", broker.amqp_url_at(proxy.listen_port), queues=settings.queues, window=window)
        link.start()
        try:
            await asyncio.wait_for(link.connected.wait(), 15)
            sent, deadline = 0, time.monotonic() + seconds
            cpu0, started = cpu_seconds(pids), time.monotonic()
            while time.monotonic() < deadline:   # rounds of 2 W publishes: the window stays full
                await asyncio.gather(*(link.publish(RAW_ROUTING_KEY, str(sent + i), RAW_BODY)
                                       for i in range(2 * window)))
                sent += 2 * window
            wall, cpu = time.monotonic() - started, cpu_seconds(pids) - cpu0
        finally:
            await link.stop()
        return {"window": window, "published": sent, "seconds": round(wall, 2),
                "publishes_per_s": round(sent / wall, 1), "broker_cpu_ms_per_publish": round(cpu * 1000 / sent, 3)}

    try:
        rows = []
        for window in windows:
            rows.append(asyncio.run(publish_for(window)))
            print(f"raw broker, W={window}: {rows[-1]['publishes_per_s']:g} confirmed persistent publishes/s "
                  f"(broker + toxiproxy {rows[-1]['broker_cpu_ms_per_publish']:g} ms CPU each)", flush=True)
        return rows
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            connection.channel().queue_delete(RAW_QUEUE)
        finally:
            connection.close()


def shop_pids(shop: Shop, infra: Infrastructure) -> dict[int, str]:
    """Every process the shop runs on ({pid: name}): its services, Toxiproxy and (async) the broker's BEAM."""
    pids = {r.pid: r.name for service in shop.supervisor.services() for r in shop.supervisor.replicas(service)
            if r.pid is not None and r.alive()}
    if infra.toxiproxy_server.pid is not None:
        pids[infra.toxiproxy_server.pid] = "toxiproxy"
    if infra.broker is not None and (beam := infra.broker.beam_pid()) is not None:
        pids[beam] = "rabbitmq"
    return pids


def served_count(shop: Shop) -> int | None:
    """Coffees served so far, read from the shop's service (None if it does not answer)."""
    try:
        return len(shop.served())
    except Exception:  # a busy service may not answer at once
        return None


def served_rate(shop: Shop, since: float) -> dict[str, Any]:
    """End to end: the coffees served from wall time `since` on (a step's first intended send) and
    the rate at which they were served, count / (last served_at - since); None when unreadable."""
    try:
        times = [float(row["served_at"]) for row in shop.served() if row.get("served_at") is not None]
    except Exception:  # a busy service may not answer at once
        return {"served": None, "served_per_s": None}
    mine = [t for t in times if t >= since]
    span = max(mine) - since if mine else 0.0
    return {"served": len(mine), "served_per_s": round(len(mine) / span, 1) if span > 0 else None}


def cpu_seconds(pids: dict[int, str]) -> float:
    """CPU seconds (user + system) used so far by `pids` together."""
    return sum(_process_cpu_s(pid) for pid in pids)


def settle(shop: Shop, accepted: int, limit_s: float) -> dict[str, Any]:
    """Wait (at most limit_s) until the shop is idle: at least `accepted` coffees served (every order
    accepted so far) and a backlog of 0 on two polls in a row.

    Served counts come from the services' own databases. The backlog alone is not enough: the async
    shop's comes from RabbitMQ's management API, which lagged several seconds behind the queue here.
    """
    started = time.monotonic()
    zeros, backlog, served = 0, None, None
    while True:
        try:
            backlog = int(shop.backlog()["total"])
        except Exception:  # a busy service may not answer at once: try again
            backlog = None
        zeros = zeros + 1 if backlog == 0 else 0
        if zeros >= 2:
            served = served_count(shop)
        done = zeros >= 2 and served is not None and served >= accepted
        waited = time.monotonic() - started
        if done or waited >= limit_s:
            unserved = None if served is None else max(0, accepted - served)
            return {"settle_s": round(waited, 2), "settled": done, "backlog_left": backlog, "unserved_left": unserved}
        time.sleep(SETTLE_POLL_S)


def judge(step: StepResult, bound_ms: float, min_share: float) -> list[str]:
    """Why the step fails the acceptance criteria ([] when it passes)."""
    reasons = []
    if step.share_ok < min_share:
        reasons.append(f"accepted {step.share_ok:.1%} < {min_share:.0%} ({step.dropped} dropped; {step.errors})")
    p99 = step.latency_ms["p99"]
    if p99 is None or p99 >= bound_ms:
        reasons.append(f"acceptance p99 {fmt(p99, 1)} ms >= {bound_ms:g} ms")
    return reasons


def render(steps: list[dict[str, Any]]) -> str:
    headers = ["rate/s", "orders", "accepted/s", "accepted", "acc p50 ms", "acc p99 ms", "acc max ms",
               "gen lag p99 ms", "unserved after", "settle s", "served/s", "shop ms/order", "gen cores", "shop cores",
               "other cores", "verdict"]
    rows = []
    for s in steps:
        cpu = s["extra"].get("cpu") or {}
        verdict = "pass" if s["passed"] else "FAIL: " + "; ".join(s["reasons"])
        if s["generator_limited"]:
            verdict += " (generator lag p99 >= 5 ms)"
        rows.append([fmt(s["rate"], 0), str(s["scheduled"]), fmt(s["accepted_per_s"]), f"{s['share_ok']:.2%}",
                     fmt(s["latency_ms"]["p50"], 1), fmt(s["latency_ms"]["p99"], 1), fmt(s["latency_ms"]["max"], 0),
                     fmt(s["lag_ms"]["p99"], 2), fmt(s["unserved_after"]), fmt(s["settle"]["settle_s"]),
                     fmt(s.get("served_per_s"), 1), fmt(s.get("shop_cpu_ms_per_order"), 2),
                     fmt(cpu.get("generator_cores"), 2), fmt(cpu.get("measured_pids_cores"), 2),
                     fmt(cpu.get("other_cores"), 2), verdict])
    return table(headers, rows)


def measure(label: str, kind: str, settings: ShopSettings, rates: list[float], bound_ms: float,
            args: argparse.Namespace, run_dir: Path, into: list[dict[str, Any]], *,
            pause: tuple[str, ...] = ()) -> dict[str, Any]:
    """Start `kind` with `settings`, step through `rates` until one fails; everything stopped on exit.

    `pause`: services SIGSTOPped right after start (and for the whole run), e.g. the async baristas to
    see the order service and broker without the rest of the pipeline; then the shop is not waited on
    between steps (its backlog only grows). The result is appended to `into` first, so a failure or
    Ctrl-C still leaves the steps done so far.
    """
    result: dict[str, Any] = {"label": label, "kind": kind, "bound_ms": bound_ms, "min_share": args.min_share,
                              "rates": rates, "steps": [], "warmup": None, "ceiling_per_s": None,
                              "first_failing_per_s": None, "failure": None, "complete": False,
                              "paused": list(pause)}
    into.append(result)
    steps: list[dict[str, Any]] = result["steps"]
    started = time.monotonic()
    print(f"\n== {label}: starting the {kind} shop ({settings.baristas} baristas x {settings.brewers} brewers, "
          f"brew {settings.brew.distribution} {settings.brew.mean_ms:g} ms); acceptance bound {bound_ms:g} ms",
          flush=True)
    with Infrastructure(run_dir / label / "infra", broker=TRAITS[kind].needs_broker) as infra, \
            SHOPS[kind](infra, settings) as shop:
        result["startup_s"] = round(time.monotonic() - started, 1)
        result["shop"] = shop.describe()
        common = {"accepted_status": shop.accepted_status, "client_timeout_s": args.client_timeout_s,
                  "max_in_flight": args.max_in_flight, "cpu_pids": lambda: shop_pids(shop, infra)}
        idle = CpuMeter(time.time(), IDLE_S, lambda: shop_pids(shop, infra))
        idle.start()
        idle.join(timeout=IDLE_S + 5)
        result["idle_cpu"] = idle.result
        if TRAITS[kind].needs_broker and args.raw_broker_s > 0 and not pause:
            result["raw_broker"] = raw_broker(shop, infra, RAW_WINDOWS, args.raw_broker_s)
        for service in pause:
            shop.supervisor.pause(service)
        drain = not pause
        accepted = 0  # every order accepted so far: the shop is idle once all are served

        def calm_down() -> dict[str, Any]:
            if not drain:
                return {"settle_s": None, "settled": None, "backlog_left": None, "unserved_left": None}
            return settle(shop, accepted, args.settle_s)

        if args.warmup_s > 0:
            warm = run_step(shop.entry_url, rates[0], args.warmup_s, seed=args.seed + 1000, **common)
            accepted += warm.ok
            result["warmup"] = {**warm.to_dict(), "settle": calm_down()}
        for rate in rates:
            if time.monotonic() - started > args.budget_s:
                result["failure"] = f"budget of {args.budget_s:g}s used up before rate {rate:g}/s"
                break
            pids = shop_pids(shop, infra)
            cpu_before, since = cpu_seconds(pids), time.time() + LEAD_S
            step = run_step(shop.entry_url, rate, args.step_s, seed=args.seed, **common)
            accepted += step.ok
            served = served_count(shop)
            after = None if served is None else max(0, accepted - served)
            calm = calm_down()
            # the whole cost of the step's orders: from its start until the shop was idle again
            cpu_ms = (cpu_seconds(pids) - cpu_before) * 1000 / step.ok if step.ok and drain else None
            end_to_end = served_rate(shop, since) if drain else {"served": None, "served_per_s": None}
            reasons = judge(step, bound_ms, args.min_share)
            lag_p99 = step.lag_ms["p99"]
            steps.append({**step.to_dict(), "passed": not reasons, "reasons": reasons, "unserved_after": after,
                          "settle": calm, "generator_limited": lag_p99 is None or lag_p99 >= LAG_LIMIT_MS,
                          "shop_cpu_ms_per_order": None if cpu_ms is None else round(cpu_ms, 3), **end_to_end})
            print(render(steps[-1:]).splitlines()[-1], flush=True)
            if reasons:
                result["first_failing_per_s"] = rate
                result["failure"] = "; ".join(reasons)
                break
            result["ceiling_per_s"] = rate
            if calm["settled"] is False:
                result["failure"] = (f"not idle within {args.settle_s:g}s after {rate:g}/s (backlog "
                                     f"{calm['backlog_left']}, unserved {calm['unserved_left']})")
                break
        result["complete"] = True
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def settings_for(args: argparse.Namespace, brew_ms: float) -> ShopSettings:
    return ShopSettings(baristas=args.baristas, brewers=args.brewers, brew=BrewTime("fixed", mean_ms=brew_ms),
                        capacity=args.baristas * args.brewers, prefetch=args.brewers,
                        barista_timeout_s=args.barista_timeout_s)


def summary_lines(out: dict[str, Any]) -> list[str]:
    runs = {r["label"]: r for r in out["runs"]}
    lines = []
    for label, run in runs.items():
        lines.append(f"{label}: ceiling {fmt(run['ceiling_per_s'], 0)}/s (bound {run['bound_ms']:g} ms; "
                     f"first failing {fmt(run['first_failing_per_s'], 0)}/s: {run['failure'] or '-'})")
    for label, run in runs.items():
        raw = run.get("raw_broker") or []
        if raw and run.get("ceiling_per_s"):
            best = max(raw, key=lambda r: r["publishes_per_s"])
            ceiling = run["ceiling_per_s"]
            lines.append(f"{label}: its broker allows {best['publishes_per_s']:g} confirmed persistent publishes/s "
                         f"(W={best['window']}; W=1: {raw[0]['publishes_per_s']:g}/s); the ceiling's "
                         f"{PUBLISHES_PER_ORDER} publishes per order use {PUBLISHES_PER_ORDER * ceiling:g}/s = "
                         f"{PUBLISHES_PER_ORDER * ceiling / best['publishes_per_s']:.0%} of it")
    ratio = out.get("ratio_async_over_sync")
    if ratio is not None:
        lines.append(f"async / sync acceptance ceiling: {ratio:.2f}")
    if "brew_limited" in out:
        b = out["brew_limited"]
        lines.append(f"sync brew-limited: c x mu = {b['c']} x {b['mu_per_s']:g}/s = {b['c_times_mu']:g}/s; "
                     f"measured {fmt(b['measured_ceiling_per_s'], 0)}/s")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", choices=(*SHOP_NAMES, "both"), default="both")
    parser.add_argument("--rates", default=DEFAULT_RATES, help=f"increasing rates per second (default {DEFAULT_RATES})")
    parser.add_argument("--step-s", type=float, default=5.0, help="seconds of load per rate (default 5)")
    parser.add_argument("--bound-ms", type=float, default=100.0, help="acceptance p99 bound (default 100)")
    parser.add_argument("--min-share", type=float, default=0.99, help="share of orders accepted (default 0.99)")
    parser.add_argument("--baristas", type=int, default=2)
    parser.add_argument("--brewers", type=int, default=4)
    parser.add_argument("--brew-ms", type=float, default=5.0, help="fixed brew time of the acceptance runs (default 5)")
    parser.add_argument("--barista-timeout-s", type=float, default=10.0)
    parser.add_argument("--brew-limited-ms", type=float, default=100.0,
                        help="fixed brew time of the sync brew-limited run (default 100; 0 skips it)")
    parser.add_argument("--brew-limited-rates", default=DEFAULT_BREW_RATES)
    parser.add_argument("--paused-baristas-run", action="store_true",
                        help="also measure the async shop with its baristas paused (order service + broker only)")
    parser.add_argument("--raw-broker-s", type=float, default=3.0,
                        help="seconds per window of the raw-broker row (shops on a broker; 0 skips it)")
    parser.add_argument("--client-timeout-s", type=float, default=5.0)
    parser.add_argument("--max-in-flight", type=int, default=10_000)
    parser.add_argument("--warmup-s", type=float, default=2.0, help="unjudged warm-up at the first rate (default 2)")
    parser.add_argument("--settle-s", type=float, default=30.0, help="max wait for an idle shop between steps")
    parser.add_argument("--budget-s", type=float, default=240.0, help="per shop: no new step after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "shops.json", help="where to write results")
    parser.add_argument("--run-dir", type=Path, default=None, help="shop logs and databases (default under results/runs)")
    args = parser.parse_args(argv)
    try:
        rates = parse_rates(args.rates)
        brew_rates = parse_rates(args.brew_limited_rates)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 < args.step_s <= 60:
        parser.error("--step-s: must be in (0, 60]")
    kinds = list(SHOP_NAMES) if args.shop == "both" else [args.shop]
    if args.paused_baristas_run and "async" not in kinds:
        parser.error("--paused-baristas-run needs --shop async or both")
    if args.baristas < 1 or args.brewers < 1 or args.brew_ms < 0 or args.brew_limited_ms < 0:
        parser.error("--baristas and --brewers must be >= 1, brew times >= 0")
    install_signal_handlers()
    run_dir = args.run_dir or RESULTS_DIR / "runs" / f"shops-{stamp()}"
    command = " ".join(["python -m benchmarks.shop_ceiling", *(argv if argv is not None else sys.argv[1:])])
    c = args.baristas * args.brewers
    out: dict[str, Any] = {
        "benchmark": "shop_ceiling", "command": command, "started": stamp(), "git": git_revision(),
        "machine": machine(),
        "settings": {"rates": rates, "step_s": args.step_s, "bound_ms": args.bound_ms, "min_share": args.min_share,
                     "baristas": args.baristas, "brewers": args.brewers, "capacity": c, "prefetch": args.brewers,
                     "brew_ms": args.brew_ms, "brewing_capacity_per_s": c * 1000 / args.brew_ms if args.brew_ms else None,
                     "client_timeout_s": args.client_timeout_s, "max_in_flight": args.max_in_flight,
                     "warmup_s": args.warmup_s, "settle_s": args.settle_s, "seed": args.seed, "process": "uniform",
                     "run_dir": str(run_dir)},
        "runs": [], "complete": False, "error": None,
    }
    code = 1
    started = time.monotonic()
    try:
        for kind in kinds:
            measure(kind, kind, settings_for(args, args.brew_ms), rates, args.bound_ms, args, run_dir, out["runs"])
            write_json(args.json, out)
        if args.paused_baristas_run:
            measure("async-baristas-paused", "async", settings_for(args, args.brew_ms), rates, args.bound_ms, args,
                    run_dir, out["runs"], pause=("barista",))
            write_json(args.json, out)
        if "sync" in kinds and args.brew_limited_ms > 0:
            label = f"sync-brew{args.brew_limited_ms:g}ms"
            bound = args.brew_limited_ms + args.bound_ms
            run = measure(label, "sync", settings_for(args, args.brew_limited_ms), brew_rates, bound, args, run_dir,
                          out["runs"])
            mu = 1000.0 / args.brew_limited_ms
            out["brew_limited"] = {"label": label, "brew_ms": args.brew_limited_ms, "c": c, "mu_per_s": mu,
                                   "c_times_mu": c * mu, "bound_ms": bound,
                                   "measured_ceiling_per_s": run["ceiling_per_s"]}
        ceilings = {r["label"]: r["ceiling_per_s"] for r in out["runs"]}
        if ceilings.get("sync") and ceilings.get("async"):
            out["ratio_async_over_sync"] = round(ceilings["async"] / ceilings["sync"], 3)
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
        for run in out["runs"]:
            print(f"\n{run['label']} (acceptance bound {run['bound_ms']:g} ms, >= {run['min_share']:.0%} accepted)")
            print(render(run["steps"]))
        print()
        print("\n".join(summary_lines(out)))
        print(f"json: {args.json}")
        if out["error"]:
            print(f"note: {out['error']}")
    return code


if __name__ == "__main__":
    sys.exit(main())
