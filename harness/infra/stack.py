"""The infrastructure of one run: a Toxiproxy server and a private RabbitMQ node (optional), under
one run directory, stopped together (also on errors and Ctrl-C). Shops run their own services."""
from __future__ import annotations

from pathlib import Path
from types import TracebackType

from harness.infra.broker import RabbitNode
from harness.infra.toxiproxy import Toxiproxy, ToxiproxyServer


class Infrastructure:
    """Start with `with Infrastructure(run_dir, broker=True) as infra:`; everything is cleaned up on exit.

    `broker=False` skips RabbitMQ (the sync shop does not need it).
    """

    def __init__(self, run_dir: Path, *, broker: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.toxiproxy_server = ToxiproxyServer(self.run_dir / "toxiproxy")
        self.broker: RabbitNode | None = RabbitNode(self.run_dir / "broker") if broker else None
        self._client: Toxiproxy | None = None

    @property
    def toxiproxy(self) -> Toxiproxy:
        """The client of this run's Toxiproxy server (one, reused)."""
        if self._client is None:
            self._client = self.toxiproxy_server.client()
        return self._client

    def start(self) -> "Infrastructure":
        try:
            self.toxiproxy_server.start()
            if self.broker is not None:
                self.broker.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the broker and Toxiproxy (stop the shops first). Idempotent."""
        try:
            if self.broker is not None:
                self.broker.cleanup()
        finally:
            self.toxiproxy_server.stop()

    def describe(self) -> dict[str, str]:
        info = {"run_dir": str(self.run_dir), "toxiproxy": self.toxiproxy_server.api_url}
        if self.broker is not None:
            info.update(amqp=self.broker.amqp_url, management=self.broker.management_url,
                        broker_node=self.broker.nodename)
        return info

    def __enter__(self) -> "Infrastructure":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
