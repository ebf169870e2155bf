"""Run service replicas as real OS processes and break them on purpose.

`Supervisor` starts N replicas of a `ServiceSpec`, each its own process in its
own session/process group, with stdout+stderr appended to
``run_dir/logs/<service>-<index>.log``. It can kill (SIGKILL), pause (SIGSTOP),
resume (SIGCONT), stop (SIGTERM, then SIGKILL), start again, restart and scale.
Signals always go to the replica's process group, and only while the group
leader is a child that has not been reaped yet, so the PID (= PGID) cannot
belong to anyone else.

Cleanup contract -- everything a Supervisor started is stopped when:
  * the ``with Supervisor(...)`` block exits, normally or by exception
    (including KeyboardInterrupt from Ctrl-C: children are in their own
    sessions, so a terminal Ctrl-C reaches only the harness);
  * the interpreter exits normally (an ``atexit`` hook shuts down every live
    supervisor);
  * the harness gets SIGTERM -- only if the CLI called
    `install_signal_handlers()` (never done on import), which turns SIGTERM
    into SystemExit so the ``with`` blocks unwind;
  * the harness is SIGKILLed: each child has PR_SET_PDEATHSIG=SIGKILL. The
    kernel fires it when the *thread* that forked the child dies, so every
    child is forked by one module-level daemon thread that lives as long as
    the process (calling from short-lived worker threads is therefore safe).
    Grandchildren of a service are not covered by this safety net.

A replica that exits on its own becomes state "exited" (with `returncode`);
nothing restarts it. States are refreshed lazily by `replicas()`, `pids()`
and every operation.
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from queue import SimpleQueue
from types import TracebackType
from typing import Any, TypeVar

_T = TypeVar("_T")
ACTIVE = ("running", "paused")
_KILL_WAIT = 5.0          # seconds to wait for a SIGKILLed process to vanish
_NO_HEALTH_GRACE = 0.2    # without a health URL, a replica must survive this long
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


class ProcessError(RuntimeError):
    """A replica could not be started, became unready, or an operation was invalid."""


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


@dataclass(eq=False)
class Replica:
    """One replica slot; survives restarts (same index, log file and command(index))."""

    service: str
    index: int
    name: str
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    state: str = "stopped"   # "running" | "paused" | "stopped" | "killed" | "exited"
    starts: int = 0
    returncode: int | None = None   # of the last process, once reaped
    _busy: bool = field(default=False, repr=False)   # a start/stop is in flight

    @property
    def pid(self) -> int | None:
        """PID of the current (or last) process, None if never started."""
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        """True while the current process has not exited (never reaps it)."""
        return self.popen is not None and not _has_exited(self.popen)


# ------------------------------------------------------------------ low level


def _has_exited(popen: subprocess.Popen[bytes]) -> bool:
    """Exited (zombie or reaped)? Uses WNOWAIT so the PID stays ours until we reap it."""
    if popen.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:   # reaped behind our back
        return True


def _signal_group(popen: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Signal the replica's process group, only while its leader is unreaped (PGID is ours)."""
    if popen is None or popen.returncode is not None:
        return
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _preexec(stamp: str, parent: int) -> Callable[[], None]:
    """Child-side setup: PDEATHSIG=SIGKILL, then the log header (fd 1 is already the log)."""
    def run() -> None:
        if _PRCTL is not None:
            _PRCTL(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        if os.getppid() != parent:   # harness died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)
        os.write(1, f"=== started pid {os.getpid()} at {stamp} ===\n".encode())
    return run


class _Spawner:
    """One long-lived daemon thread that forks every child (PDEATHSIG is per thread)."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="chaoscafe-spawner",
                                                daemon=True)
                self._thread.start()
        fut: Future[_T] = Future()
        self._queue.put((fn, fut))
        return fut.result()

    def _loop(self) -> None:
        while True:
            fn, fut = self._queue.get()
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)


_spawner = _Spawner()


def spawn(argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start `argv` as every chaoscafe child is started: its own session, output appended to
    `log_path` after a "=== started pid N ===" line, PR_SET_PDEATHSIG=SIGKILL, forked by the
    long-lived spawner thread (safe to call from any thread). Raises OSError/SubprocessError."""
    stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")

    def fork() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                list(argv), stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
                preexec_fn=_preexec(stamp, os.getpid()))

    return _spawner.run(fork)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ("" if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


# ------------------------------------------------------------------ registry


_registry: set[Supervisor] = set()
_registry_lock = threading.Lock()


def _shutdown_all() -> None:
    with _registry_lock:
        live = list(_registry)
    for sup in live:
        try:
            sup.shutdown()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_shutdown_all)


def install_signal_handlers() -> None:
    """For CLIs (main thread): SIGTERM raises SystemExit(143) and SIGINT KeyboardInterrupt,
    so `with Supervisor(...)` blocks unwind and stop their children."""
    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ------------------------------------------------------------------ supervisor


class Supervisor:
    """Owns the replicas of several services; see the module docstring for cleanup.

    Mutating operations return the replicas they acted on (e.g. kill() skips dead ones).
    `index=None` means every replica of the service."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._log_dir = self.run_dir / "logs"
        self._lock = threading.RLock()
        self._specs: dict[str, ServiceSpec] = {}
        self._members: dict[str, list[Replica]] = {}    # index order, indexes 1..len
        self._retired: dict[str, dict[int, Replica]] = {}  # scaled away, reusable
        self._closed = False
        with _registry_lock:
            _registry.add(self)

    # -------------------------------------------------------------- queries

    def services(self) -> list[str]:
        with self._lock:
            return list(self._specs)

    def replicas(self, service: str) -> list[Replica]:
        """Members in index order, states refreshed (includes stopped/killed/exited)."""
        with self._lock:
            reps = list(self._member_list(service))
            self._refresh(reps)
            return reps

    def pids(self) -> list[int]:
        """PIDs of every live process this supervisor started."""
        with self._lock:
            reps = self._all()
            self._refresh(reps)
            return [r.popen.pid for r in reps if r.popen is not None and r.alive()]

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

    def start(self, service: str, index: int | None = None, *, wait: bool = True) -> list[Replica]:
        """(Re)start the selected replicas that are not running/paused, with command(index)."""
        with self._lock:
            self._check_open()
            reps = self._select(service, index)
            self._refresh(reps)
            targets = [r for r in reps if r.state not in ACTIVE and not r._busy]
            for r in targets:
                r._busy = True
        return self._launch(targets, wait)

    def kill(self, service: str, index: int | None = None) -> list[Replica]:
        """SIGKILL the process groups and reap; state "killed"."""
        return self._terminate(self._select(service, index), signal.SIGKILL, _KILL_WAIT, "killed")

    def stop(self, service: str, index: int | None = None, timeout: float = 10.0) -> list[Replica]:
        """SIGTERM (after SIGCONT if paused), SIGKILL after `timeout`; state "stopped"."""
        return self._terminate(self._select(service, index), signal.SIGTERM, timeout, "stopped")

    def restart(self, service: str, index: int | None = None, *,
                wait: bool = True) -> list[Replica]:
        """Graceful stop, then start; returns the replicas started."""
        self.stop(service, index)
        return self.start(service, index, wait=wait)

    def pause(self, service: str, index: int | None = None) -> list[Replica]:
        """SIGSTOP the replicas' process groups; returns once each leader is stopped (state T in
        /proc: signal delivery is asynchronous) or after 2 s."""
        paused = self._transition(service, index, signal.SIGSTOP, "running", "paused")
        _wait_stopped([r.pid for r in paused if r.pid is not None], timeout=2.0)
        return paused

    def resume(self, service: str, index: int | None = None) -> list[Replica]:
        return self._transition(service, index, signal.SIGCONT, "paused", "running")

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
        self._terminate(retired, signal.SIGTERM, 10.0, "stopped")
        self._launch(new, wait)
        return [r for r in self.replicas(service) if r.state == "running"]

    def wait_ready(self, replica: Replica, timeout: float | None = None) -> None:
        """Poll health_url (loopback, no proxy) until HTTP 200; ProcessError with the log tail
        if the process exits or the deadline passes."""
        spec = self._specs[replica.service]
        limit = spec.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        url = spec.health_url(replica.index)
        if url is not None and urllib.parse.urlsplit(url).hostname not in _LOCAL_HOSTS:
            raise ProcessError(f"{replica.name}: health URL must be on 127.0.0.1: {url}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        grace_end = time.monotonic() + _NO_HEALTH_GRACE
        while True:
            if not replica.alive():
                with self._lock:
                    self._refresh([replica])
                raise self._error(replica, f"exited with code {replica.returncode} before ready")
            now = time.monotonic()
            if url is None and now >= min(grace_end, deadline):
                return
            if url is not None and self._healthy(opener, url, min(1.0, max(0.05, deadline - now))):
                return
            if time.monotonic() >= deadline:
                raise self._error(replica, f"not ready within {limit:g}s ({url})")
            time.sleep(0.05)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything (resume, SIGTERM, SIGKILL after `timeout`, reap). Idempotent."""
        with self._lock:
            self._closed = True
            reps = self._all()
        self._terminate(reps, signal.SIGTERM, timeout, "stopped")
        with _registry_lock:
            _registry.discard(self)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    # -------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise ProcessError("supervisor is shut down")

    def _member_list(self, service: str) -> list[Replica]:
        try:
            return self._members[service]
        except KeyError:
            raise ProcessError(f"unknown service {service!r}") from None

    def _all(self) -> list[Replica]:
        return [r for s in self._specs for r in
                [*self._members[s], *self._retired[s].values()]]

    def _select(self, service: str, index: int | None) -> list[Replica]:
        with self._lock:
            members = self._member_list(service)
            if index is None:
                return list(members)
            if not 1 <= index <= len(members):
                raise ProcessError(f"{service} has no replica {index} (has {len(members)})")
            return [members[index - 1]]

    def _new_replica(self, service: str, index: int) -> Replica:
        name = f"{service}-{index}"
        return Replica(service, index, name, self._log_dir / f"{name}.log")

    def _refresh(self, reps: list[Replica]) -> None:
        """Caller holds the lock: mark self-exited processes "exited" and reap them."""
        for r in reps:
            if r.state in ACTIVE and not r._busy and r.popen is not None and _has_exited(r.popen):
                self._reap(r, "exited")

    def _reap(self, r: Replica, state: str) -> None:
        """Caller holds the lock: kill group stragglers, reap the leader, set the state."""
        assert r.popen is not None
        _signal_group(r.popen, signal.SIGKILL)
        try:
            r.returncode = r.popen.wait(timeout=_KILL_WAIT)
        except subprocess.TimeoutExpired:
            raise ProcessError(f"{r.name}: pid {r.popen.pid} survived SIGKILL") from None
        r.state = state

    def _transition(self, service: str, index: int | None, sig: int, before: str,
                     after: str) -> list[Replica]:
        with self._lock:
            reps = self._select(service, index)
            self._refresh(reps)
            done = [r for r in reps if r.state == before and not r._busy]
            for r in done:
                _signal_group(r.popen, sig)
                r.state = after
            return done

    def _launch(self, targets: list[Replica], wait: bool) -> list[Replica]:
        """Spawn the (busy-marked) targets, then optionally wait for all to be ready."""
        try:
            for r in targets:
                self._spawn(r)
        finally:
            with self._lock:
                for r in targets:
                    r._busy = False
        if wait:
            for r in targets:
                self.wait_ready(r)
        return targets

    def _spawn(self, r: Replica) -> None:
        spec = self._specs[r.service]
        argv = spec.command(r.index)
        env = {**os.environ, **spec.env}
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            popen = spawn(argv, log_path=r.log_path, env=env, cwd=spec.cwd)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ProcessError(f"{r.name}: cannot start {argv!r}: {exc}") from exc
        with self._lock:
            r.popen, r.state, r.returncode = popen, "running", None
            r.starts += 1
            if self._closed:   # shutdown raced with this start
                self._reap(r, "stopped")

    def _terminate(self, reps: list[Replica], sig: int, timeout: float,
                   final: str) -> list[Replica]:
        """Send `sig` to the active replicas, SIGKILL what outlives `timeout`, reap all."""
        with self._lock:
            self._refresh(reps)
            targets = [r for r in reps if r.state in ACTIVE and not r._busy]
            for r in targets:
                r._busy = True
                if r.state == "paused" and sig != signal.SIGKILL:
                    _signal_group(r.popen, signal.SIGCONT)  # stopped processes ignore SIGTERM
                _signal_group(r.popen, sig)
        try:
            pending = _wait_exited(targets, timeout)
            if pending:
                with self._lock:
                    for r in pending:
                        _signal_group(r.popen, signal.SIGKILL)
                _wait_exited(pending, _KILL_WAIT)
        finally:
            with self._lock:
                for r in targets:
                    try:
                        self._reap(r, final)
                    finally:
                        r._busy = False
        return targets

    def _error(self, r: Replica, what: str) -> ProcessError:
        return ProcessError(f"{r.name} (pid {r.pid}) {what}; last log lines of {r.log_path}:\n"
                            f"{log_tail(r.log_path)}")

    @staticmethod
    def _healthy(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> bool:
        try:
            with opener.open(url, timeout=timeout) as resp:
                return bool(resp.status == 200)
        except (OSError, http.client.HTTPException, ValueError):  # URLError is an OSError
            return False


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _wait_stopped(pids: list[int], timeout: float) -> None:
    """Wait until every pid is in a stopped state (T) or gone, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_proc_state(pid) in ("T", "t", None) for pid in pids):
            return
        time.sleep(0.01)


def _wait_exited(reps: list[Replica], timeout: float) -> list[Replica]:
    """Poll (without reaping) until all have exited or `timeout` passes; return the rest."""
    deadline = time.monotonic() + timeout
    pending = list(reps)
    while pending:
        pending = [r for r in pending if r.popen is not None and not _has_exited(r.popen)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return pending
