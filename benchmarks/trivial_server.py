"""A trivial HTTP endpoint for benchmarking the load generator: `POST /orders` -> 202 {"id": "..."}.

It reads the body and answers at once (no validation, no storage), so the measured limit is the
generator's, not a shop's; with `--delay-ms D` it answers each order after a delay drawn uniformly
from [D/2, 3D/2) (a timer, no thread). The delay varies because the loop's timers have whole
milliseconds: with a fixed D, a client whose sends keep one phase against that clock (a uniform
schedule sent on time) would see a narrower latency spread than one whose sends jitter, and two
clients would differ by the endpoint's clock, not by what they measure. It is a bare asyncio protocol (HTTP/1.1 keep-alive, bodies with
Content-Length) on uvloop when installed, not aiohttp: aiohttp's server cost about 0.17 ms of CPU
per request on the 2-core machine, which at 5,000 orders/s is most of a core taken from the
generator being measured. Binds 127.0.0.1 only, stops on SIGTERM/SIGINT and, as a safety net,
by itself after `--lifetime-s`.
Run: python benchmarks/trivial_server.py --port PORT [--lifetime-s 900] [--delay-ms 0]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import signal

HOST = "127.0.0.1"
_ids = itertools.count(1)


def _response(status: str, body: bytes, keep_alive: bool) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{'' if keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n").encode("ascii") + body


class TrivialHTTP(asyncio.Protocol):
    """POST /orders -> 202 {"id": "t-N"}; GET /health -> 200 {"status": "ok"}; anything else 404."""

    delay_s = 0.0   # answer POST /orders this long after it arrived (set from --delay-ms)

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).split(b"\r\n")
            length, keep = 0, head[0].endswith(b"HTTP/1.1")
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    keep = value.strip().lower() != b"close"
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[:end + 4 + length]
            method, _, rest = head[0].partition(b" ")
            path = rest.split(b" ", 1)[0]
            if method == b"POST" and path == b"/orders":
                answer = _response("202 Accepted", b'{"id":"t-%d"}' % next(_ids), keep)
            elif path == b"/health":
                answer = _response("200 OK", b'{"status":"ok"}', keep)
            else:
                answer = _response("404 Not Found", b'{"error":"not found"}', keep)
            assert self.transport is not None
            if self.delay_s > 0 and method == b"POST":
                delay = self.delay_s * (0.5 + random.random())
                asyncio.get_running_loop().call_later(delay, self._answer, answer, keep)
            else:
                self._answer(answer, keep)
            if not keep:
                return

    def _answer(self, answer: bytes, keep: bool) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        self.transport.write(answer)
        if not keep:
            self.transport.close()


async def serve(port: int, lifetime_s: float) -> None:
    """Serve on 127.0.0.1:port until a signal or `lifetime_s` seconds have passed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TrivialHTTP, HOST, port, backlog=2048, reuse_address=True)
    print(f"trivial server listening on http://{HOST}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=lifetime_s)
    except TimeoutError:
        print(f"trivial server: lifetime of {lifetime_s:g}s reached, stopping", flush=True)
    server.close()
    await asyncio.wait_for(server.wait_closed(), timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lifetime-s", type=float, default=900.0, help="stop by itself after this long")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="answer each order after D/2 to 3D/2 ms, uniformly (default 0)")
    args = parser.parse_args()
    TrivialHTTP.delay_s = max(0.0, args.delay_ms) / 1000.0
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.lifetime_s))
    else:
        uvloop.run(serve(args.port, args.lifetime_s))


if __name__ == "__main__":
    main()
