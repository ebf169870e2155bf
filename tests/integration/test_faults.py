"""Every fault kind applied to a live shop, verified from outside, then healed.

Network faults are checked through the real Toxiproxy proxy in front of a barista (the sync shop's
`orders->barista` edge); process and broker faults on the async shop's real processes.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cafe.brewing import BrewTime
from harness.load.batch import place_orders, sample_orders, wait_until
from harness.nemesis import FAULT_KINDS, FaultWindow, NotApplicable
from harness.shops import AsyncShop, ShopSettings, SyncShop

pytestmark = pytest.mark.integration

SETTINGS = ShopSettings(baristas=2, brewers=2, brew=BrewTime("fixed", mean_ms=5), prefetch=2)


# One shop per module and kind: every test heals what it breaks (and checks that it did), so
# the next one finds the shop as it was; a fresh shop per test only measured start-up again.
@pytest.fixture(scope="module")
def sync_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncShop]:
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path_factory.mktemp("faults-sync") / "run", broker=False) as infra, \
            SyncShop(infra, SETTINGS) as shop:
        place_orders(shop.entry_url, sample_orders(40))   # gives GET /brews a body of several KB
        yield shop


@pytest.fixture(scope="module")
def async_shop(tmp_path_factory: pytest.TempPathFactory, shared_broker: Any) -> Iterator[AsyncShop]:
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path_factory.mktemp("faults-async") / "run", broker=True,
                        shared_broker=shared_broker.node()) as infra, AsyncShop(infra, SETTINGS) as shop:
        yield shop


@pytest.fixture(scope="module")
def async_shop_own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsyncShop]:
    """The async shop on a broker node of its own: for faults that stop the broker."""
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path_factory.mktemp("faults-own-broker") / "run", broker=True) as infra, \
            AsyncShop(infra, SETTINGS) as shop:
        yield shop


def start(shop, kind: str, target: str, replica: int | None = None, **params: object):
    fault = FAULT_KINDS[kind](FaultWindow(f"test-{kind}", kind, target, 0, 1, replica, dict(params)))
    fault.setup(shop)
    fault.start(shop)
    return fault


def barista_proxy_url(shop: SyncShop, replica: int = 1) -> str:
    return shop.proxy_url(shop.proxies[f"cashier-barista-{replica}"])


def get(url: str, timeout: float = 10) -> tuple[float, bytes]:
    began = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = resp.read()
    return time.monotonic() - began, body


def time_to_eof(port: int, path: str = "/health") -> float:
    """Raw HTTP/1.0 request; seconds until the server side closes the connection."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass
    return time.monotonic() - began


def slower_than(seconds: float, path: str = "/health") -> Callable[[SyncShop], None]:
    def check(shop: SyncShop) -> None:
        elapsed, body = get(barista_proxy_url(shop) + path, timeout=30)
        assert elapsed >= seconds and body
    return check


def fails(*errors: type[BaseException], path: str = "/health") -> Callable[[SyncShop], None]:
    def check(shop: SyncShop) -> None:
        with pytest.raises(errors):
            get(barista_proxy_url(shop) + path, timeout=1.5)
    return check


def limit_data(shop: SyncShop) -> None:
    """Toxiproxy forwards the chunk that crosses the limit, then closes: a second request on the
    same keep-alive connection gets no answer."""
    with socket.create_connection(("127.0.0.1", shop.proxies["cashier-barista-1"].listen_port), timeout=5) as sock:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(0.2)
        try:
            sock.sendall(request)
            assert sock.recv(65536) == b""
        except ConnectionError:
            pass


def slow_close(shop: SyncShop) -> None:
    assert time_to_eof(shop.proxies["cashier-barista-1"].listen_port) >= 0.7


NETWORK_CASES = [
    ("latency", {"latency": 300, "jitter": 0}, slower_than(0.28)),
    ("bandwidth", {"rate": 2}, slower_than(1.0, "/brews?limit=1000")),
    ("slicer", {"average_size": 16, "size_variation": 0, "delay": 5000}, slower_than(0.5, "/brews?limit=1000")),
    ("timeout", {"timeout": 0, "stream": "upstream"}, fails(TimeoutError, socket.timeout, urllib.error.URLError)),
    ("reset_peer", {"timeout": 0}, fails(ConnectionError, http.client.HTTPException, urllib.error.URLError)),
    ("limit_data", {"bytes": 20}, limit_data),
    ("slow_close", {"delay": 800}, slow_close),
    ("down", {}, fails(ConnectionError, urllib.error.URLError)),
]


@pytest.mark.parametrize(("kind", "params", "verify"), NETWORK_CASES, ids=[c[0] for c in NETWORK_CASES])
def test_network_fault_is_felt_then_healed(sync_shop: SyncShop, kind: str, params: dict,
                                           verify: Callable[[SyncShop], None]) -> None:
    fault = start(sync_shop, kind, "orders->barista", **params)
    try:
        verify(sync_shop)
        assert sync_shop.heal_report()["healed"] is False     # the fault is visible in Toxiproxy
    finally:
        fault.stop(sync_shop)
    elapsed, _ = get(barista_proxy_url(sync_shop) + "/health")
    assert elapsed < 0.25
    assert sync_shop.heal_report()["healed"] is True


def test_a_replica_narrows_a_network_fault_to_one_barista(sync_shop: SyncShop) -> None:
    fault = start(sync_shop, "down", "cashier->barista", replica=2)
    try:
        get(barista_proxy_url(sync_shop, 1) + "/health")
        with pytest.raises((ConnectionError, urllib.error.URLError)):
            get(barista_proxy_url(sync_shop, 2) + "/health", timeout=1.5)
    finally:
        fault.stop(sync_shop)
    get(barista_proxy_url(sync_shop, 2) + "/health")


def test_faults_that_do_not_apply_say_so(sync_shop: SyncShop) -> None:
    for kind, target in [("broker-crash", "broker"), ("kill", "waiter"), ("latency", "barista->waiter"),
                         ("down", "waiter->broker")]:
        fault = FAULT_KINDS[kind](FaultWindow("x", kind, target, 0, 1))
        with pytest.raises(NotApplicable):
            fault.setup(sync_shop)


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def healthy(shop: AsyncShop, replica: str) -> bool:
    try:
        get(shop.url(replica) + "/health", timeout=1)
        return True
    except (OSError, urllib.error.URLError):
        return False


def test_kill_one_replica_then_restart(async_shop: AsyncShop) -> None:
    first, second = async_shop.supervisor.replicas("barista")
    old_pid = first.pid
    fault = start(async_shop, "kill", "barista", replica=1)
    assert not first.alive() and second.alive() and not healthy(async_shop, "barista-1")
    fault.stop(async_shop)
    assert first.alive() and first.pid != old_pid and healthy(async_shop, "barista-1")


def test_pause_freezes_every_replica_then_resumes(async_shop: AsyncShop) -> None:
    replicas = async_shop.supervisor.replicas("barista")
    fault = start(async_shop, "pause", "barista")
    try:
        assert {state_of(r.pid) for r in replicas} == {"T"}
        assert not healthy(async_shop, "barista-1")
    finally:
        fault.stop(async_shop)
    assert "T" not in {state_of(r.pid) for r in replicas}
    assert healthy(async_shop, "barista-1") and healthy(async_shop, "barista-2")


def test_stop_is_graceful_then_starts_again(async_shop: AsyncShop) -> None:
    (waiter,) = async_shop.supervisor.replicas("waiter")
    fault = start(async_shop, "stop", "waiter")
    assert waiter.state == "stopped" and waiter.returncode == 0   # SIGTERM: a clean exit
    fault.stop(async_shop)
    assert waiter.alive() and healthy(async_shop, "waiter-1")


def broker_state(shop: AsyncShop) -> str:
    return json.loads(urllib.request.urlopen(shop.url("orders-1") + "/health", timeout=5).read())["broker"]


@pytest.mark.parametrize("kind", ["broker-crash", "broker-stop"])
def test_broker_faults_take_the_broker_down_and_back(async_shop_own_broker: AsyncShop, kind: str) -> None:
    async_shop = async_shop_own_broker
    fault = start(async_shop, kind, "broker")
    try:
        assert not async_shop.broker.is_running()
        assert wait_until(lambda: broker_state(async_shop) == "disconnected", 30)
    finally:
        fault.stop(async_shop)
    assert async_shop.broker.is_running()
    assert wait_until(lambda: broker_state(async_shop) == "connected", 60)
    before = {s["order_id"] for s in async_shop.served()}   # the module's shop: earlier tests' orders too
    answers = place_orders(async_shop.entry_url, sample_orders(5, seed=len(before) + 1))
    assert [status for status, _ in answers] == [202] * 5
    ids = {body["id"] for _, body in answers}
    assert wait_until(lambda: ids <= {s["order_id"] for s in async_shop.served()}, 60)
    assert async_shop.heal_report()["healed"]
