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


def test_ports_lie_below_the_ephemeral_range_where_client_sockets_take_theirs() -> None:
    from harness.infra.ports import LOWEST, ephemeral_low

    low = ephemeral_low()
    assert all(LOWEST <= free_port() < low for _ in range(50))


def test_ephemeral_low_reads_the_kernel_setting_or_falls_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness.infra.ports import ephemeral_low

    (tmp_path / "range").write_text("40000\t60999\n")
    assert ephemeral_low(tmp_path / "range") == 40000
    assert ephemeral_low(tmp_path / "missing") == 32768
