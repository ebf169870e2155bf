"""The infrastructure of one run: a Toxiproxy server and a private RabbitMQ node (optional), under
one run directory, stopped together (also on errors and Ctrl-C), and the supervisors the shops run
their services with -- all from one runtime, local processes or Docker containers
(harness/infra/runtime.py)."""
from __future__ import annotations

from pathlib import Path
from types import TracebackType

from harness.infra.broker import RabbitNode
from harness.infra.docker_runtime import DockerRuntime
from harness.infra.processes import Supervisor
from harness.infra.runtime import ServiceSupervisor, resolve_runtime
from harness.infra.toxiproxy import Toxiproxy, ToxiproxyServer


class Infrastructure:
    """Start with `with Infrastructure(run_dir, broker=True) as infra:`; everything is cleaned up on exit.

    `broker=False` skips RabbitMQ (the sync shop does not need it). `runtime` is "local",
    "docker" or "auto" (None: $CHAOSCAFE_RUNTIME, else "local"); `self.runtime` is the one chosen.
    """

    def __init__(self, run_dir: Path, *, broker: bool = True, runtime: str | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()   # absolute: handed to children with another cwd
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.runtime = resolve_runtime(runtime)
        self.docker: DockerRuntime | None = None
        self.toxiproxy_server: ToxiproxyServer
        self.broker: RabbitNode | None
        if self.runtime == "docker":
            self.docker = DockerRuntime(self.run_dir)
            self.toxiproxy_server = self.docker.toxiproxy(self.run_dir / "toxiproxy")
            self.broker = self.docker.broker(self.run_dir / "broker") if broker else None
        else:
            self.toxiproxy_server = ToxiproxyServer(self.run_dir / "toxiproxy")
            self.broker = RabbitNode(self.run_dir / "broker") if broker else None
        self._client: Toxiproxy | None = None

    @property
    def toxiproxy(self) -> Toxiproxy:
        """The client of this run's Toxiproxy server (one, reused)."""
        if self._client is None:
            self._client = self.toxiproxy_server.client()
        return self._client

    def supervisor(self, run_dir: Path) -> ServiceSupervisor:
        """A new supervisor of this runtime for services whose files live under `run_dir`."""
        if self.docker is None:
            return Supervisor(run_dir)
        from harness.shops.base import systems_dir

        return self.docker.supervisor(run_dir, systems_dir())

    def start(self) -> "Infrastructure":
        try:
            if self.docker is not None:
                self.docker.check_images()
            self.toxiproxy_server.start()
            if self.broker is not None:
                self.broker.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the broker and Toxiproxy (stop the shops first); with Docker, remove every
        container and volume of the run. Idempotent."""
        try:
            if self.broker is not None:
                self.broker.cleanup()
        finally:
            try:
                self.toxiproxy_server.stop()
            finally:
                if self.docker is not None:
                    self.docker.close()

    def describe(self) -> dict[str, str]:
        info = {"run_dir": str(self.run_dir), "runtime": self.runtime, "toxiproxy": self.toxiproxy_server.api_url}
        if self.broker is not None:
            info.update(amqp=self.broker.amqp_url, management=self.broker.management_url,
                        broker_node=self.broker.nodename)
        return info

    def __enter__(self) -> "Infrastructure":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
