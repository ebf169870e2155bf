"""Free TCP ports on loopback, for servers that other processes start later.

A port is handed to a service before the service binds it. A port the kernel picks for `bind(0)`
lies in the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 by default),
which is also where every outgoing connection takes its local port: in that gap a client socket
of the run (a proxy's upstream connection, the load generator) can take the port, and the service
then fails with "address already in use". So ports are drawn at random from below the ephemeral
range, where no outgoing connection ever lands, and checked free with a bind.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_lock = threading.Lock()
_handed_out: set[int] = set()
_random = random.SystemRandom()
LOWEST = 10000          # below this: well-known and registered services' ports
FALLBACK_EPHEMERAL_LOW = 32768


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The first port of the kernel's ephemeral range (32768 if it cannot be read)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return FALLBACK_EPHEMERAL_LOW


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now, outside the ephemeral range when there is room below it, and
    never returned before by this process. RuntimeError if none is found in 500 tries."""
    high = ephemeral_low() - 1
    with _lock:
        for _ in range(500):
            if high - LOWEST >= 1000:
                port = _random.randint(LOWEST, high)
                if port in _handed_out or not _bindable(host, port):
                    continue
            else:   # an unusual kernel setting leaves no room: let the kernel pick
                with socket.socket() as s:
                    s.bind((host, 0))
                    port = s.getsockname()[1]
                if port in _handed_out:
                    continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")
