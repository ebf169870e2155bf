"""Process faults: kill (SIGKILL, restart at the end), pause (SIGSTOP / SIGCONT), stop (SIGTERM / start)."""
from __future__ import annotations

from harness.nemesis.base import ProcessFault, register
from harness.shops.base import Shop


@register
class Kill(ProcessFault):
    kind = "kill"

    def start(self, shop: Shop) -> None:
        shop.supervisor.kill(self.service, self.window.replica)

    def stop(self, shop: Shop) -> None:
        shop.supervisor.start(self.service, self.window.replica)


@register
class Pause(ProcessFault):
    kind = "pause"

    def start(self, shop: Shop) -> None:
        shop.supervisor.pause(self.service, self.window.replica)

    def stop(self, shop: Shop) -> None:
        shop.supervisor.resume(self.service, self.window.replica)


@register
class Stop(ProcessFault):
    kind = "stop"

    def start(self, shop: Shop) -> None:
        shop.supervisor.stop(self.service, self.window.replica)

    def stop(self, shop: Shop) -> None:
        shop.supervisor.start(self.service, self.window.replica)
