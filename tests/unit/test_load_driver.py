"""The open-loop driver against a fake endpoint on loopback: one worker gives the records the driver
gave before sharding (its aiohttp code is kept below as the reference), written to a shard file
and merged into the history unchanged.

The fake endpoint answers by ref: accepted with an id (and a brew id), 429 with an error, 500, an
accepted answer that is not JSON, an empty 503, and a slow answer that times out.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from harness.history import HistoryWriter, classify, load
from harness.load.driver import OpenLoopDriver, error_kind
from harness.load.schedule import Arrival, ArrivalSchedule, build_schedule
from harness.load.shapes import Constant
from harness.load.workers import ShardedDriver

MIX = {"Latte": 1.0, "Espresso": 1.0}
SIZES = {"Latte": ("small", "large"), "Espresso": ("small",)}
TIMEOUT_S = 1.5
Record = dict[str, Any]


def answer_for(ref: int) -> tuple[int, bytes, float]:
    """(status, body, delay) the fake endpoint gives order `ref`."""
    kind = ref % 7
    if kind == 0:
        return 429, b'{"error": "line full"}', 0.0
    if kind == 1:
        return 500, b'{"error": "barista broke"}', 0.0
    if kind == 2:
        return 202, b"not json", 0.0
    if kind == 3:
        return 503, b"", 0.0
    if kind == 4:
        return 202, b'{"id": "slow"}', TIMEOUT_S + 1.5   # the customer gives up first
    if kind == 5:
        return 202, b'{"id": "o-%d", "brew_id": "b-%d"}' % (ref, ref), 0.0
    return 202, b'{"id": "o-%d"}' % ref, 0.0


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The fake endpoint (aiohttp, in a thread of its own) on a free loopback port."""
    seen: list[Any] = []

    async def orders(request: web.Request) -> web.Response:
        order = await request.json()
        seen.append(order)
        status, body, delay = answer_for(int(order["ref"]))
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, body=body, content_type="application/json")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(web.Application(), handle_signals=False)
    runner.app.router.add_post("/orders", orders)

    async def serve() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def the_schedule(n: int = 42, rate: float = 200.0) -> ArrivalSchedule:
    whole = build_schedule(Constant(rate), n / rate, process="uniform", seed=4, menu_mix=MIX, sizes=SIZES)
    assert len(whole) == n
    return whole


def legacy_records(entry_url: str, schedule: ArrivalSchedule, t0: float) -> list[Record]:
    """The driver as it was before sharding (one task and one sleep per arrival, aiohttp, json),
    reduced to what it recorded; the reference for "N=1 behaves as today"."""
    records: list[Record] = []

    async def attempt(session: aiohttp.ClientSession, order: dict[str, str]) -> tuple[str, Record]:
        status: int | None = None
        body: Any = None
        kind: str | None = None
        error: str | None = None
        try:
            async with session.post(f"{entry_url}/orders", json=order) as resp:
                status = resp.status
                body = await resp.json(content_type=None)
        except Exception as exc:
            if status is None:
                kind = error_kind(exc)
            error = f"{exc.__class__.__name__}: {exc}"[:300]
        outcome = classify(status, kind, 202)
        order_id = body.get("id") if isinstance(body, dict) else None
        if error is None and outcome != "ok" and isinstance(body, dict):
            error = str(body.get("error", ""))[:300] or None
        fields: Record = {"status": status, "order_id": order_id, "error": error, "error_kind": kind}
        if outcome == "ok" and isinstance(body, dict) and body.get("brew_id"):
            fields["brew_id"] = body["brew_id"]
        return outcome, fields

    async def send(session: aiohttp.ClientSession, arrival: Arrival) -> None:
        ref = str(arrival.index)
        order = {"product": arrival.product, "size": arrival.size, "ref": ref}
        if arrival.customer:
            order["customer"] = arrival.customer
        records.append({"type": "invoke", "ref": ref, "intended": t0 + arrival.offset_s, "sent": time.time(),
                        "order": {k: v for k, v in order.items() if k != "ref"}})
        outcome, fields = await attempt(session, order)
        records.append({"type": outcome, "ref": ref, "time": time.time(), **fields})

    async def run() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
            tasks = []
            mono_t0 = time.monotonic() + (t0 - time.time())
            for arrival in schedule.arrivals:
                delay = mono_t0 + arrival.offset_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(session, arrival)))
            await asyncio.gather(*tasks)

    asyncio.run(run())
    return records


TIMES = ("sent", "time")


def comparable(records: list[Record]) -> list[Record]:
    """Records without their clock readings, the error text cut to its class, in ref order."""
    out = []
    for r in records:
        r = {k: v for k, v in r.items() if k not in TIMES}
        if r.get("error"):
            r["error"] = r["error"].split(":", 1)[0]
        out.append(r)
    return sorted(out, key=lambda r: (int(r["ref"]), r["type"] != "invoke"))


def run_sharded(entry_url: str, schedule: ArrivalSchedule, workers: int, tmp: Path) -> list[Record]:
    """The harness's way: shards' files merged into a history by `absorb`."""
    driver = ShardedDriver(entry_url, schedule, workers=workers, shard_dir=tmp, accepted_status=202,
                           client_timeout_s=TIMEOUT_S, max_in_flight=1000)
    with HistoryWriter(tmp / "history.jsonl") as history:
        try:
            driver.start()
            t0 = time.time() + 0.3
            history.write({"type": "run", "t0": t0})
            stats = driver.run(t0)
        finally:
            driver.close()
        history.absorb(driver.shard_files)
    assert stats.sent == len(schedule) and stats.completed == len(schedule)
    records = load(tmp / "history.jsonl")
    assert records[0]["type"] == "run" and records[-1]["type"] == "end"
    body = records[1:-1]
    assert sorted(r["intended"] for r in body if r["type"] == "invoke") == sorted(t0 + a.offset_s for a in schedule)
    assert [r["sent"] for r in body if r["type"] == "invoke"] == sorted(r["sent"] for r in body if r["type"] == "invoke")
    return [{**r, "intended": round(r["intended"] - t0, 6)} if "intended" in r else r for r in body]


def test_one_worker_records_what_the_driver_recorded_before(endpoint: str, tmp_path: Path) -> None:
    schedule = the_schedule()
    t0 = time.time() + 0.3
    before = [{**r, "intended": round(r["intended"] - t0, 6)} if "intended" in r else r
              for r in legacy_records(endpoint, schedule, t0)]
    now = run_sharded(endpoint, schedule, 1, tmp_path)
    assert comparable(now) == comparable(before)
    outcomes = {r["ref"]: r for r in now if r["type"] != "invoke"}
    assert outcomes["5"]["brew_id"] == "b-5" and outcomes["5"]["type"] == "ok"
    assert outcomes["2"]["type"] == "ok" and outcomes["2"]["error"].startswith("JSONDecodeError")
    assert outcomes["0"] == {**outcomes["0"], "type": "fail", "status": 429, "error": "line full"}
    assert outcomes["3"]["type"] == "info" and outcomes["3"]["error"] is None
    assert outcomes["4"]["type"] == "info" and outcomes["4"]["error_kind"] == "timeout"


def test_two_workers_record_the_same_as_one(endpoint: str, tmp_path: Path) -> None:
    schedule = the_schedule(28)
    one = run_sharded(endpoint, schedule, 1, tmp_path / "one")
    two = run_sharded(endpoint, schedule, 2, tmp_path / "two")
    assert comparable(two) == comparable(one)


def test_stats_histograms_hold_the_lag_and_accepted_latency(endpoint: str) -> None:
    records: list[Record] = []
    driver = OpenLoopDriver(endpoint, the_schedule(14), time.time() + 0.2, accepted_status=202,
                            client_timeout_s=TIMEOUT_S, max_in_flight=1000, record=records.append)
    stats = driver.run()
    summary = stats.summary()
    assert summary["sent"] == 14 and stats.lag.get_total_count() == 14
    assert stats.latency.get_total_count() == stats.outcomes["ok"] == sum(1 for r in records if r["type"] == "ok")
    assert 0 < summary["lag_ms"]["p99"] <= summary["lag_ms"]["max"]


def test_arrivals_beyond_max_in_flight_are_dropped(endpoint: str) -> None:
    records: list[Record] = []
    slow = [a for a in the_schedule(42, rate=2000).arrivals if a.index % 7 == 4][:3]   # all time out
    driver = OpenLoopDriver(endpoint, slow, time.time() + 0.1, accepted_status=202, client_timeout_s=TIMEOUT_S,
                            max_in_flight=2, record=records.append)
    stats = driver.run()
    assert stats.dropped == 1 and [r["ref"] for r in records if r["type"] == "dropped"] == [slow[2].ref]
    assert records[-1]["type"] == "info"


@pytest.mark.parametrize("bad", ["ftp://127.0.0.1:1", "http://"])
def test_a_worker_that_fails_fails_the_run_and_is_gone(tmp_path: Path, bad: str) -> None:
    from harness.load.workers import WorkerError

    driver = ShardedDriver(bad, the_schedule(4), workers=2, shard_dir=tmp_path, accepted_status=202,
                           client_timeout_s=TIMEOUT_S, max_in_flight=10)
    try:
        driver.start()
        with pytest.raises(WorkerError, match="generator worker . failed: ValueError: base_url"):
            driver.run(time.time() + 0.1)
    finally:
        driver.close()
    assert all(not p.is_alive() for p in driver._procs)

