"""Ordering over HTTP, the same in both shops: the routes a customer (the harness) uses.

    POST /orders               the body validated against the menu (400 naming the field, nothing
                               stored); with idempotency on, the Idempotency-Key header goes to `take`
    GET /orders/{order_id}     one order (404 when there is none)
    GET /orders?after=&limit=  the orders by seq (cafe.store.Database.page, on the database's thread)

A refusal (429) or a failure (503) whose body names `retry_after_s` carries a `Retry-After` header
too (whole seconds, at least 1).

What taking an order means is the shop's: `take(order, received, key)` answers (HTTP status, JSON
body); the sync cashier brews it before answering, the async order service accepts it for the broker.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cafe.menu import Menu
from cafe.orders import OrderRejected, OrderRequest, parse_order
from cafe.store import Database, now
from cafe.web import error, pages, read_body, reply

Take = Callable[[OrderRequest, float, str | None], Awaitable[tuple[int, dict[str, Any]]]]
Record = dict[str, Any] | None
Find = Callable[[str], Record | Awaitable[Record]]


def order_routes(menu: Menu, take: Take, find: Find, db: Database, *, idempotency: bool) -> list[web.RouteDef]:
    """The three order routes over `take`, `find` (an order by id, None when unknown; awaited when
    it returns an awaitable, a read on the database's thread) and the `orders` table of `db`.
    `received` is when the request arrived, before its body was read."""

    async def place_order(request: web.Request) -> web.Response:
        received = now()
        body = await read_body(request)
        try:
            order = parse_order(body, menu)
        except OrderRejected as exc:
            return reply(exc.as_json(), status=400)
        key = request.headers.get("Idempotency-Key") if idempotency else None
        status, answer = await take(order, received, key)
        response = reply(answer, status=status)
        if status in (429, 503) and isinstance(answer.get("retry_after_s"), (int, float)):
            # HTTP's Retry-After is whole seconds; the body keeps the exact figure
            response.headers["Retry-After"] = str(max(1, math.ceil(answer["retry_after_s"])))
        return response

    async def get_order(request: web.Request) -> web.Response:
        record = find(request.match_info["order_id"])
        if inspect.isawaitable(record):
            record = await record
        if record is None:
            return error(404, "no such order", id=request.match_info["order_id"])
        return reply(record)

    return [web.post("/orders", place_order), pages("/orders", db, "orders"), web.get("/orders/{order_id}", get_order)]
