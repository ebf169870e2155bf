"""`DockerSupervisor`: the process `Supervisor`'s operations, with each replica a container.

Same methods, same replica states and same return values as `harness.infra.processes.Supervisor`,
so shops, faults and experiments do not change. A service's `command(index)` (``python
<checkout>/systems/<kind>/<program>.py --config FILE``) becomes ``python3
/app/systems/<kind>/<program>.py --config FILE`` in the shop image of that kind (a shared program,
outside the shops' folders, runs in the image of the shop that starts it); the shop's run
directory is bind-mounted at the same path, so configs, SQLite databases and logs live where the
local runtime puts them. Every container runs on the host network as the invoking user.

Fault mapping: kill -> ``docker kill`` (SIGKILL); pause/resume -> ``docker pause``/``unpause``
(cgroup freezer); stop -> ``docker stop`` (SIGTERM, SIGKILL after the timeout); start -> ``docker
start`` of the replica's container (a new container when its command changed); scale -> more
containers, or the highest-indexed ones stopped. A replica's container output is written to
``run_dir/logs/<service>-<index>.log`` when the container is removed (at `shutdown`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ProcessError
from harness.infra.engine import Engine, host_user, log_tail
from harness.infra.images import SHOP_KINDS
from harness.infra.processes import Replica
from harness.infra.supervision import ACTIVE, ReplicaSupervisor

APP_DIR = "/app"
_KILL_WAIT = 10.0


def container_command(argv: list[str], systems: Path) -> tuple[str, list[str]]:
    """(folder, argv inside a shop image) for a service command whose program lies in
    `systems`/<folder>/; the interpreter becomes the image's python3. ProcessError otherwise."""
    root = systems.resolve()
    for i, arg in enumerate(argv):
        path = Path(arg)
        if path.is_absolute() and path.suffix == ".py" and path.resolve().parent.parent == root:
            folder = path.resolve().parent.name
            return folder, ["python3", f"{APP_DIR}/systems/{folder}/{path.name}", *argv[i + 1:]]
    raise ProcessError(f"not a service program under {systems}: {argv!r}")


#: program folders without a Dockerfile of their own, run in another shop's image (which holds all
#: of systems/ and their libraries): the resilient sync cashier runs in the sync image
SHARED_IMAGE = {"sync_resilient": "sync"}


def image_kind(folder: str, shop_dir: Path) -> str:
    """Which shop image runs a program of systems/<folder>/: that shop's own when the folder is a
    shop (SHOP_KINDS: it has a Dockerfile), else the image of the shop whose run directory is `shop_dir`."""
    if folder in SHOP_KINDS:
        return folder
    if folder in SHARED_IMAGE:
        return SHARED_IMAGE[folder]
    if shop_dir.name in SHOP_KINDS:
        return shop_dir.name
    raise ProcessError(f"no shop image for programs of systems/{folder}/ run from {shop_dir}")


def container_state(status: str, before: str) -> str:
    """Replica state for a container `status` (docker's word) given the state we last set."""
    if status == "paused":
        return "paused"
    if status in ("running", "restarting"):
        return "running" if before != "paused" else "paused"
    return "exited" if before in ACTIVE else before


@dataclass(eq=False)
class ContainerReplica(Replica):
    """A replica slot whose process is a container (`popen` stays None)."""

    container: Any = field(default=None, repr=False)
    argv: list[str] | None = None

    @property
    def pid(self) -> int | None:
        """Host PID of the container's main process while it runs, else None."""
        if self.container is None:
            return None
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - a removed container has no pid
            return None
        pid = int(self.container.attrs.get("State", {}).get("Pid") or 0)
        return pid or None

    def alive(self) -> bool:
        """True while the container is running or paused (asks the engine)."""
        return self.status() in ("running", "paused", "restarting")

    def status(self) -> str:
        if self.container is None:
            return "absent"
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - removed behind our back
            return "absent"
        return str(self.container.status)


class DockerSupervisor(ReplicaSupervisor[ContainerReplica]):
    """Owns the replica containers of several services; see the module docstring.

    `image_for(kind)` returns the shop image to run (one of SHOP_KINDS; built when missing)."""

    def __init__(self, run_dir: Path, engine: Engine, image_for: Callable[[str], str], systems: Path) -> None:
        super().__init__(Path(run_dir).resolve())
        self.engine = engine
        self._image_for = image_for
        self._systems = systems

    # -------------------------------------------------------------- queries

    def replicas(self, service: str) -> list[Replica]:
        """Members in index order, states refreshed from the engine."""
        with self._lock:
            reps = list(self._member_list(service))
        self._refresh(reps)
        return list(reps)

    def pids(self) -> list[int]:
        """Host PIDs of the main process of every running container."""
        with self._lock:
            reps = self._all()
        return [pid for r in reps if (pid := r.pid) is not None]

    # -------------------------------------------------------------- lifecycle

    def start(self, service: str, index: int | None = None, *, wait: bool = True) -> list[Replica]:
        """(Re)start the selected replicas that are not running/paused."""
        reps = self._select(service, index)
        self._refresh(reps)
        targets = self._claim(reps, lambda r: r.state not in ACTIVE)
        return self._launch(targets, wait)

    def kill(self, service: str, index: int | None = None) -> list[Replica]:
        """`docker kill` (SIGKILL) and wait until the container exited; state "killed"."""
        return self._terminate(self._select(service, index), "killed", 0.0)

    def pause(self, service: str, index: int | None = None) -> list[Replica]:
        """`docker pause` (cgroup freezer); returns once frozen."""
        reps = self._select(service, index)
        self._refresh(reps)
        done = self._claim(reps, lambda r: r.state == "running")
        return self._each(done, lambda r: r.container.pause(), "paused")

    def resume(self, service: str, index: int | None = None) -> list[Replica]:
        """`docker unpause`."""
        reps = self._select(service, index)
        self._refresh(reps)
        done = self._claim(reps, lambda r: r.state == "paused")
        return self._each(done, lambda r: r.container.unpause(), "running")

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop and remove every container (logs collected into run_dir/logs). Idempotent."""
        with self._lock:
            self._closed = True
            reps = self._all()
        for r in reps:
            if r.container is not None:
                self.engine.remove(r.container, timeout)
                r.container = None
                if r.state in ACTIVE:
                    r.state = "stopped"

    # -------------------------------------------------------------- internals

    def _new_replica(self, service: str, index: int) -> ContainerReplica:
        name = f"{service}-{index}"
        return ContainerReplica(service, index, name, self._log_dir / f"{name}.log")

    def _claim(self, reps: list[ContainerReplica], pick: Callable[[ContainerReplica], bool]) -> list[ContainerReplica]:
        """Mark the picked, idle replicas busy (under the lock) and return them."""
        with self._lock:
            targets = [r for r in reps if pick(r) and not r._busy]
            for r in targets:
                r._busy = True
            return targets

    def _refresh(self, reps: list[ContainerReplica]) -> None:
        """Mark replicas whose container exited on its own "exited" (with the exit code)."""
        for r in reps:
            if r._busy or r.state not in ACTIVE:
                continue
            status = r.status()
            state = container_state(status, r.state)
            if state == "exited" and r.container is not None:
                code = r.container.attrs.get("State", {}).get("ExitCode") if status != "absent" else None
                r.returncode = int(code) if code is not None else None
            with self._lock:
                if not r._busy:
                    r.state = state

    def _each(self, reps: list[ContainerReplica], op: Callable[[ContainerReplica], Any], state: str) -> list[Replica]:
        """Apply `op` to each claimed replica, set `state`, release; errors become ProcessError."""
        import docker.errors

        try:
            for r in reps:
                try:
                    op(r)
                except docker.errors.DockerException as exc:
                    raise ProcessError(f"{r.name}: {exc}") from exc
                r.state = state
        finally:
            with self._lock:
                for r in reps:
                    r._busy = False
        return list(reps)

    def _terminate(self, reps: list[ContainerReplica], final: str, timeout: float) -> list[Replica]:
        """Kill (`final` "killed") or stop the active replicas and wait until their containers exited."""
        import docker.errors

        self._refresh(reps)
        targets = self._claim(reps, lambda r: r.state in ACTIVE)

        def end(r: ContainerReplica) -> None:
            c = r.container
            c.reload()
            if final == "killed":
                if c.status == "paused":   # SIGKILL first, so the frozen process never runs again
                    try:
                        c.kill()
                    except docker.errors.APIError:   # an engine that refuses to kill a paused container
                        pass
                    c.reload()
                    if c.status == "paused":
                        c.unpause()
                        c.reload()
                if c.status in ("running", "restarting"):
                    c.kill()
            else:
                if c.status == "paused":
                    c.unpause()
                c.stop(timeout=max(1, int(round(timeout))))
            c.wait(timeout=_KILL_WAIT + timeout)
            c.reload()
            r.returncode = c.attrs.get("State", {}).get("ExitCode")

        return self._each(targets, end, final)

    def _stop_replicas(self, reps: list[ContainerReplica], timeout: float) -> list[Replica]:
        return self._terminate(reps, "stopped", timeout)

    def _start_one(self, r: ContainerReplica) -> None:
        import docker.errors

        spec = self._specs[r.service]
        folder, argv = container_command(spec.command(r.index), self._systems)
        kind = image_kind(folder, self.run_dir)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            if r.container is not None and r.argv != argv:
                self.engine.remove(r.container)
                r.container = None
            if r.container is None:
                env = {k: v for k, v in spec.env.items() if k != "PYTHONPATH"}
                cwd = str(Path(spec.cwd).resolve()) if spec.cwd is not None else str(self.run_dir)
                r.container = self.engine.create(
                    self._image_for(kind), f"{kind}-{r.name}", command=argv, environment=env,
                    mounts={self.run_dir: (str(self.run_dir), "rw")}, working_dir=cwd,
                    user=host_user(), log_path=r.log_path)
                r.argv = argv
            r.container.start()
        except docker.errors.DockerException as exc:
            raise ProcessError(f"{r.name}: cannot start a container: {exc}") from exc
        with self._lock:
            r.state, r.returncode = "running", None
            r.starts += 1
            closed = self._closed
        if closed:   # shutdown raced with this start
            self.engine.remove(r.container)
            r.container, r.state = None, "stopped"

    def _error(self, r: ContainerReplica, what: str) -> ProcessError:
        tail = log_tail(r.container) if r.container is not None else ""
        return ProcessError(f"{r.name} (container {r.container.name if r.container else '-'}) {what}; "
                            f"last log lines:\n{tail}")

