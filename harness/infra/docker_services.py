"""The broker and Toxiproxy of the Docker runtime: one container each, on the host network.

`RabbitContainer` offers every operation of `RabbitNode` (same identity: node name, loopback
ports, credentials, URLs; same queries through the management API), with the node in a container
of the configured RabbitMQ image: its config is generated into ``<base_dir>/etc`` and mounted
read-only, its data lives in a named volume of the run (so a crash or stop keeps it), crash is
``docker kill``, stop is ``docker stop``, restart starts the same container again.

`ToxiproxyContainer` is a `ToxiproxyServer` whose server runs in the configured Toxiproxy image
(``-host 127.0.0.1 -port N``). Both write their container's output into their base_dir when the
container is removed (`cleanup()` / `stop()`).
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from harness.errors import BrokerError, ToxiproxyError
from harness.infra.broker import NODE_ERL_ARGS, RabbitNode, _port_open
from harness.infra.engine import Engine, log_tail
from harness.infra.ports import free_port
from harness.infra.toxiproxy import Toxiproxy, ToxiproxyServer

_HOST = "127.0.0.1"
RABBIT_ETC = "/etc/chaoscafe-rabbitmq"
RABBIT_DATA = "/var/lib/rabbitmq"


def _running(container: Any) -> bool:
    if container is None:
        return False
    try:
        container.reload()
    except Exception:  # noqa: BLE001 - removed
        return False
    return container.status in ("running", "paused", "restarting")


class RabbitContainer(RabbitNode):
    """A private RabbitMQ node in a container; see the module docstring."""

    def __init__(self, base_dir: Path, engine: Engine, image: str, *, name: str = "cafe") -> None:
        super().__init__(base_dir, name=name, management=True)
        self.engine = engine
        self.image = image
        self.container: Any = None
        self._volume: str | None = None

    @property
    def log_file(self) -> Path:
        """The node's output, collected when the container is removed."""
        return self.base_dir / "rabbit.log"

    def _prepare(self) -> None:
        """Write rabbitmq.conf, enabled_plugins and an empty conf.d into base_dir/etc (once)."""
        if self._prepared:
            return
        etc = self.base_dir / "etc"
        (etc / "conf.d").mkdir(parents=True, exist_ok=True)
        lines = [
            f"listeners.tcp.default = {_HOST}:{self.amqp_port}",
            f"default_user = {self.username}",
            f"default_pass = {self.password}",
            "loopback_users = none",
            "disk_free_limit.absolute = 50MB",
            "collect_statistics_interval = 500",
            f"management.tcp.ip = {_HOST}",
            f"management.tcp.port = {self.management_port}",
        ]
        (etc / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (etc / "enabled_plugins").write_text("[rabbitmq_management].\n")
        for path in (etc, etc / "conf.d"):
            path.chmod(0o755)
        for f in ("rabbitmq.conf", "enabled_plugins"):
            (etc / f).chmod(0o644)   # read by the image's rabbitmq user
        self._prepared = True

    def container_env(self) -> dict[str, str]:
        """The node's environment: own name, loopback epmd and distribution ports, our config."""
        return {
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": _HOST,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": _HOST,
            "RABBITMQ_CONFIG_FILE": f"{RABBIT_ETC}/rabbitmq.conf",
            "RABBITMQ_CONFIG_FILES": f"{RABBIT_ETC}/conf.d",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{RABBIT_ETC}/enabled_plugins",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": NODE_ERL_ARGS,
            "RABBITMQ_LOGS": "-",
        }

    def ctl(self, *args: str, timeout: float = 30, tool: str = "rabbitmqctl") -> subprocess.CompletedProcess[str]:
        """`<tool> -n <node> args...` inside the container (never raises on exit code)."""
        argv = [tool, "-n", self.nodename, *args]
        if not _running(self.container):
            return subprocess.CompletedProcess(argv, 1, "", "container not running")
        res = self.container.exec_run(argv, demux=True)
        out, err = res.output if isinstance(res.output, tuple) else (res.output, b"")
        return subprocess.CompletedProcess(argv, int(res.exit_code or 0), (out or b"").decode(errors="replace"),
                                           (err or b"").decode(errors="replace"))

    def _tail(self, n: int = 40) -> str:
        return log_tail(self.container, n) if self.container is not None else "(no container)"

    def start(self, timeout: float = 90) -> None:
        """Create (first time) or start the container; return once the AMQP port and the
        management API answer; BrokerError with the log tail otherwise."""
        if self.is_running():
            raise BrokerError(f"{self.nodename} is already running")
        self._prepare()
        if self.container is None:
            self._volume = self.engine.volume("rabbitmq-data")
            self.container = self.engine.create(
                self.image, "rabbitmq", environment=self.container_env(),
                mounts={self.base_dir / "etc": (RABBIT_ETC, "ro"), self._volume: (RABBIT_DATA, "rw")},
                log_path=self.log_file)
        self.container.start()
        deadline = time.monotonic() + timeout
        try:
            while not _port_open(self.amqp_port):
                if not _running(self.container):
                    raise BrokerError(f"{self.nodename} container exited during startup\n{self._tail()}")
                if time.monotonic() >= deadline:
                    raise BrokerError(f"{self.nodename} not ready after {timeout:.0f}s\n{self._tail()}")
                time.sleep(0.2)
            while True:
                try:
                    self._api("overview", timeout=2)
                    return
                except BrokerError as exc:
                    if time.monotonic() >= deadline:
                        raise BrokerError(f"management API not ready after {timeout:.0f}s: {exc}\n{self._tail()}") from exc
                    time.sleep(0.2)
        except BaseException:
            self.crash_quietly()
            raise

    def beam_pid(self) -> int | None:
        """Host PID of the container's main process (the Erlang VM) while it runs."""
        if not _running(self.container):
            return None
        return int(self.container.attrs.get("State", {}).get("Pid") or 0) or None

    def is_running(self) -> bool:
        return _running(self.container)

    def stop(self, timeout: float = 30) -> None:
        """`docker stop` (SIGTERM, SIGKILL after `timeout`); no-op if not running."""
        if not _running(self.container):
            return
        self.container.stop(timeout=int(timeout))
        self.container.wait(timeout=timeout + 10)

    def crash(self) -> None:
        """`docker kill` (SIGKILL of the node): a broker crash; data stays in the volume."""
        if not _running(self.container):
            raise BrokerError(f"{self.nodename} is not running")
        self.container.kill()
        self.container.wait(timeout=30)

    def crash_quietly(self) -> None:
        try:
            if _running(self.container):
                self.container.kill()
        except Exception:  # noqa: BLE001 - best effort on a failed start
            pass

    def cleanup(self, *, graceful: bool = False) -> None:
        """Remove the container (output into rabbit.log) and its data volume. Idempotent.
        The node is thrown away with its volume, so by default it is killed, not stopped
        gracefully (about 6 s with the management plugin), as `RabbitNode.cleanup` does."""
        if self.container is not None:
            self.engine.remove(self.container, stop_timeout=30 if graceful else 0)
            self.container = None
        if self._volume is not None:
            try:
                self.engine.client.volumes.get(self._volume).remove(force=True)
            except Exception:  # noqa: BLE001 - Engine.cleanup retries at the end of the run
                pass
            self._volume = None

    def pids(self) -> list[int]:
        pid = self.beam_pid()
        return [pid] if pid is not None else []


class ToxiproxyContainer(ToxiproxyServer):
    """The Toxiproxy server in a container on the host network, bound to 127.0.0.1:port."""

    def __init__(self, base_dir: Path, engine: Engine, image: str) -> None:   # noqa: D107
        # not calling super().__init__: it looks for a local toxiproxy-server binary
        self.binary = Path("/toxiproxy")
        self.base_dir = Path(base_dir).resolve()
        self.engine = engine
        self.image = image
        self.port = free_port(_HOST)
        self.api_url = f"http://{_HOST}:{self.port}"
        self.pid: int | None = None
        self._proc = None
        self.container: Any = None

    def start(self, timeout: float = 20) -> None:
        """Start the container and wait until GET /version answers; ToxiproxyError otherwise."""
        if _running(self.container):
            raise ToxiproxyError(f"toxiproxy container already running ({self.container.name})")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.container is None:
            self.container = self.engine.create(self.image, "toxiproxy",
                                                command=["-host", _HOST, "-port", str(self.port)],
                                                log_path=self.log_file)
        self.container.start()
        deadline = time.monotonic() + timeout
        probe = Toxiproxy(self.api_url, timeout=1.0)
        try:
            while True:
                if not _running(self.container):
                    raise ToxiproxyError(f"toxiproxy container exited: {self._tail()}")
                try:
                    probe.version()
                    self.pid = int(self.container.attrs.get("State", {}).get("Pid") or 0) or None
                    return
                except ToxiproxyError as exc:
                    if time.monotonic() >= deadline:
                        raise ToxiproxyError(f"toxiproxy not answering after {timeout}s: {self._tail()}") from exc
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        finally:
            probe.close()

    def _tail(self, n: int = 15) -> str:
        return log_tail(self.container, n) if self.container is not None else "(no container)"

    def stop(self, timeout: float = 5) -> None:
        """Remove the container (output into toxiproxy.log); idempotent."""
        container, self.container = self.container, None
        if container is not None:
            self.engine.remove(container, stop_timeout=timeout)
        self.pid = None

    def is_running(self) -> bool:
        return _running(self.container)
