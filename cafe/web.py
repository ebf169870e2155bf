"""aiohttp plumbing shared by every service: JSON errors, bounded bodies, paging, running an app."""
from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

MAX_BODY = 64 * 1024  # an order is a few hundred bytes; anything above this is refused with 413


def error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error response: {"error": message, ...extra}."""
    return web.json_response({"error": message, **extra}, status=status)


async def read_body(request: web.Request) -> bytes:
    """The request body, or raise an HTTP 413/400 JSON error naming the problem."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY,
            actual_size=request.content_length,
            text=json.dumps({"error": "body too large", "field": "body",
                             "detail": f"{request.content_length} bytes exceeds {MAX_BODY}"}),
            content_type="application/json",
        )
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY, actual_size=len(body),
            text=json.dumps({"error": "body too large", "field": "body", "detail": f"exceeds {MAX_BODY} bytes"}),
            content_type="application/json",
        )
    return body


def paging(request: web.Request) -> tuple[int, int]:
    """(after, limit) from the query string; raise HTTP 400 naming a bad value."""
    try:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "after and limit must be integers"}),
                                 content_type="application/json") from None
    if not 1 <= limit <= 1000 or after < 0:
        raise web.HTTPBadRequest(text=json.dumps({"error": "limit must be 1..1000 and after >= 0"}),
                                 content_type="application/json")
    return after, limit


def run_app(app: web.Application, host: str, port: int, *, on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve `app` on host:port until SIGTERM or SIGINT, then stop gracefully (runs `on_stop` first)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
        await site.start()
        logging.getLogger("cafe").info("listening on http://%s:%d", host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        if on_stop is not None:
            await on_stop()
        await runner.cleanup()

    asyncio.run(main())
