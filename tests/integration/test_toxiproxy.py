"""The real Toxiproxy server through our client: proxying, latency, disable and enable, errors, stop."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.infra.broker import alive
from harness.infra.ports import free_port
from harness.infra.provision import find_toxiproxy
from harness.infra.toxiproxy import Toxiproxy, ToxiproxyError, ToxiproxyServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_toxiproxy() is None, reason="no toxiproxy-server: python -m harness.infra.provision"),
]


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    srv = ToxiproxyServer(tmp_path_factory.mktemp("toxiproxy"))
    started = time.monotonic()
    srv.start()
    print(f"toxiproxy start took {time.monotonic() - started:.3f}s")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tp(server: ToxiproxyServer) -> Iterator[Toxiproxy]:
    client = server.client()
    yield client
    for p in client.proxies():  # the harness never deletes a proxy (the server goes with the run): the API does it
        requests.delete(f"{server.api_url}/proxies/{p.name}", timeout=5).raise_for_status()
    client.close()


def roundtrip(listen: str, payload: bytes = b"hello", timeout: float = 5) -> tuple[bytes, float]:
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        started = time.monotonic()
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got, time.monotonic() - started


def accepted_then_closed(listen: str) -> bool:
    """True if the proxy accepts and then closes (EOF or RST), as it does with a dead upstream."""
    try:
        return roundtrip(listen)[0] == b""
    except ConnectionResetError:
        return True


def test_data_flows_through_a_proxy(tp: Toxiproxy, echo: str, server: ToxiproxyServer) -> None:
    p = tp.create_proxy("echo", echo)
    assert p.listen_host == "127.0.0.1" and p.listen_port > 0 and p.enabled and p.upstream == echo
    assert roundtrip(p.listen)[0] == b"hello"
    assert tp.proxies() == [p]
    assert server.version()


def test_latency_toxic_delays_by_at_least_80_percent(tp: Toxiproxy, echo: str) -> None:
    p = tp.create_proxy("slow", echo)
    base = min(roundtrip(p.listen)[1] for _ in range(3))
    name = tp.add_toxic("slow", "latency", attributes={"latency": 300})
    assert name == "latency_downstream"
    assert [t["name"] for t in tp.toxics("slow")] == [name]
    got, elapsed = roundtrip(p.listen)
    assert got == b"hello" and elapsed >= 0.8 * 0.3, (base, elapsed)
    tp.remove_toxic("slow", name)
    assert tp.toxics("slow") == []
    with pytest.raises(ToxiproxyError, match="latency_downstream"):
        tp.remove_toxic("slow", name)


def test_disable_drops_connections_and_enable_heals(tp: Toxiproxy, echo: str) -> None:
    p = tp.create_proxy("down", echo)
    tp.add_toxic("down", "latency", attributes={"latency": 50}, name="lag")
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    assert tp.disable("down").enabled is False
    try:
        try:
            s.sendall(b"x")
            assert s.recv(10) == b""  # open connection: EOF
        except ConnectionError:
            pass  # ...or reset
    finally:
        s.close()
    with pytest.raises(OSError):
        roundtrip(p.listen, timeout=2)  # new connections refused
    tp.enable("down")                    # how the network nemesis heals (harness/nemesis/network.py)
    tp.remove_toxic("down", "lag")
    (healed,) = tp.proxies()
    assert healed.enabled and healed.listen_port == p.listen_port and tp.toxics("down") == []
    assert roundtrip(p.listen)[0] == b"hello"


def test_removing_a_timeout_toxic_closes_the_connections_it_held(tp: Toxiproxy, echo: str) -> None:
    """Why `timeout` has a heal effect (harness.experiment.faults.HEAL_EFFECTS): the connection that
    lived through the toxic is closed when it is removed; a new one works."""
    p = tp.create_proxy("blackhole", echo)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    try:
        s.sendall(b"a")
        assert s.recv(10) == b"a"
        name = tp.add_toxic("blackhole", "timeout", attributes={"timeout": 0})
        s.sendall(b"b")          # dropped
        time.sleep(0.3)
        tp.remove_toxic("blackhole", name)
        try:
            assert s.recv(10) == b""   # closed by the heal: EOF ...
        except ConnectionError:
            pass                       # ... or reset
    finally:
        s.close()
    assert roundtrip(p.listen)[0] == b"hello"


def test_dead_upstream_looks_like_accept_then_eof(tp: Toxiproxy) -> None:
    p = tp.create_proxy("dead", f"127.0.0.1:{free_port()}")
    assert accepted_then_closed(p.listen)


@pytest.mark.parametrize("bad", ["has space", "a/b", "", "é", "x" * 101, "a.b"])
def test_bad_names_are_rejected(tp: Toxiproxy, echo: str, bad: str) -> None:
    with pytest.raises(ToxiproxyError, match="invalid proxy name"):
        tp.create_proxy(bad, echo)
    with pytest.raises(ToxiproxyError, match="invalid"):
        tp.toxics(bad)


def test_api_errors_name_the_proxy_and_carry_the_server_message(tp: Toxiproxy, echo: str) -> None:
    tp.create_proxy("dup", echo)
    with pytest.raises(ToxiproxyError, match=r"'dup'.*409.*already exists"):
        tp.create_proxy("dup", echo)
    with pytest.raises(ToxiproxyError, match=r"'nope'.*404"):
        tp.toxics("nope")
    with pytest.raises(ToxiproxyError, match=r"'dup'.*400"):
        tp.add_toxic("dup", "no_such_toxic")
    with pytest.raises(ToxiproxyError, match="stream"):
        tp.add_toxic("dup", "latency", stream="sideways")


def test_unreachable_api_raises_quickly() -> None:
    client = Toxiproxy(f"http://127.0.0.1:{free_port()}", timeout=1)
    started = time.monotonic()
    with pytest.raises(ToxiproxyError, match="version"):
        client.version()
    assert time.monotonic() - started < 3


def test_stop_leaves_no_process(tmp_path: Path, echo: str) -> None:
    srv = ToxiproxyServer(tmp_path)
    srv.start()
    pid = srv.pid
    assert pid is not None and alive(pid)
    tp = srv.client()
    p = tp.create_proxy("tmp", echo)
    srv.stop()
    assert not alive(pid) and srv.pid is None and not srv.is_running()
    srv.stop()  # idempotent
    with pytest.raises(OSError):
        roundtrip(p.listen, timeout=2)
    assert (tmp_path / "toxiproxy.log").exists()
