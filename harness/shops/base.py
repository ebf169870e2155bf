"""What both shops offer the harness, so nothing outside `harness/shops/` branches on architecture.

A `Shop` starts its services (each a separate OS process, run by path from `systems/<kind>/`)
behind Toxiproxy proxies on an `Infrastructure`, and lets the harness place orders through its
entry proxy and read what was brewed and served through the services' read APIs.
"""
from __future__ import annotations

import json
import sys
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from cafe.config import ServiceConfig
from harness.errors import NotApplicable
from harness.infra.paths import services_pythonpath, systems_dir
from harness.infra.ports import free_port
from harness.infra.processes import ServiceSpec
from harness.infra.stack import Infrastructure
from harness.infra.toxiproxy import Proxy
from harness.shops.settings import ShopSettings
from harness.shops.traits import ShopTraits


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def read_all(base_url: str, path: str, page: int = 1000) -> list[dict[str, Any]]:
    """Every row of a paged read API (`?after=&limit=`), oldest first."""
    rows: list[dict[str, Any]] = []
    after = 0
    while True:
        data = http_json(f"{base_url}{path}?after={after}&limit={page}")
        rows.extend(data["items"])
        if data["next"] is None:
            return rows
        after = data["next"]


class Shop(ABC):
    """One coffee shop under test. Use as a context manager or call start()/stop()."""

    kind: ClassVar[str]
    accepted_status: ClassVar[int]      # HTTP status of an accepted order
    traits: ClassVar[ShopTraits]        # what the shop is (harness/shops/traits.py), asked instead of `kind`
    programs: ClassVar[Path | None] = None   # where its service programs are; None: systems/<kind>/ (built-ins)

    def __init__(self, infra: Infrastructure, settings: ShopSettings | None = None) -> None:
        self.infra = infra
        self.settings = settings or ShopSettings()
        self.dir = infra.run_dir / self.kind
        self.dir.mkdir(parents=True, exist_ok=True)
        self.supervisor = infra.supervisor(self.dir)   # processes or containers (the run's runtime)
        self.ports: dict[str, int] = {}
        self.proxies: dict[str, Proxy] = {}
        self.edges: dict[str, list[str]] = {}  # edge name ("orders->barista") -> proxy names
        self.proxy_replica: dict[str, int | None] = {}

    # services -----------------------------------------------------------------
    def port(self, replica_name: str) -> int:
        """A port for `replica_name`, the same across its restarts."""
        if replica_name not in self.ports:
            self.ports[replica_name] = free_port()
        return self.ports[replica_name]

    def proxy(self, name: str, edge: str, upstream_port: int, replica: int | None = None,
              upstream_host: str = "127.0.0.1") -> Proxy:
        """The Toxiproxy proxy `name` (created once) in front of upstream_host:upstream_port, on
        `edge`; `replica` marks a proxy that serves one replica only (e.g. one barista's broker
        connection)."""
        if name not in self.proxies:
            self.proxies[name] = self.infra.toxiproxy.create_proxy(f"{self.kind}-{name}",
                                                                   f"{upstream_host}:{upstream_port}")
            self.edges.setdefault(edge, []).append(self.proxies[name].name)
            self.proxy_replica[self.proxies[name].name] = replica
        return self.proxies[name]

    def proxies_for(self, edge: str, replica: int | None = None) -> list[str]:
        """Toxiproxy proxy names carrying `edge` (a logical edge, see EDGES), optionally only those of
        one replica; NotApplicable if this shop has no such edge."""
        names = [p for e in self.edge_aliases.get(edge, (edge,)) for p in self.edges.get(e, [])]
        if replica is not None:
            names = [p for p in names if self.proxy_replica.get(p) == replica]
        if not names:
            which = f" for replica {replica}" if replica is not None else ""
            raise NotApplicable(f"the {self.kind} shop has no edge {edge!r}{which} "
                                f"(it has {', '.join(sorted(set(self.edges) | set(self.edge_aliases)))})")
        return names

    @staticmethod
    def proxy_url(proxy: Proxy) -> str:
        return f"http://127.0.0.1:{proxy.listen_port}"

    def service(self, name: str, program: str, config_for: Any, *, directory: str | None = None) -> ServiceSpec:
        """A ServiceSpec running <program> of the shop's `programs` folder, or of
        systems/<directory or kind>/ when it has none or `directory` is given ("newcomers" for
        services that join a running shop), with the ServiceConfig `config_for(index)`."""
        folder = self.programs if self.programs is not None and directory is None \
            else systems_dir() / (directory or self.kind)
        script = folder / program
        configs = self.dir / "config"
        configs.mkdir(exist_ok=True)

        def command(index: int) -> list[str]:
            config: ServiceConfig = config_for(index)
            path = config.write(configs / f"{config.name}.json")
            return [sys.executable, str(script), "--config", str(path)]

        def health(index: int) -> str:
            return f"http://127.0.0.1:{self.port(f'{name}-{index}')}/health"

        env = {"PYTHONPATH": services_pythonpath(), "PYTHONUNBUFFERED": "1"}
        return ServiceSpec(name, command, health, env=env, cwd=self.dir)

    def base_config(self, replica_name: str, db: str) -> ServiceConfig:
        s = self.settings
        return ServiceConfig(name=replica_name, port=self.port(replica_name), db=str(self.dir / db),
                             menu=s.menu, brewers=s.brewers, brew=s.brew, capacity=s.capacity,
                             barista_timeout_s=s.barista_timeout_s, prefetch=s.prefetch,
                             idempotency=s.idempotency, publish_mode=s.publish_mode,
                             queue_type=s.queue_type, delivery_limit=s.delivery_limit,
                             max_length=s.max_length, overflow=s.overflow, heartbeat_s=s.heartbeat_s,
                             quorum_members=s.quorum_members)

    def url(self, replica_name: str) -> str:
        """Direct URL of a replica (for reading observations; orders go through `entry_url`)."""
        return f"http://127.0.0.1:{self.port(replica_name)}"

    def first_live_url(self, service: str) -> str:
        for replica in self.supervisor.replicas(service):
            if replica.alive():
                return self.url(replica.name)
        raise RuntimeError(f"{self.kind} shop: no live {service} replica to read from")

    def barista_config(self, index: int, **extra: Any) -> ServiceConfig:
        """The ServiceConfig of barista replica `index` (its own brew model when it is the slow one)."""
        return replace(self.base_config(f"barista-{index}", "barista.db"), brew=self.settings.brew_of(index), **extra)

    # scaling -------------------------------------------------------------------
    def replica_count(self, target: str) -> int:
        """Replicas the service playing `target` has now (running or not)."""
        return len(self.supervisor.replicas(self.service_for(target)))

    def scale(self, target: str, n: int) -> int:
        """Give the service playing `target` n replicas (new ones started and ready, surplus ones
        stopped gracefully, highest index first); returns the count before. Subclasses keep their
        routing in step through `_routing_changed`, called before a scale-down (stop sending to the
        leavers) and after a scale-up (start sending to the ready newcomers)."""
        service = self.service_for(target)
        before = self.replica_count(target)
        if n < before:
            self._routing_changed(service, n)
        self.supervisor.scale(service, n)
        if n > before:
            self._routing_changed(service, n)
        return before

    def _routing_changed(self, service: str, n: int) -> None:
        """Hook: `service` is about to have (or now has) replicas 1..n. Nothing to do by default
        (the async shop's replicas find their work on the shared queue)."""
        return None

    # the harness-facing operations ---------------------------------------------
    @property
    @abstractmethod
    def entry_url(self) -> str:
        """Where customers place orders (`POST {entry_url}/orders`), through the entry proxy."""

    @abstractmethod
    def start(self) -> "Shop": ...

    @abstractmethod
    def brewed(self) -> list[dict[str, Any]]:
        """Every brew record (order_id, ref, barista, started_at, brewed_at, ...)."""

    @abstractmethod
    def served(self) -> list[dict[str, Any]]:
        """Every serving (order_id, ref, served_at, ...), one row per coffee handed out."""

    # which observation each ledger number comes from (shown in the report; docs/architecture.md)
    observed_from: ClassVar[dict[str, str]] = {}

    def servings(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every coffee handed to a customer (order_id, ref, served_at), as observed, not as the
        shop echoes it: by default the shop's serving record (`served`)."""
        return self.served()

    @abstractmethod
    def order_records(self) -> list[dict[str, Any]]:
        """The shop's own record of the orders it took, to settle outcomes the customer never
        learnt (Jepsen's info): one row per order with `ref`, `status` (the shop's word) and
        `taken` (True: the shop kept the order and will or did make it)."""

    def dead_letters(self) -> int:
        """Messages the shop's broker dead-lettered (rejected, over their delivery limit, or dropped
        from a full queue); 0 in a shop without a broker."""
        return 0

    def redeliveries(self) -> list[dict[str, Any]]:
        """Every delivery the broker made again (order_id, ref, barista, delivery_count, seen_at);
        none in a shop without a broker."""
        return []

    def held(self) -> dict[str, int]:
        """Orders each live barista replica holds now, by replica name (the backlog's `held`)."""
        return dict(self.backlog().get("held") or {})

    @abstractmethod
    def backlog(self) -> dict[str, Any]:
        """Orders waiting now: queue depth (async) or calls in flight / in line (sync). Always has
        `total` (orders in the shop, waiting or being brewed), `baristas` (replicas now) and `held`
        (orders held per barista replica, by replica name, where the shop can tell)."""

    roles: ClassVar[dict[str, str]]    # fault target -> service name in this shop
    edge_aliases: ClassVar[dict[str, tuple[str, ...]]] = {}   # logical edge -> edges it is made of

    def service_for(self, target: str) -> str:
        """The service playing `target` ("barista", "orders", ...); NotApplicable if this shop has none."""
        if target not in self.roles:
            raise NotApplicable(f"the {self.kind} shop has no {target!r} (it has {', '.join(sorted(self.roles))})")
        return self.roles[target]

    def settled(self) -> bool:
        """True when the shop's long-lived connections are up again after a heal that closed them
        (see FaultKind.heal_effect). A shop whose connections are made per call has none to wait for."""
        return True

    def heal_report(self) -> dict[str, Any]:
        """What is still broken: toxics left on this shop's proxies, disabled proxies, replicas not
        running (and, for a shop with a broker, whether it runs). All empty after a healed run."""
        client = self.infra.toxiproxy
        names = [p.name for p in self.proxies.values()]
        toxics = {n: [t["name"] for t in client.toxics(n)] for n in names}
        report: dict[str, Any] = {
            "toxics_left": {n: t for n, t in toxics.items() if t},
            "proxies_disabled": [p.name for p in client.proxies() if p.name in names and not p.enabled],
            "replicas_down": [r.name for svc in self.supervisor.services() for r in self.supervisor.replicas(svc)
                              if r.state != "running"],
        }
        if self.infra.broker is not None:
            report["broker_running"] = self.infra.broker.is_running()
        report["healed"] = not (report["toxics_left"] or report["proxies_disabled"] or report["replicas_down"]
                                or report.get("broker_running") is False)
        return report

    def counters(self) -> dict[str, float]:
        """The shop's own counters at the end of a run (what its policies did: retries, circuits
        opened, ...), named as in `traits.counters`; results.json keeps them under `shop`, and an
        expectation names one as `shop.<name>`. A shop without any answers {}."""
        return {}

    def describe(self) -> dict[str, Any]:
        """The effective configuration: settings, services, proxies and edges."""
        return {"kind": self.kind, "settings": self.settings.to_dict(), "entry_url": self.entry_url,
                "services": {name: [r.name for r in self.supervisor.replicas(name)]
                             for name in self.supervisor.services()},
                "edges": self.edges}

    def stop(self) -> None:
        self.supervisor.shutdown()

    def __enter__(self) -> "Shop":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

