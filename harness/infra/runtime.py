"""Where a run's parts run: `local` (OS processes, the default) or `docker` (containers).

The runtime is chosen per run: `--runtime local|docker|auto` on the command line, else the
environment variable ``CHAOSCAFE_RUNTIME``, else ``local``. ``auto`` means docker when an engine
answers and the configured images (harness/infra/images.py) are present, else local.

Both runtimes offer the same parts behind the same interfaces, so shops, faults and experiments do
not change: a broker with `RabbitNode`'s operations, a `ToxiproxyServer`, and supervisors with the
operations of `ServiceSupervisor` (the process `Supervisor` or the `DockerSupervisor`).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from harness.infra.processes import Replica, ServiceSpec

ENV_VAR = "CHAOSCAFE_RUNTIME"
RUNTIMES = ("local", "docker", "auto")


class ServiceSupervisor(Protocol):
    """What shops and faults use of a supervisor (harness/infra/processes.py states the contracts)."""

    run_dir: Path

    def services(self) -> list[str]: ...
    def replicas(self, service: str) -> list[Replica]: ...
    def pids(self) -> list[int]: ...
    def add(self, spec: ServiceSpec, replicas: int = 1, *, wait: bool = True) -> list[Replica]: ...
    def start(self, service: str, index: int | None = None, *, wait: bool = True) -> list[Replica]: ...
    def kill(self, service: str, index: int | None = None) -> list[Replica]: ...
    def stop(self, service: str, index: int | None = None, timeout: float = 10.0) -> list[Replica]: ...
    def restart(self, service: str, index: int | None = None, *, wait: bool = True) -> list[Replica]: ...
    def pause(self, service: str, index: int | None = None) -> list[Replica]: ...
    def resume(self, service: str, index: int | None = None) -> list[Replica]: ...
    def scale(self, service: str, n: int, *, wait: bool = True) -> list[Replica]: ...
    def set_extra_env(self, service: str, extra: Mapping[str, str]) -> None: ...
    def wait_ready(self, replica: Replica, timeout: float | None = None) -> None: ...
    def shutdown(self, timeout: float = 10.0) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


def requested_runtime(value: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The runtime asked for: `value`, else $CHAOSCAFE_RUNTIME, else "local"; ValueError if unknown."""
    env = os.environ if env is None else env
    name = (value or env.get(ENV_VAR) or "local").strip().lower()
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}: use one of {', '.join(RUNTIMES)}")
    return name


def choose_runtime(requested: str, *, engine_ok: Callable[[], bool], images_ok: Callable[[], bool]) -> str:
    """"local" or "docker" for a requested runtime; `auto` asks `engine_ok()` and then
    `images_ok()` (only as far as needed) and falls back to local."""
    if requested not in RUNTIMES:
        raise ValueError(f"unknown runtime {requested!r}: use one of {', '.join(RUNTIMES)}")
    if requested != "auto":
        return requested
    return "docker" if engine_ok() and images_ok() else "local"


def resolve_runtime(value: str | None = None) -> str:
    """`choose_runtime(requested_runtime(value))` against the real engine and images."""
    from harness.infra.engine import connect, engine_reachable
    from harness.infra.images import ImageNames, has_image

    def images_ok() -> bool:
        client = connect(5)
        try:
            return all(has_image(client, name) for name in ImageNames.from_env().runtime_images())
        finally:
            client.close()

    return choose_runtime(requested_runtime(value), engine_ok=engine_reachable, images_ok=images_ok)
