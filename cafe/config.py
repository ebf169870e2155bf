"""Configuration of one service instance, read from the JSON file given as `--config PATH`.

The harness writes one file per replica. Fields not used by a service are ignored by it, so both
shops are configured from the same shared values (brewers, brew time, capacity, timeouts, ...).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cafe.brewing import BrewTime
from cafe.topology import Queues

PUBLISH_MODES = ("outbox", "direct")
SOURCES = ("", "replay", "feed", "pages")


@dataclass(frozen=True)
class ServiceConfig:
    name: str                      # instance name, e.g. "barista-2"
    port: int                      # HTTP port on `host`
    db: str                        # this instance's SQLite file
    host: str = "127.0.0.1"
    menu: str | None = None        # menu file; the packaged menu when None
    # barista (both shops)
    brewers: int = 1               # brews in parallel (one brewer = one barista's hands)
    brew: BrewTime = field(default_factory=BrewTime)
    # sync cashier
    capacity: int = 8              # orders handled at once; more wait in line
    queue_limit: int = 10_000      # customers waiting in line beyond which the cashier answers 429 (not taken)
    barista_urls: tuple[str, ...] = ()
    barista_timeout_s: float = 10.0
    # resilient sync cashier (cafe/resilience.py); None: derived from barista_timeout_s and brewers
    deadline_s: float | None = None      # an order's whole call, from when it is received (None: 3 x barista_timeout_s)
    bulkhead: int | None = None          # calls in flight to one barista replica (None: 2 x brewers)
    breaker_threshold: int = 5           # failed calls in a row that open a replica's circuit
    breaker_reset_s: float | None = None  # an open circuit is not called this long (None: the smaller of barista_timeout_s and deadline_s)
    backoff_s: float | None = None       # retries: base of the full-jitter exponential wait (None: barista_timeout_s / 20)
    shed: bool = True                    # refuse (429) a customer whose expected wait is beyond deadline_s
    # async shop
    amqp_url: str = ""
    amqp_fallbacks: tuple[str, ...] = ()   # other broker nodes, tried in turn when amqp_url fails (a cluster)
    publish_mode: str = "outbox"   # outbox: transactional outbox + relay; direct: publish in the request
    relay_batch: int = 100
    prefetch: int = 1
    idempotency: bool = True
    queue_type: str = "quorum"
    delivery_limit: int = 5        # deliveries before a message is dead-lettered
    max_length: int | None = None  # messages a work queue holds (None: no limit) ...
    overflow: str = "drop-head"    # ... and what a full one does: drop-head | reject-publish
    heartbeat_s: int = 10
    quorum_members: int | None = None   # a quorum queue's members: one per node of a cluster (None: the broker's default)
    # late-comers (loyalty service) and feeds
    source: str = ""               # loyalty catch-up: replay (event-log stream) | feed (Atom-style) | pages
    source_url: str = ""           # base URL of the service whose feed or pages are read
    page_size: int = 100           # entries per feed page (waiter) / per GET page (readers)
    poll_s: float = 0.5            # how often a caught-up reader asks for more
    hold_at_awarded: int = 0       # a failpoint (0: off): stop reading once this many orders are awarded

    def __post_init__(self) -> None:
        if self.publish_mode not in PUBLISH_MODES:
            raise ValueError(f"publish_mode: {self.publish_mode!r} is not one of {PUBLISH_MODES}")
        self.queues   # noqa: B018  # ValueError naming a bad queue_type, max_length or overflow
        if self.source not in SOURCES:
            raise ValueError(f"source: {self.source!r} is not one of {SOURCES}")
        for name in ("brewers", "capacity", "prefetch", "delivery_limit", "relay_batch", "page_size",
                     "breaker_threshold"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.hold_at_awarded < 0:
            raise ValueError(f"hold_at_awarded: must be >= 0, got {self.hold_at_awarded}")

        for name in ("deadline_s", "bulkhead", "breaker_reset_s", "backoff_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be > 0, got {value}")

    @property
    def queues(self) -> Queues:
        """How the async shop's work queues are declared (cafe.topology.Queues)."""
        return Queues(self.queue_type, self.delivery_limit, self.max_length, self.overflow, self.quorum_members)

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """The broker URLs a link tries, in order: its own node first, then the fallbacks."""
        return (self.amqp_url, *self.amqp_fallbacks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["barista_urls"] = list(self.barista_urls)
        data["amqp_fallbacks"] = list(self.amqp_fallbacks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServiceConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field {unknown[0]!r}")
        values = dict(data)
        if isinstance(values.get("brew"), dict):
            values["brew"] = BrewTime.from_dict(values["brew"])
        for name in ("barista_urls", "amqp_fallbacks"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path


def load_from_argv(description: str, argv: list[str] | None = None) -> ServiceConfig:
    """Parse `--config PATH` and load it; exit 2 with one clear line when the file is bad."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, type=Path, help="JSON service configuration")
    args = parser.parse_args(argv)
    try:
        return ServiceConfig.from_dict(json.loads(args.config.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        parser.exit(2, f"{args.config}: {exc}\n")
