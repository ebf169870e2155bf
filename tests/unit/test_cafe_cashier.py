"""The sync cashier's rules without a process: `Cashier` (the line, the tills, idempotent retries,
the stored outcome, SQLite never on the event loop) with a fake brew call, and `BaristaClient`'s
status codes and kept-alive connections against an in-process barista. The cashier is a program,
loaded here by path."""
from __future__ import annotations

import asyncio
import runpy
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cafe.config import ServiceConfig
from cafe.orders import OrderRequest
from cafe.store import Database

PROGRAM = Path(__file__).resolve().parents[2] / "systems" / "sync" / "cashier.py"
cashier = SimpleNamespace(**runpy.run_path(str(PROGRAM), run_name="cafe_test_sync_cashier"))
LATTE = OrderRequest("Latte", "small", customer="ada", ref="7")


class FakeBarista:
    """A brew call that answers `answers` in turn (the last one again), after `gate` opens."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers) or [(201, {"status": "served", "barista": "b-1", "brew_id": "brew-1"})]
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def brew(self, order_id: str, body: dict[str, Any], received: float = 0.0) -> tuple[int, dict[str, Any]]:
        self.calls.append(order_id)
        await self.gate.wait()
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def make(tmp_path: Path, barista: FakeBarista, capacity: int = 8, queue_limit: int = 100) -> Any:
    db = Database(tmp_path / "cashier.db", cashier.SCHEMA)
    return cashier.Cashier(db, barista.brew, capacity=capacity, queue_limit=queue_limit)


def rows(desk: Any) -> list[dict[str, Any]]:
    return desk.db.query("SELECT * FROM orders ORDER BY seq")


def test_a_served_order_is_stored_and_answered_201(tmp_path: Path) -> None:
    desk = make(tmp_path, barista := FakeBarista())

    async def order_then_read() -> tuple[tuple[int, dict[str, Any]], Any]:
        status, body = await desk.place(LATTE, 1.0, None)
        return (status, body), await desk.order(body["id"])

    (status, body), read = asyncio.run(order_then_read())
    assert status == 201 and body["status"] == "served" and body["brew_id"] == "brew-1"
    assert barista.calls == [body["id"]]
    assert [r["id"] for r in rows(desk)] == [body["id"]] and read["customer"] == "ada"


def test_sqlite_never_runs_on_the_event_loop_and_an_answer_follows_its_commit(tmp_path: Path) -> None:
    desk = make(tmp_path, FakeBarista())
    threads: set[str] = set()
    query, transaction = desk.db.query, desk.db.transaction

    def watched_query(*args: Any) -> Any:
        threads.add(threading.current_thread().name)
        return query(*args)

    def watched_transaction() -> Any:
        threads.add(threading.current_thread().name)
        return transaction()

    desk.db.query, desk.db.transaction = watched_query, watched_transaction

    async def orders() -> list[Any]:
        answers = await asyncio.gather(*(desk.place(LATTE, 1.0, key) for key in (None, "k-1", "k-1", "k-2")))
        committed = sqlite3.connect(desk.db.path)      # another reader sees every answered order
        ids = {r[0] for r in committed.execute("SELECT id FROM orders")}
        committed.close()
        assert {body["id"] for _, body in answers} <= ids
        return [await desk.order(body["id"]) for _, body in answers]

    found = asyncio.run(orders())
    assert all(found) and threads == {"db:cashier.db"}


def test_concurrent_retries_with_one_key_are_one_order_even_while_it_is_looked_up(tmp_path: Path) -> None:
    desk = make(tmp_path, barista := FakeBarista())

    async def together() -> list[Any]:
        return list(await asyncio.gather(*(desk.place(LATTE, 1.0, "k-1") for _ in range(5))))

    answers = asyncio.run(together())
    assert len(barista.calls) == 1 and len(rows(desk)) == 1 and desk.state["replayed"] == 4
    assert {body["id"] for _, body in answers} == {barista.calls[0]} and desk.attempts == {}


def test_without_a_key_every_request_is_a_new_order(tmp_path: Path) -> None:
    desk = make(tmp_path, barista := FakeBarista())

    async def twice() -> None:
        await desk.place(LATTE, 1.0, None)
        await desk.place(LATTE, 1.0, None)

    asyncio.run(twice())
    assert len(barista.calls) == 2 and len(set(barista.calls)) == 2 and len(rows(desk)) == 2


def test_a_keyed_retry_of_a_served_order_is_answered_again_without_a_brew(tmp_path: Path) -> None:
    desk = make(tmp_path, barista := FakeBarista())

    async def retry() -> tuple[Any, Any]:
        return await desk.place(LATTE, 1.0, "k-1"), await desk.place(LATTE, 2.0, "k-1")

    (s1, first), (s2, again) = asyncio.run(retry())
    assert s1 == s2 == 201 and again["replayed"] is True and again["id"] == first["id"]
    assert len(barista.calls) == 1 and len(rows(desk)) == 1 and desk.state["replayed"] == 1


def test_a_keyed_retry_while_the_first_attempt_is_in_progress_gets_its_answer(tmp_path: Path) -> None:
    barista = FakeBarista()
    desk = make(tmp_path, barista)

    async def concurrent() -> list[Any]:
        barista.gate.clear()
        first = asyncio.ensure_future(desk.place(LATTE, 1.0, "k-1"))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(desk.place(LATTE, 1.0, "k-1"))
        await asyncio.sleep(0.01)
        barista.gate.set()
        return list(await asyncio.gather(first, second))

    (s1, a), (s2, b) = asyncio.run(concurrent())
    assert s1 == s2 == 201 and a == b
    assert len(barista.calls) == 1 and len(rows(desk)) == 1 and desk.state["replayed"] == 1
    assert desk.attempts == {}


def test_a_keyed_retry_of_a_failed_order_brews_under_the_same_id_and_replaces_its_row(tmp_path: Path) -> None:
    barista = FakeBarista((504, {"status": "failed", "error": "barista timeout after 1s"}),
                          (201, {"status": "served", "barista": "b-2", "brew_id": "brew-2"}))
    desk = make(tmp_path, barista)

    async def retry() -> tuple[Any, Any]:
        return await desk.place(LATTE, 1.0, "k-1"), await desk.place(LATTE, 2.0, "k-1")

    (s1, failed), (s2, served) = asyncio.run(retry())
    assert s1 == 504 and failed["error"] == "barista timeout after 1s" and failed["order"]["status"] == "failed"
    assert s2 == 201 and served["id"] == failed["order"]["id"] and "replayed" not in served
    assert barista.calls == [served["id"], served["id"]]          # the barista recognises the order id
    (row,) = rows(desk)
    assert row["status"] == "served" and row["seq"] == 2           # replaced: readers by seq see it anew


def test_a_failed_call_is_stored_as_failed_with_the_status_the_customer_gets(tmp_path: Path) -> None:
    desk = make(tmp_path, FakeBarista((503, {"status": "failed", "error": "barista unavailable: X"})))
    status, body = asyncio.run(desk.place(LATTE, 1.0, None))
    (row,) = rows(desk)
    assert status == 503 and body["error"] == "barista unavailable: X"
    assert body["order"] == {k: v for k, v in row.items() if k != "seq"} and row["status"] == "failed"


def test_beyond_the_line_limit_a_customer_is_refused_429_and_nothing_is_stored(tmp_path: Path) -> None:
    barista = FakeBarista()
    desk = make(tmp_path, barista, capacity=1, queue_limit=1)

    async def crowd() -> list[Any]:
        barista.gate.clear()
        at_till = asyncio.ensure_future(desk.place(LATTE, 1.0, None))
        await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(desk.place(LATTE, 1.0, None))
        await asyncio.sleep(0.01)
        assert desk.state["in_flight"] == 1 and desk.state["waiting"] == 1
        refused = await asyncio.wait_for(desk.place(LATTE, 1.0, None), 2.0)   # not put in line
        barista.gate.set()
        return [refused, *await asyncio.gather(at_till, waiting)]

    (status, body), (s1, _), (s2, _) = asyncio.run(crowd())
    assert status == 429 and body == {"error": "cashier line is full", "waiting": 1, "taken": False}
    assert s1 == s2 == 201 and len(barista.calls) == 2 and len(rows(desk)) == 2
    assert desk.state == {"in_flight": 0, "waiting": 0, "replayed": 0}


def test_the_barista_client_maps_answers_to_the_customers_status() -> None:
    async def brews(request: web.Request) -> web.Response:
        body = await request.json()
        if body["ref"] == "slow":
            await asyncio.sleep(1.0)
        if body["ref"] == "broken":
            return web.json_response({"error": "no milk"}, status=500)
        return web.json_response({"barista": "barista-1", "brew_id": f"brew-{body['orderId']}"}, status=201)

    async def calls() -> list[tuple[int, dict[str, Any]]]:
        app = web.Application()
        app.add_routes([web.post("/brews", brews)])
        async with TestServer(app) as server:
            url = str(server.make_url("")).rstrip("/")
            client = cashier.BaristaClient(cashier.Baristas([("barista-1", url)]), timeout_s=0.2)
            client.open()
            try:
                answers = [await client.brew("o-1", {"ref": ref}) for ref in ("ok", "broken", "slow")]
                client.baristas.replace([("barista-9", "http://127.0.0.1:9")])   # nobody listens there
                answers.append(await client.brew("o-2", {"ref": "ok"}))
            finally:
                await client.close()
            assert client.baristas.calls() == {"barista-9": 0}
            return answers

    served, broken, slow, unreachable = asyncio.run(calls())
    assert served == (201, {"status": "served", "barista": "barista-1", "brew_id": "brew-o-1"})
    assert broken[0] == 502 and broken[1]["error"] == "barista answered 500: {'error': 'no milk'}"
    assert slow == (504, {"status": "failed", "error": "barista timeout after 0.2s"})
    assert unreachable[0] == 503 and unreachable[1]["error"].startswith("barista unavailable: ClientConnectorError")


def test_the_barista_client_keeps_its_connections_alive_at_most_connections_of_them() -> None:
    peers: list[object] = []

    async def brews(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        await asyncio.sleep(0.01)
        return web.json_response({"barista": "barista-1", "brew_id": "b"}, status=201)

    async def calls() -> list[int]:
        app = web.Application()
        app.add_routes([web.post("/brews", brews)])
        async with TestServer(app) as server:
            url = str(server.make_url("")).rstrip("/")
            client = cashier.BaristaClient(cashier.Baristas([("barista-1", url)]), timeout_s=5, connections=3)
            client.open()
            try:
                statuses = [(await client.brew(f"o-{i}", {"ref": "1"}))[0] for i in range(10)]      # one by one
                statuses += [s for s, _ in await asyncio.gather(*(client.brew(f"p-{i}", {"ref": "1"})
                                                                  for i in range(12)))]           # 12 at once
            finally:
                await client.close()
            return statuses

    assert asyncio.run(calls()) == [201] * 22
    assert len(set(peers[:10])) == 1          # one after the other: the same kept-alive connection
    assert len(set(peers)) <= 3               # never more connections than the pool holds


def test_the_app_passes_the_customers_idempotency_key_to_the_cashier(tmp_path: Path) -> None:
    brewed: list[str] = []

    async def brews(request: web.Request) -> web.Response:
        body = await request.json()
        brewed.append(body["orderId"])
        return web.json_response({"barista": "barista-1", "brew_id": f"brew-{len(brewed)}"}, status=201)

    async def orders() -> list[tuple[int, dict[str, Any]]]:
        barista = web.Application()
        barista.add_routes([web.post("/brews", brews)])
        async with TestServer(barista) as server:
            config = ServiceConfig(name="cashier-1", port=1, db=str(tmp_path / "cashier.db"),
                                   barista_urls=(str(server.make_url("")).rstrip("/"),))
            async with TestClient(TestServer(cashier.build_app(config))) as client:
                answers = []
                for key in ("k-1", "k-1", None):
                    headers = {"Idempotency-Key": key} if key else {}
                    resp = await client.post("/orders", json={"product": "Latte", "size": "small"}, headers=headers)
                    answers.append((resp.status, await resp.json()))
                return answers

    (s1, first), (s2, again), (s3, other) = asyncio.run(orders())
    assert s1 == s2 == s3 == 201 and again["id"] == first["id"] and again["replayed"] is True
    assert other["id"] != first["id"] and len(brewed) == 2
