"""The driver's HTTP/1.1 client against a scripted loopback server: bodies by Content-Length,
chunked and until close; keep-alive reuse; and each failure as the history's error kind
(refused, reset before or during the answer, timeout)."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from harness.history import REFUSED, RESET, TIMEOUT
from harness.load.http import OriginClient, TransportError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def serve(handler: Handler, check: Callable[[OriginClient, list[int]], Awaitable[None]]) -> list[bytes]:
    """Run `check(client, connections)` against a server answering each request with `handler`;
    returns the requests the server read."""
    requests: list[bytes] = []
    connections: list[int] = []

    async def main() -> None:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            try:
                while True:
                    requests.append(await read_request(reader))
                    await handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = OriginClient(f"http://127.0.0.1:{port}", timeout_s=0.5)
        try:
            await check(client, connections)
        finally:
            client.close()
            server.close()

    asyncio.run(main())
    return requests


def answer(raw: bytes, *, close: bool = False) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()
        if close:
            writer.close()
            raise ConnectionError
    return handler


def test_content_length_bodies_on_one_kept_alive_connection() -> None:
    async def check(client: OriginClient, connections: list[int]) -> None:
        for n in range(3):
            assert await client.post("/orders", b'{"n":%d}' % n, {"Idempotency-Key": "order-1"}) == (202, b'{"id":"x"}')
        assert len(connections) == 1

    requests = serve(answer(b"HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\n" + b'{"id":"x"}'), check)
    assert requests[0].startswith(b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Type: application/json\r\n" in requests[0] and b"Idempotency-Key: order-1\r\n" in requests[0]
    assert requests[2].endswith(b'\r\n\r\n{"n":2}')


def test_chunked_body_in_pieces() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for piece in (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"id", b"\"\r\n5\r\n:\"a\"}\r\n",
                      b"0\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)

    async def check(client: OriginClient, connections: list[int]) -> None:
        assert await client.post("/orders", b"{}") == (201, b'{"id":"a"}')
        assert await client.post("/orders", b"{}") == (201, b'{"id":"a"}')
        assert len(connections) == 1

    serve(handler, check)


def test_body_until_close_and_connection_close_are_not_reused() -> None:
    async def check(client: OriginClient, connections: list[int]) -> None:
        assert await client.post("/orders", b"{}") == (503, b'{"error":"down"}')
        assert await client.post("/orders", b"{}") == (503, b'{"error":"down"}')
        assert len(connections) == 2

    serve(answer(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n" + b'{"error":"down"}', close=True),
          check)


def failure(handler: Handler) -> TransportError:
    caught: list[TransportError] = []

    async def check(client: OriginClient, connections: list[int]) -> None:
        with pytest.raises(TransportError) as info:
            await client.post("/orders", b"{}")
        caught.append(info.value)

    serve(handler, check)
    return caught[0]


def test_closed_before_an_answer_is_a_reset() -> None:
    error = failure(answer(b"", close=True))
    assert error.kind == RESET and "before a response" in str(error)


def test_closed_mid_answer_is_a_reset() -> None:
    error = failure(answer(b"HTTP/1.1 202 Accepted\r\nContent-Length: 50\r\n\r\n{\"id\"", close=True))
    assert error.kind == RESET and "mid-response" in str(error)


def test_no_whole_answer_in_time_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\n")
        await asyncio.sleep(2)

    assert failure(silent).kind == TIMEOUT


def test_garbage_is_a_reset() -> None:
    assert failure(answer(b"SMTP ready\r\n\r\n")).kind == RESET
    bad_chunk = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n"
    assert failure(answer(bad_chunk)).kind == RESET


def test_nobody_listening_is_refused() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main() -> None:
        client = OriginClient(f"http://127.0.0.1:{port}", timeout_s=0.5)
        with pytest.raises(TransportError) as info:
            await client.post("/orders", b"{}")
        assert info.value.kind == REFUSED
        client.close()

    asyncio.run(main())


def test_a_pooled_connection_the_server_closed_is_not_used() -> None:
    async def check(client: OriginClient, connections: list[int]) -> None:
        assert (await client.post("/orders", b"{}"))[0] == 202
        await asyncio.sleep(0.05)    # the server has closed it meanwhile (after the answer, no Connection: close)
        assert (await client.post("/orders", b"{}"))[0] == 202
        assert len(connections) == 2

    serve(answer(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}", close=True), check)


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="base_url"):
        OriginClient("https://example.invalid", timeout_s=1)
