"""The infrastructure of one run: a Toxiproxy server and a RabbitMQ broker (optional: a private node,
or a vhost of its own on a node shared by the runs of a set), under one run directory, stopped
together (also on errors and Ctrl-C), and the supervisors the shops run their services with -- all
from one runtime, local processes or Docker containers (harness/infra/runtime.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from harness.errors import InputError
from harness.infra.broker import RabbitNode, Vhost
from harness.infra.cluster import RabbitCluster
from harness.infra.docker_runtime import DockerRuntime
from harness.infra.paths import systems_dir
from harness.infra.processes import Supervisor
from harness.infra.runtime import ServiceSupervisor, resolve_runtime
from harness.infra.toxiproxy import Toxiproxy, ToxiproxyServer


class Infrastructure:
    """Start with `with Infrastructure(run_dir, broker=True) as infra:`; everything is cleaned up on exit.

    `broker=False` skips RabbitMQ (the sync shop does not need it). With `shared_broker` (a running
    node, see `SharedBroker`) the run gets its own vhost and user on that node instead of a private
    node: starting costs a few management calls instead of a node boot, and the run cannot stop
    the broker. `runtime` is "local", "docker" or "auto" (None: $CHAOSCAFE_RUNTIME, else "local");
    `self.runtime` is the one chosen. `cluster` (a `ClusterSpec`) starts a private cluster of
    `cluster.nodes` members instead of one node (local runtime only; never shared).
    """

    def __init__(self, run_dir: Path, *, broker: bool = True, runtime: str | None = None,
                 shared_broker: RabbitNode | None = None, cluster: ClusterSpec | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()   # absolute: handed to children with another cwd
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.runtime = resolve_runtime(runtime)
        self.docker: DockerRuntime | None = None
        self.toxiproxy_server: ToxiproxyServer
        self.broker: RabbitNode | Vhost | RabbitCluster | None
        if self.runtime == "docker":
            self.docker = DockerRuntime(self.run_dir)
            self.toxiproxy_server = self.docker.toxiproxy(self.run_dir / "toxiproxy")
        else:
            self.toxiproxy_server = ToxiproxyServer(self.run_dir / "toxiproxy")
        if not broker:
            self.broker = None
        elif cluster is not None and cluster.nodes > 1:
            if self.docker is not None:
                raise InputError("[broker] nodes > 1 needs the local runtime (--runtime local)")
            self.broker = RabbitCluster(self.run_dir / "cluster", size=cluster.nodes,
                                        partition_handling=cluster.partition_handling,
                                        net_ticktime_s=cluster.net_ticktime_s)
        elif shared_broker is not None:
            self.broker = Vhost(shared_broker)
        elif self.docker is not None:
            self.broker = self.docker.broker(self.run_dir / "broker")
        else:
            self.broker = RabbitNode(self.run_dir / "broker")
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
                        broker_node=self.broker.nodename, vhost=self.broker.vhost,
                        broker_shared="yes" if self.broker.shared else "no")
            if isinstance(self.broker, RabbitCluster):
                info["broker_nodes"] = ", ".join(self.broker.names())
        return info

    def __enter__(self) -> "Infrastructure":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class ClusterSpec:
    """A private RabbitMQ cluster for one run (harness/infra/cluster.py): `nodes` members, RabbitMQ's
    `cluster_partition_handling`, and Erlang's `net_ticktime` (s: a silent peer is declared down
    after 1-1.25 x it)."""

    nodes: int = 1
    partition_handling: str = "pause_minority"
    net_ticktime_s: int = 60


class SharedBroker:
    """One RabbitMQ node for many shop runs (a `chaoscafe run` set, a pytest session), started on
    the first `node()` call under `run_dir` and stopped by `close()` (or the `with` block). Each run
    takes its own vhost on it (`Infrastructure(..., shared_broker=shared.node())`). Only for the
    local runtime: `node()` returns None under Docker, where each run keeps its broker container."""

    def __init__(self, run_dir: Path, *, runtime: str | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.runtime = runtime
        self._local: bool | None = None   # the runtime, resolved once (it may ask the Docker engine)
        self._node: RabbitNode | None = None

    def node(self) -> RabbitNode | None:
        """The running shared node (started now if it is not), or None under the Docker runtime."""
        if self._local is None:
            self._local = resolve_runtime(self.runtime) == "local"
        if not self._local:
            return None
        if self._node is None:
            node = RabbitNode(self.run_dir, name="shared")
            try:
                node.start()
            except BaseException:
                node.cleanup()
                raise
            self._node = node
        elif not self._node.is_running():   # a crashed shared node is restarted, never reused dead
            self._node.restart()
        return self._node

    def close(self) -> None:
        """Stop the node and its epmd if one was started. Idempotent."""
        if self._node is not None:
            try:
                self._node.cleanup()
            finally:
                self._node = None

    def __enter__(self) -> "SharedBroker":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
