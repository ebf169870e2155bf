"""The Docker runtime of one run: an `Engine` (labelled containers, removed at the end), the
configured images, and factories for the broker, Toxiproxy and service supervisors.

Shop images are made (or found in the cache) the first time a service of that kind starts; the
build output goes to ``<run_dir>/images/build-<kind>.log``.
"""
from __future__ import annotations

import threading
from pathlib import Path

from harness.errors import ImageError
from harness.infra.docker_services import RabbitContainer, ToxiproxyContainer
from harness.infra.docker_supervisor import DockerSupervisor
from harness.infra.engine import Engine
from harness.infra.images import ImageNames, has_image, shop_image


class DockerRuntime:
    """Containers for one run directory; `close()` removes everything this run created."""

    def __init__(self, run_dir: Path, names: ImageNames | None = None, engine: Engine | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.names = names or ImageNames.from_env()
        self.engine = engine or Engine()
        self._shop_images: dict[str, str] = {}
        self._lock = threading.Lock()

    def check_images(self) -> None:
        """ImageError naming every configured image the engine does not hold."""
        missing = [n for n in self.names.runtime_images() if not has_image(self.engine.client, n)]
        if missing:
            raise ImageError(f"Docker images missing: {', '.join(missing)}; `docker pull` them "
                             "(or, without a registry: python -m harness.infra.images)")

    def image_for(self, kind: str) -> str:
        """The shop image of `kind`, built once per content hash (cached by the engine)."""
        with self._lock:
            if kind not in self._shop_images:
                log = self.run_dir / "images" / f"build-{kind}.log"
                self._shop_images[kind] = shop_image(self.engine.client, kind, self.names, log=log)
            return self._shop_images[kind]

    def broker(self, base_dir: Path) -> RabbitContainer:
        return RabbitContainer(base_dir, self.engine, self.names.rabbitmq)

    def toxiproxy(self, base_dir: Path) -> ToxiproxyContainer:
        return ToxiproxyContainer(base_dir, self.engine, self.names.toxiproxy)

    def supervisor(self, run_dir: Path, systems: Path) -> DockerSupervisor:
        return DockerSupervisor(run_dir, self.engine, self.image_for, systems)

    def close(self) -> None:
        """Remove every container and volume of this run (logs collected). Idempotent."""
        self.engine.cleanup()
