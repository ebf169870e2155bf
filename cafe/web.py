"""aiohttp plumbing shared by every service: JSON errors, bounded bodies, paging, and a service's life.

A service program is `build(config) -> web.Application` plus one line, `serve(__doc__, build)`:

    serve      --config PATH -> ServiceConfig -> build(config) -> listen on host:port until SIGTERM/SIGINT
               (on uvloop's event loop: the HTTP path of every service costs less CPU on it)
    application  the routes, and the steps run when the app starts (before it listens) and stops
    blocking     a stop step that joins a thread (a broker connection) off the event loop
    Periodic     a call repeated while the service runs (a replica's heartbeat)
    health       GET /health, the same first fields in every service
    pages        GET a table's rows by seq (?after=&limit=), the read API of every service
    reply        a JSON response encoded by orjson (`dumps`/`loads`: the same codec for bodies read and sent)

No route reads or writes SQLite on the event loop: `pages` and the order routes await the
database's own thread (cafe.store.Database.call and friends).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

import orjson
from aiohttp import web

from cafe.config import ServiceConfig, load_from_argv
from cafe.store import Database

LOOP_ENV = "CHAOSCAFE_LOOP"   # "asyncio": a service runs on asyncio's own event loop instead of uvloop's
MAX_BODY = 64 * 1024  # an order is a few hundred bytes; anything above this is refused with 413
Step = Callable[[], object]  # a start or stop step: a call, awaited when it returns an awaitable
JSONDecodeError = orjson.JSONDecodeError   # a subclass of json.JSONDecodeError (and of ValueError)


_OPTIONS = orjson.OPT_NON_STR_KEYS   # {1: x} is {"1": x}, as json.dumps writes it


def dumps(data: Any) -> bytes:
    """JSON bytes of `data` (orjson: compact, UTF-8; the same values as json.dumps, about 10x faster)."""
    return orjson.dumps(data, option=_OPTIONS)


def loads(body: bytes | str) -> Any:
    """The value of a JSON document; JSONDecodeError (a json.JSONDecodeError) when it is not JSON."""
    return orjson.loads(body)


def reply(data: Any, status: int = 200) -> web.Response:
    """A JSON response (what web.json_response answers, Content-Type application/json; charset=utf-8),
    encoded by orjson."""
    return web.Response(body=orjson.dumps(data, option=_OPTIONS), status=status, content_type="application/json",
                        charset="utf-8")


def _json_text(data: Any) -> str:
    return orjson.dumps(data, option=_OPTIONS).decode()


def error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error response: {"error": message, ...extra}."""
    return reply({"error": message, **extra}, status=status)


async def read_body(request: web.Request) -> bytes:
    """The request body, or raise an HTTP 413/400 JSON error naming the problem."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY,
            actual_size=request.content_length,
            text=_json_text({"error": "body too large", "field": "body",
                             "detail": f"{request.content_length} bytes exceeds {MAX_BODY}"}),
            content_type="application/json",
        )
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY, actual_size=len(body),
            text=_json_text({"error": "body too large", "field": "body", "detail": f"exceeds {MAX_BODY} bytes"}),
            content_type="application/json",
        )
    return body


def paging(request: web.Request) -> tuple[int, int]:
    """(after, limit) from the query string; raise HTTP 400 naming a bad value."""
    try:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise web.HTTPBadRequest(text=_json_text({"error": "after and limit must be integers"}),
                                 content_type="application/json") from None
    if not 1 <= limit <= 1000 or after < 0:
        raise web.HTTPBadRequest(text=_json_text({"error": "limit must be 1..1000 and after >= 0"}),
                                 content_type="application/json")
    return after, limit


def run_app(app: web.Application, host: str, port: int, *, fast_loop: bool = True) -> None:
    """Serve `app` on host:port until SIGTERM or SIGINT, then stop gracefully.
    On uvloop's event loop when `fast_loop` and uvloop is installed, else asyncio's own."""
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
        await runner.cleanup()

    run(main(), fast_loop=fast_loop)


def run(main: Coroutine[Any, Any, None], *, fast_loop: bool = True) -> None:
    """asyncio.run(main), on uvloop's loop when `fast_loop` (and uvloop is installed). uvloop runs
    the same asyncio code (transports, signals, executors, call_soon_threadsafe) with its sockets
    and callbacks in C: measured in docs/performance.md. `CHAOSCAFE_LOOP=asyncio` in a service's
    environment turns it off (to compare, or to rule it out)."""
    if fast_loop and os.environ.get(LOOP_ENV, "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:  # not installed: asyncio's loop
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(main)
            return
    asyncio.run(main)


def pages(path: str, db: Database, table: str) -> web.RouteDef:
    """GET `path`?after=&limit=: the rows of `table` with seq > after, oldest first, at most limit
    ({"items", "next"}: Database.page, read on the database's thread); a bad after or limit is a
    400 (`paging`)."""

    async def get(request: web.Request) -> web.Response:
        after, limit = paging(request)
        return reply(await db.fetch_page(table, after, limit))

    return web.get(path, get)


Fields = Callable[[], "dict[str, Any] | Awaitable[dict[str, Any]]"]


def health(service: str, name: str, fields: Fields) -> web.RouteDef:
    """GET /health: {"status": "ok", "service": service, "name": name, **fields()}, `fields` asked
    anew on every request (what the service counts, its broker connection, ...); awaited when it
    returns an awaitable (a count read with `Database.fetch`)."""

    async def get(request: web.Request) -> web.Response:
        counts = fields()
        if inspect.isawaitable(counts):
            counts = await counts
        return reply({"status": "ok", "service": service, "name": name, **counts})

    return web.get("/health", get)


def application(routes: Iterable[web.RouteDef], *, start: Sequence[Step] = (), stop: Sequence[Step] = (),
                max_body: int | None = None) -> web.Application:
    """An app serving `routes`. `start` steps run in order when it starts, before it listens;
    `stop` steps run in order when it stops, after it stopped listening. A step runs in the event
    loop (wrap a blocking one in `blocking`); one that returns an awaitable is awaited. `max_body`
    bounds request bodies (413 above it; aiohttp's default, 1 MiB, when None)."""
    app = web.Application() if max_body is None else web.Application(client_max_size=max_body)
    app.add_routes(list(routes))

    async def run(steps: Sequence[Step]) -> None:
        for step in steps:
            result = step()
            if inspect.isawaitable(result):
                await result

    async def on_startup(_app: web.Application) -> None:
        await run(start)

    async def on_cleanup(_app: web.Application) -> None:
        await run(stop)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def blocking(fn: Callable[..., object], *args: Any) -> Callable[[], Awaitable[object]]:
    """A step that calls `fn(*args)` in a worker thread, so the event loop keeps going meanwhile
    (stopping a broker connection's thread waits for it to close)."""

    def step() -> Awaitable[object]:
        return asyncio.get_running_loop().run_in_executor(None, fn, *args)

    return step


class Periodic:
    """Calls `fn` every `seconds` from `start()` until `stop()` (both steps for `application`); in a
    worker thread when `in_thread`, else in the event loop (awaiting what it returns when that is
    awaitable: `lambda: db.call(claims.beat)`). An exception from `fn` ends the repeats."""

    def __init__(self, seconds: float, fn: Callable[[], object], *, in_thread: bool = False) -> None:
        self.seconds, self.fn, self.in_thread = seconds, fn, in_thread
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._repeat())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _repeat(self) -> None:
        while True:
            if self.in_thread:
                await asyncio.get_running_loop().run_in_executor(None, self.fn)
            else:
                result = self.fn()
                if inspect.isawaitable(result):
                    await result
            await asyncio.sleep(self.seconds)


def serve(doc: str | None, build: Callable[[ServiceConfig], web.Application]) -> None:
    """A service program's whole life: its config from `--config PATH` (the first line of `doc`,
    the program's docstring, is the usage text; a bad file exits 2), its app from `build`, served
    on the config's host:port until SIGTERM or SIGINT (`run_app`)."""
    config = load_from_argv(doc.splitlines()[0] if doc else "")
    run_app(build(config), config.host, config.port)
