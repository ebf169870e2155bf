"""What every supervisor shares, whatever a replica is (a process or a container).

`ReplicaSupervisor` keeps the bookkeeping: services and their specs, replica slots in index order
(indexes 1..N), slots scaled away kept for reuse (same name, same log), the `_busy` mark that keeps
two operations off one replica, readiness polling on a loopback health URL, and the shut-down
flag. Subclasses say how one replica is started (`_start_one`), stopped (`_stop_replicas`),
refreshed from reality (`_refresh`), killed, paused and resumed: the process `Supervisor`
(harness/infra/processes.py) and the `DockerSupervisor` (harness/infra/docker_supervisor.py).
"""
from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Self, TypeVar, cast

from harness.errors import ProcessError

if TYPE_CHECKING:
    from harness.infra.processes import Replica

ACTIVE = ("running", "paused")
LOCAL_HOSTS = ("127.0.0.1", "localhost")

R = TypeVar("R", bound="Replica")


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service. `command(replica)` returns argv for replica index 1..N (it may
    write a config file); `health_url(replica)` returns a URL that answers HTTP 200 when that
    replica is ready, or None to only wait for the process to be alive."""

    name: str
    command: Callable[[int], list[str]]
    health_url: Callable[[int], str | None] = lambda i: None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready_timeout: float = 30.0


class ReplicaSupervisor(ABC, Generic[R]):
    """Owns the replicas of several services. Mutating operations return the replicas they acted
    on (e.g. kill() skips dead ones); `index=None` means every replica of the service."""

    no_health_grace = 0.0   # without a health URL, a new replica must stay alive this long

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir).resolve()   # absolute: configs and logs cross into children
        self._log_dir = self.run_dir / "logs"
        self._lock = threading.RLock()
        self._specs: dict[str, ServiceSpec] = {}
        self._base_env: dict[str, dict[str, str]] = {}   # a spec's own env, once set_extra_env changed it
        self._members: dict[str, list[R]] = {}       # index order, indexes 1..len
        self._retired: dict[str, dict[int, R]] = {}  # scaled away, reusable
        self._closed = False

    # ------------------------------------------------------- what a subclass says

    @abstractmethod
    def _new_replica(self, service: str, index: int) -> R:
        """A fresh, never-started slot `<service>-<index>` logging to run_dir/logs/<name>.log."""

    @abstractmethod
    def _start_one(self, r: R) -> None:
        """Start replica `r` (marked busy by the caller) with its spec's command(index)."""

    @abstractmethod
    def _stop_replicas(self, reps: list[R], timeout: float) -> list[Replica]:
        """Stop the active ones gracefully (SIGKILL after `timeout`); state "stopped"."""

    @abstractmethod
    def _refresh(self, reps: list[R]) -> None:
        """Mark replicas that ended on their own "exited" (with their exit code)."""

    @abstractmethod
    def _error(self, r: R, what: str) -> ProcessError:
        """A ProcessError saying `what` happened to `r`, with the last lines of its log."""

    # -------------------------------------------------------------- queries

    def services(self) -> list[str]:
        with self._lock:
            return list(self._specs)

    # -------------------------------------------------------------- lifecycle

    def add(self, spec: ServiceSpec, replicas: int = 1, *, wait: bool = True) -> list[Replica]:
        """Register `spec` and start replicas 1..`replicas`; raises ProcessError if not ready."""
        with self._lock:
            self._check_open()
            if spec.name in self._specs:
                raise ProcessError(f"service {spec.name!r} already added; use scale()")
            self._specs[spec.name] = spec
            self._members[spec.name] = []
            self._retired[spec.name] = {}
        return self.scale(spec.name, replicas, wait=wait)

    def set_extra_env(self, service: str, extra: Mapping[str, str]) -> None:
        """The replicas of `service` started from now on get `extra` on top of the spec's own
        environment (an empty mapping takes it away again); running ones keep theirs until restarted."""
        with self._lock:
            spec = self._specs[service]
            base = self._base_env.setdefault(service, dict(spec.env))
            self._specs[service] = replace(spec, env={**base, **extra})

    def stop(self, service: str, index: int | None = None, timeout: float = 10.0) -> list[Replica]:
        """SIGTERM (resumed first if paused), SIGKILL after `timeout`; state "stopped"."""
        return self._stop_replicas(self._select(service, index), timeout)

    def restart(self, service: str, index: int | None = None, *, wait: bool = True) -> list[Replica]:
        """Graceful stop, then start; returns the replicas started."""
        self.stop(service, index)
        return self.start(service, index, wait=wait)

    @abstractmethod
    def start(self, service: str, index: int | None = None, *, wait: bool = True) -> list[Replica]:
        """(Re)start the selected replicas that are not running/paused, with command(index)."""

    def scale(self, service: str, n: int, *, wait: bool = True) -> list[Replica]:
        """Make the service have `n` replicas: start new ones with the next indexes (a slot
        scaled away earlier is reused, same log), or stop and drop the highest-indexed ones.
        Existing members are not healed. Returns the running members."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._check_open()
            members = self._member_list(service)
            retired, new = members[n:], []
            del members[n:]
            for i in range(len(members) + 1, n + 1):
                r = self._retired[service].pop(i, None) or self._new_replica(service, i)
                r._busy = True
                members.append(r)
                new.append(r)
            for r in retired:
                self._retired[service][r.index] = r
        self._stop_replicas(retired, 10.0)
        self._launch(new, wait)
        return [r for r in self.replicas(service) if r.state == "running"]

    @abstractmethod
    def replicas(self, service: str) -> list[Replica]:
        """Members in index order, states refreshed (includes stopped/killed/exited)."""

    def wait_ready(self, replica: Replica, timeout: float | None = None) -> None:
        """Poll health_url (loopback, no proxy) until HTTP 200; ProcessError with the log tail
        if the replica ends or the deadline passes."""
        spec = self._specs[replica.service]
        limit = spec.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        url = spec.health_url(replica.index)
        if url is not None and urllib.parse.urlsplit(url).hostname not in LOCAL_HOSTS:
            raise ProcessError(f"{replica.name}: health URL must be on 127.0.0.1: {url}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        grace_end = time.monotonic() + self.no_health_grace
        mine = cast(R, replica)   # one of ours: wait_ready is only given our replicas
        while True:
            if not mine.alive():
                with self._lock:
                    self._refresh([mine])
                raise self._error(mine, f"exited with code {mine.returncode} before ready")
            now = time.monotonic()
            if url is None and now >= min(grace_end, deadline):
                return
            if url is not None and healthy(opener, url, min(1.0, max(0.05, deadline - now))):
                return
            if time.monotonic() >= deadline:
                raise self._error(mine, f"not ready within {limit:g}s ({url})")
            time.sleep(0.05)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    @abstractmethod
    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything this supervisor started. Idempotent."""

    # -------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise ProcessError("supervisor is shut down")

    def _member_list(self, service: str) -> list[R]:
        try:
            return self._members[service]
        except KeyError:
            raise ProcessError(f"unknown service {service!r}") from None

    def _all(self) -> list[R]:
        return [r for s in self._specs for r in [*self._members[s], *self._retired[s].values()]]

    def _select(self, service: str, index: int | None) -> list[R]:
        with self._lock:
            members = self._member_list(service)
            if index is None:
                return list(members)
            if not 1 <= index <= len(members):
                raise ProcessError(f"{service} has no replica {index} (has {len(members)})")
            return [members[index - 1]]

    def _launch(self, targets: list[R], wait: bool) -> list[Replica]:
        """Start the (busy-marked) targets, then optionally wait for all to be ready."""
        try:
            for r in targets:
                self._start_one(r)
        finally:
            with self._lock:
                for r in targets:
                    r._busy = False
        if wait:
            for r in targets:
                self.wait_ready(r)
        return list(targets)


def healthy(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> bool:
    """True when `url` answers HTTP 200 within `timeout`."""
    try:
        with opener.open(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, http.client.HTTPException, ValueError):  # URLError is an OSError
        return False
