"""The Docker engine as the Docker runtime uses it: one client, labelled containers, and cleanup.

Every container and volume a run creates carries the label ``chaoscafe.run=<run id>``; `Engine`
removes exactly those (never anything found by name), collecting each container's log into the
run directory first. Every container uses the host network (services bind 127.0.0.1 only); no
Docker network is ever created.
"""
from __future__ import annotations

import atexit
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import EngineError

RUN_LABEL = "chaoscafe.run"
ROLE_LABEL = "chaoscafe.role"


def connect(timeout: float = 60.0) -> Any:
    """A docker SDK client for the engine of the environment (DOCKER_HOST or the local socket);
    EngineError if the SDK is missing or the engine does not answer."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        raise EngineError("the docker package is not installed: pip install docker") from exc
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineError(f"no Docker engine answers ({exc}); start one (dockerd) or use --runtime local") from exc
    return client


def engine_reachable(timeout: float = 3.0) -> bool:
    """True if a Docker engine answers a ping within about `timeout` seconds."""
    try:
        connect(timeout).close()
        return True
    except EngineError:
        return False


def container_name(run_id: str, role: str) -> str:
    """``chaoscafe-<run id>-<role>`` with characters Docker refuses replaced by '-'."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in role)
    return f"chaoscafe-{run_id}-{safe}"


def write_logs(container: Any, path: Path) -> None:
    """Append the container's whole output (stdout+stderr) to `path` after a header line naming
    the container; best effort."""
    import docker.errors

    try:
        data = container.logs(stdout=True, stderr=True)
    except docker.errors.DockerException:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(f"=== container {container.name} ({container.short_id}) ===\n".encode() + data)


def log_tail(container: Any, lines: int = 20) -> str:
    """The last `lines` lines of the container's output ("" if unavailable)."""
    import docker.errors

    try:
        data = container.logs(stdout=True, stderr=True, tail=lines)
    except docker.errors.DockerException:
        return ""
    return str(data.decode(errors="replace"))


class Engine:
    """One run's view of the engine: creates labelled containers and volumes and removes them all.

    `run_id` is fresh per instance unless given. `cleanup()` is idempotent and also runs at
    interpreter exit (atexit, via the registry below) and is what `Infrastructure.close` calls."""

    def __init__(self, run_id: str | None = None, client: Any = None) -> None:
        self.run_id = run_id or secrets.token_hex(5)
        self.client = client if client is not None else connect()
        self._lock = threading.Lock()
        self._logs: dict[str, Path] = {}   # container id -> where its log goes at removal
        with _registry_lock:
            _registry.add(self)

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.run_id}

    def create(self, image: str, role: str, *, command: Sequence[str] | None = None,
               environment: Mapping[str, str] | None = None,
               mounts: Mapping[Path | str, tuple[str, str]] | None = None,
               working_dir: str | None = None, user: str | None = None, log_path: Path) -> Any:
        """Create (not start) a host-network container named after the run and `role`, with
        `mounts` {host path or volume name from `volume()`: (container path, "rw"|"ro")}; its
        output goes to `log_path` when it is removed."""
        volumes = {str(src): {"bind": dst, "mode": mode} for src, (dst, mode) in (mounts or {}).items()}
        kwargs: dict[str, Any] = dict(name=container_name(self.run_id, role), network_mode="host",
                                      labels={**self.labels, ROLE_LABEL: role}, environment=dict(environment or {}),
                                      volumes=volumes, detach=True, init=False)
        if command is not None:
            kwargs["command"] = list(command)
        if working_dir is not None:
            kwargs["working_dir"] = working_dir
        if user is not None:
            kwargs["user"] = user
        container = self.client.containers.create(image, **kwargs)
        with self._lock:
            self._logs[container.id] = log_path
        return container

    def volume(self, role: str) -> str:
        """Create a named volume labelled with this run; returns its name."""
        name = container_name(self.run_id, role)
        self.client.volumes.create(name=name, labels={**self.labels, ROLE_LABEL: role})
        return name

    def remove(self, container: Any, stop_timeout: float = 10.0) -> None:
        """Stop (unpausing first), collect the log, remove the container and its anonymous volumes."""
        import docker.errors

        try:
            container.reload()
            if container.status == "paused":
                container.unpause()
            if container.status in ("running", "paused", "restarting"):
                container.stop(timeout=int(stop_timeout))
        except docker.errors.NotFound:
            return
        except docker.errors.DockerException:
            pass
        with self._lock:
            path = self._logs.pop(container.id, None)
        if path is not None:
            write_logs(container, path)
        try:
            container.remove(v=True, force=True)
        except docker.errors.NotFound:
            pass

    def cleanup(self, stop_timeout: float = 10.0) -> None:
        """Remove every container and volume labelled with this run (logs collected). Idempotent."""
        import docker.errors

        selector = {"label": f"{RUN_LABEL}={self.run_id}"}
        try:
            containers = self.client.containers.list(all=True, filters=selector)
        except docker.errors.DockerException:
            containers = []
        for c in containers:
            self.remove(c, stop_timeout)
        deadline = time.monotonic() + 10
        for v in self.client.volumes.list(filters=selector):
            while True:
                try:
                    v.remove(force=True)
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError:   # still in use by a container being removed
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.2)
        with _registry_lock:
            _registry.discard(self)


def host_user() -> str:
    """``uid:gid`` of this process, so files a container writes into the run dir are the user's."""
    return f"{os.getuid()}:{os.getgid()}"


_registry: set[Engine] = set()
_registry_lock = threading.Lock()


def _cleanup_all() -> None:
    with _registry_lock:
        live = list(_registry)
    for engine in live:
        try:
            engine.cleanup(stop_timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_cleanup_all)
