"""free_port: distinct, bindable, and unique across threads."""

from __future__ import annotations

import socket
import threading

from harness.infra.ports import free_port


def test_ports_are_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_free_port_is_thread_safe() -> None:
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        try:
            barrier.wait()
            got = [free_port() for _ in range(40)]
            results.extend(got)  # list.extend is atomic under the GIL
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(results) == 16 * 40
    assert len(set(results)) == len(results)
