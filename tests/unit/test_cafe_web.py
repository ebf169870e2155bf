"""cafe.web's service life without a process: `application` runs its start steps before it serves
and its stop steps after, in order (awaiting what returns an awaitable); `blocking` runs off the
event loop; `Periodic` repeats until stopped (awaiting what its call returns); `max_body` bounds
bodies; `health` and `pages` answer the same way in every service; `reply` (orjson) answers what
web.json_response did; `run` is on uvloop unless told otherwise; `serve` exits 2 on a bad config
before anything listens."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cafe.store import Database
from cafe.web import LOOP_ENV, MAX_BODY, Periodic, application, blocking, dumps, health, loads, pages, reply, run


def test_start_steps_run_before_serving_and_stop_steps_after_in_order() -> None:
    log: list[str] = []
    threads: list[str] = []

    async def ping(request: web.Request) -> web.Response:
        log.append("request")
        return web.json_response({"ok": True})

    async def opened() -> None:
        log.append("start 2 (awaited)")

    def joined() -> None:
        threads.append(threading.current_thread().name)
        log.append("stop 1 (in a thread)")

    app = application([web.get("/ping", ping)], start=[lambda: log.append("start 1"), opened],
                      stop=[blocking(joined), lambda: log.append("stop 2")])

    async def run() -> None:
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/ping")).status == 200

    asyncio.run(run())
    assert log == ["start 1", "start 2 (awaited)", "request", "stop 1 (in a thread)", "stop 2"]
    assert threads and threads[0] != threading.main_thread().name


def test_health_says_who_answers_first_and_asks_its_fields_anew() -> None:
    count = iter(range(10))

    async def twice() -> list[object]:
        async with TestClient(TestServer(application([health("waiter", "waiter-2", lambda: {"n": next(count)})]))) as c:
            return [await (await c.get("/health")).json() for _ in range(2)]

    first, second = asyncio.run(twice())
    assert list(first) == ["status", "service", "name", "n"]            # the order every service shows
    assert first == {"status": "ok", "service": "waiter", "name": "waiter-2", "n": 0} and second["n"] == 1


def test_pages_reads_a_table_by_seq_and_refuses_a_bad_limit(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", "CREATE TABLE rings (seq INTEGER PRIMARY KEY AUTOINCREMENT, brew_id TEXT);")
    with db.transaction() as tx:
        tx.executemany("INSERT INTO rings (brew_id) VALUES (?)", [("b-1",), ("b-2",), ("b-3",)])

    async def read() -> list[tuple[int, object]]:
        async with TestClient(TestServer(application([pages("/rings", db, "rings")]))) as c:
            return [((r := await c.get(q)).status, await r.json())
                    for q in ("/rings?after=1&limit=1", "/rings", "/rings?limit=1001", "/rings?after=x")]

    one, rest, too_many, bad = asyncio.run(read())
    assert one == (200, {"items": [{"seq": 2, "brew_id": "b-2"}], "next": 2})
    assert rest == (200, {"items": [{"seq": s, "brew_id": f"b-{s}"} for s in (1, 2, 3)], "next": None})
    assert too_many[0] == bad[0] == 400


def test_max_body_bounds_request_bodies() -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"bytes": len(await request.read())})

    async def post(app: web.Application, size: int) -> int:
        async with TestClient(TestServer(app)) as client:
            return (await client.post("/echo", data=b"x" * size)).status

    body = MAX_BODY + 1
    assert asyncio.run(post(application([web.post("/echo", echo)], max_body=MAX_BODY), body)) == 413
    assert asyncio.run(post(application([web.post("/echo", echo)]), body)) == 200   # aiohttp's 1 MiB


@pytest.mark.parametrize("in_thread", [False, True])
def test_periodic_calls_at_once_then_every_interval_until_stopped(in_thread: bool) -> None:
    calls: list[str] = []
    repeat = Periodic(0.02, lambda: calls.append(threading.current_thread().name), in_thread=in_thread)

    async def run() -> int:
        repeat.start()
        await asyncio.sleep(0.11)
        repeat.stop()
        seen = len(calls)
        await asyncio.sleep(0.06)
        return seen

    seen = asyncio.run(run())
    assert 3 <= seen == len(calls), calls                                   # stopped: no more calls
    assert (calls[0] != threading.main_thread().name) is in_thread


def test_serve_exits_2_naming_the_file_when_the_config_is_bad(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    code = "import sys; from cafe.web import serve; serve('Some service: does things.', None)"
    proc = subprocess.run([sys.executable, "-c", code, "--config", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and str(bad) in proc.stderr
    proc = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Some service: does things." in proc.stdout


def test_reply_answers_what_json_response_answered() -> None:
    record = {"id": "o-1", "n": 3, "at": 1764475200.125678, "none": None, "nested": {"calls": {"b-1": 0}},
              "text": "café ☕", 7: "an int key"}
    ours, theirs = reply(record, status=201), web.json_response(record, status=201)
    assert (ours.status, ours.content_type, ours.charset) == (theirs.status, theirs.content_type, theirs.charset)
    assert ours.body is not None and theirs.text is not None
    assert json.loads(ours.body) == json.loads(theirs.text) == {**{k: v for k, v in record.items() if k != 7},
                                                                 "7": "an int key"}
    assert loads(dumps(record)) == json.loads(json.dumps(record))
    with pytest.raises(json.JSONDecodeError):   # what callers catch when a body is not JSON
        loads(b"{not json")


def test_health_awaits_fields_that_are_awaitable() -> None:
    async def counted() -> dict[str, object]:
        await asyncio.sleep(0)
        return {"outbox_pending": 4}

    async def ask() -> object:
        async with TestClient(TestServer(application([health("orders", "orders-1", counted)]))) as c:
            return await (await c.get("/health")).json()

    assert asyncio.run(ask()) == {"status": "ok", "service": "orders", "name": "orders-1", "outbox_pending": 4}


def test_periodic_awaits_what_its_call_returns(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", "CREATE TABLE beats (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL);")

    def beat(tx: object) -> None:
        db.query("INSERT INTO beats (at) VALUES (1)")

    repeat = Periodic(0.02, lambda: db.atomic(beat))

    async def run() -> None:
        repeat.start()
        await asyncio.sleep(0.11)
        repeat.stop()

    asyncio.run(run())
    assert len(db.query("SELECT * FROM beats")) >= 3
    db.close()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_run_is_on_uvloop_unless_the_environment_says_asyncio(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    monkeypatch.setenv(LOOP_ENV, loop)
    run(main())
    assert seen[0].startswith("uvloop") is (loop == "uvloop")
