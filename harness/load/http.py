"""The load driver's HTTP/1.1 client: one origin, keep-alive connections, as little work per request as possible.

Why not aiohttp's client: on the 2-core machine it cost about 0.4 ms of CPU per request (0.3 ms on
uvloop), this one about 0.2 ms (0.12 ms on uvloop); at thousands of orders per second that is
what decides whether the generator keeps its schedule (docs/performance.md, generator benchmark).
It speaks exactly what the driver needs: `POST` with a body, a response with `Content-Length`,
`Transfer-Encoding: chunked` or a body that ends with the connection; one request per connection
at a time (no pipelining); an idle connection is reused, a closed one never.

Failures raise `TransportError(kind, message)` with the history's error kinds
(`harness.history`): the connection was never established -> REFUSED (the order never left);
closed or reset before the whole response arrived -> RESET; no whole response within the
timeout -> TIMEOUT. A request on a kept-alive connection that the server closes before answering
is RESET (unknown), as it is with aiohttp: a POST is not retried by the transport.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

from harness.history import REFUSED, RESET, TIMEOUT

_MAX_HEAD = 64 * 1024   # a response head larger than this is a broken server


class TransportError(Exception):
    """A request that got no whole HTTP response; `kind` is a history error kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One TCP connection; `waiter` is the pending response of the request in flight, if any."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._buf = bytearray()
        self._head: tuple[int, int | None, bool, bool] | None = None  # status, length, chunked, keep-alive

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if self._head is not None and self._head[1] is None and not self._head[2]:
            waiter.set_result((self._head[0], bytes(self._buf), False))   # the body ended with the connection
        elif exc is not None:
            waiter.set_exception(TransportError(RESET, f"{exc.__class__.__name__}: {exc}"))
        elif self._head is not None or self._buf:
            waiter.set_exception(TransportError(RESET, "ResponsePayloadError: connection closed mid-response"))
        else:
            waiter.set_exception(TransportError(RESET, "ServerDisconnected: connection closed before a response"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:   # nothing was asked: a server that talks out of turn is not reused
            self.abort()
            return
        self._buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_exception(TransportError(RESET, f"BadResponse: {exc}"[:300]))
            self.abort()

    def _parse(self) -> None:
        if self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > _MAX_HEAD:
                    raise ValueError("response head too large")
                return
            lines = bytes(self._buf[:end]).split(b"\r\n")
            del self._buf[:end + 4]
            version, status_text = lines[0][:8], lines[0][9:12]
            if not version.startswith(b"HTTP/1."):
                raise ValueError(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
            status = int(status_text)
            length: int | None = None
            chunked = False
            keep = version == b"HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    token = value.strip().lower()
                    keep = token == b"keep-alive" or (keep and token != b"close")
            if status < 200 or status in (204, 304):
                length = 0
            self._head = (status, None if chunked else length, chunked, keep)
        status, length, chunked, keep = self._head
        if chunked:
            body = self._dechunk()
            if body is None:
                return
        elif length is None:
            return   # the body ends with the connection (connection_lost finishes it)
        else:
            if len(self._buf) < length:
                return
            body = bytes(self._buf[:length])
            del self._buf[:length]
        self._head = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body, keep and not self._buf))

    def _dechunk(self) -> bytes | None:
        """The whole chunked body once its last chunk (and trailer) arrived, else None (wait for more)."""
        body = bytearray()
        at = 0
        buf = self._buf
        while True:
            eol = buf.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(bytes(buf[at:eol]).split(b";", 1)[0], 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", eol)
                if end < 0:
                    return None
                del buf[:end + 4]
                return bytes(body)
            start = eol + 2
            if len(buf) < start + size + 2:
                return None
            if buf[start + size:start + size + 2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            body += buf[start:start + size]
            at = start + size + 2

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        self.waiter = self.loop.create_future()
        self._buf.clear()
        self._head = None
        assert self.transport is not None
        self.transport.write(data)
        return self.waiter

    def time_out(self, timeout_s: float) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(TransportError(TIMEOUT, f"TimeoutError: no whole response within {timeout_s:g} s"))
        self.abort()   # a late answer must not be read as the next request's

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class OriginClient:
    """POSTs to one origin (`http://host:port`), each request bounded by `timeout_s` in all (connect,
    send, whole response). Use from one event loop; `close()` when done."""

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"base_url: must be http://host[:port], got {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._host_header = f"Host: {parts.netloc}\r\n".encode("ascii")
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()

    async def _connection(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(lambda: _Connection(loop), self.host, self.port)
        except TimeoutError:
            raise TransportError(TIMEOUT, f"TimeoutError: no connection within {self.timeout_s:g} s") from None
        except OSError as exc:
            raise TransportError(REFUSED, f"{exc.__class__.__name__}: cannot connect to "
                                          f"{self.host}:{self.port}: {exc}"[:300]) from None
        self._all.add(conn)
        return conn

    async def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of `POST path` with a JSON `body`; raises TransportError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        conn = await self._connection(loop, deadline)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1") if headers else b""
        request = b"".join((b"POST ", (self.prefix + path).encode("ascii"), b" HTTP/1.1\r\n", self._host_header,
                            b"Content-Type: application/json\r\nContent-Length: ", str(len(body)).encode("ascii"),
                            b"\r\n", extra, b"\r\n", body))
        waiter = conn.send(request)
        timer = loop.call_at(deadline, conn.time_out, self.timeout_s)
        try:
            status, data, keep = await waiter
        except BaseException:   # no answer (or the caller gave up): this connection is done
            conn.abort()
            self._all.discard(conn)
            raise
        finally:
            timer.cancel()
        if keep and not conn.closed:
            self._idle.append(conn)
        else:
            conn.abort()
            self._all.discard(conn)
        return status, data

    def close(self) -> None:
        """Close every connection (requests still in flight end as RESET)."""
        for conn in list(self._all):
            conn.abort()
        self._all.clear()
        self._idle.clear()
