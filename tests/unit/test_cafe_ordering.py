"""cafe.ordering: the order routes both shops serve. A bad body is a 400 naming the field and never
reaches the shop; the Idempotency-Key goes to the shop only with idempotency on; an unknown order
is a 404; the list pages by seq. Served in-process, with a recording `take`."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cafe.menu import load_menu
from cafe.ordering import order_routes
from cafe.orders import OrderRequest
from cafe.store import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL);"


def serve(tmp_path: Path, idempotency: bool, requests: list[tuple[str, str, dict[str, Any]]]) -> tuple[
        list[tuple[OrderRequest, float, str | None]], list[tuple[int, Any]]]:
    taken: list[tuple[OrderRequest, float, str | None]] = []
    db = Database(tmp_path / "orders.db", SCHEMA)
    with db.transaction() as tx:
        tx.executemany("INSERT INTO orders (id) VALUES (?)", [("o-1",), ("o-2",), ("o-3",)])

    async def take(order: OrderRequest, received: float, key: str | None) -> tuple[int, dict[str, Any]]:
        taken.append((order, received, key))
        return 299, {"taken": order.product}

    def find(order_id: str) -> dict[str, Any] | None:
        return {"id": order_id} if order_id == "o-1" else None

    async def run() -> list[tuple[int, Any]]:
        app = web.Application()
        app.add_routes(order_routes(load_menu(), take, find, db, idempotency=idempotency))
        answers = []
        async with TestClient(TestServer(app)) as client:
            for method, path, kwargs in requests:
                resp = await client.request(method, path, **kwargs)
                answers.append((resp.status, await resp.json()))
        return answers

    return taken, asyncio.run(run())


LATTE = {"json": {"product": "latte", "size": "small"}, "headers": {"Idempotency-Key": "k-1"}}


@pytest.mark.parametrize("idempotency", [True, False])
def test_a_valid_order_goes_to_the_shop_with_the_key_only_when_idempotency_is_on(tmp_path: Path,
                                                                                 idempotency: bool) -> None:
    taken, answers = serve(tmp_path, idempotency, [("POST", "/orders", LATTE)])
    assert answers == [(299, {"taken": "Latte"})]                        # the shop's status and body
    ((order, received, key),) = taken
    assert order == OrderRequest("Latte", "small") and received > 0
    assert key == ("k-1" if idempotency else None)


def test_a_bad_order_is_a_400_naming_the_field_and_never_reaches_the_shop(tmp_path: Path) -> None:
    taken, answers = serve(tmp_path, True, [("POST", "/orders", {"json": {"product": "tea", "size": "small"}}),
                                            ("POST", "/orders", {"data": b"{"})])
    assert [(status, body["field"]) for status, body in answers] == [(400, "product"), (400, "body")]
    assert taken == []


def test_orders_are_read_one_by_id_or_paged_by_seq(tmp_path: Path) -> None:
    _, answers = serve(tmp_path, True, [("GET", "/orders/o-1", {}), ("GET", "/orders/o-9", {}),
                                        ("GET", "/orders?after=1&limit=1", {}), ("GET", "/orders?limit=0", {})])
    assert answers[0] == (200, {"id": "o-1"})
    assert answers[1] == (404, {"error": "no such order", "id": "o-9"})
    assert answers[2] == (200, {"items": [{"seq": 2, "id": "o-2"}], "next": 2})
    assert answers[3][0] == 400
