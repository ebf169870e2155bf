"""Ordering over HTTP, the same in both shops: the routes a customer (the harness) uses.

    POST /orders               the body validated against the menu (400 naming the field, nothing
                               stored); with idempotency on, the Idempotency-Key header goes to `take`
    GET /orders/{order_id}     one order (404 when there is none)
    GET /orders?after=&limit=  the orders by seq (cafe.store.Database.page)

What taking an order means is the shop's: `take(order, received, key)` answers (HTTP status, JSON
body); the sync cashier brews it before answering, the async order service accepts it for the broker.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cafe.menu import Menu
from cafe.orders import OrderRejected, OrderRequest, parse_order
from cafe.store import Database, now
from cafe.web import error, pages, read_body

Take = Callable[[OrderRequest, float, str | None], Awaitable[tuple[int, dict[str, Any]]]]
Find = Callable[[str], dict[str, Any] | None]


def order_routes(menu: Menu, take: Take, find: Find, db: Database, *, idempotency: bool) -> list[web.RouteDef]:
    """The three order routes over `take`, `find` (an order by id, None when unknown) and the
    `orders` table of `db`. `received` is when the request arrived, before its body was read."""

    async def place_order(request: web.Request) -> web.Response:
        received = now()
        body = await read_body(request)
        try:
            order = parse_order(body, menu)
        except OrderRejected as exc:
            return web.json_response(exc.as_json(), status=400)
        key = request.headers.get("Idempotency-Key") if idempotency else None
        status, answer = await take(order, received, key)
        return web.json_response(answer, status=status)

    async def get_order(request: web.Request) -> web.Response:
        record = find(request.match_info["order_id"])
        if record is None:
            return error(404, "no such order", id=request.match_info["order_id"])
        return web.json_response(record)

    return [web.post("/orders", place_order), pages("/orders", db, "orders"), web.get("/orders/{order_id}", get_order)]
