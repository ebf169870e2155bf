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
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

from harness.errors import ProcessError
from harness.infra.supervision import ACTIVE, ReplicaSupervisor, ServiceSpec

__all__ = ["ACTIVE", "ProcessError", "Replica", "ServiceSpec", "Supervisor", "install_signal_handlers",
           "log_tail", "proc_stat", "spawn"]

_T = TypeVar("_T")
_KILL_WAIT = 5.0          # seconds to wait for a SIGKILLed process to vanish


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


class Supervisor(ReplicaSupervisor[Replica]):
    """Owns the replicas of several services as OS processes; see the module docstring for
    cleanup and harness/infra/supervision.py for what every supervisor shares."""

    no_health_grace = 0.2    # without a health URL, a replica must survive this long

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        with _registry_lock:
            _registry.add(self)

    # -------------------------------------------------------------- queries

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

    def pause(self, service: str, index: int | None = None) -> list[Replica]:
        """SIGSTOP the replicas' process groups; returns once each leader is stopped (state T in
        /proc: signal delivery is asynchronous) or after 2 s."""
        paused = self._transition(service, index, signal.SIGSTOP, "running", "paused")
        _wait_stopped([r.pid for r in paused if r.pid is not None], timeout=2.0)
        return paused

    def resume(self, service: str, index: int | None = None) -> list[Replica]:
        return self._transition(service, index, signal.SIGCONT, "paused", "running")

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything (resume, SIGTERM, SIGKILL after `timeout`, reap). Idempotent."""
        with self._lock:
            self._closed = True
            reps = self._all()
        self._terminate(reps, signal.SIGTERM, timeout, "stopped")
        with _registry_lock:
            _registry.discard(self)

    # -------------------------------------------------------------- internals

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

    def _start_one(self, r: Replica) -> None:
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

    def _stop_replicas(self, reps: list[Replica], timeout: float) -> list[Replica]:
        return self._terminate(reps, signal.SIGTERM, timeout, "stopped")

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


def proc_stat(pid: int) -> tuple[str, str, int, int] | None:
    """(comm, state, ppid, start ticks) of `pid` from /proc/<pid>/stat, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        return comm, fields[0], int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _wait_stopped(pids: list[int], timeout: float) -> None:
    """Wait until every pid is in a stopped state (T) or gone, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all((st := proc_stat(pid)) is None or st[1] in ("T", "t") for pid in pids):
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
