"""A trivial HTTP endpoint for benchmarking the load generator: `POST /orders` -> 202 {"id": "..."}.

It reads the body and answers at once (no validation, no storage), so the measured limit is the
generator's, not a shop's. Binds 127.0.0.1 only, stops on SIGTERM/SIGINT and, as a safety net,
by itself after `--lifetime-s`.
Run: python benchmarks/trivial_server.py --port PORT [--lifetime-s 900]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import signal

from aiohttp import web

HOST = "127.0.0.1"


def build_app() -> web.Application:
    """The app: POST /orders (202 + small JSON body) and GET /health."""
    ids = itertools.count(1)

    async def orders(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": f"t-{next(ids)}"}, status=202)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.add_routes([web.post("/orders", orders), web.get("/health", health)])
    return app


async def serve(port: int, lifetime_s: float) -> None:
    """Serve on 127.0.0.1:port until a signal or `lifetime_s` seconds have passed."""
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=2048, reuse_address=True)
    await site.start()
    print(f"trivial server listening on http://{HOST}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=lifetime_s)
    except TimeoutError:
        print(f"trivial server: lifetime of {lifetime_s:g}s reached, stopping", flush=True)
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lifetime-s", type=float, default=900.0, help="stop by itself after this long")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.lifetime_s))


if __name__ == "__main__":
    main()
