"""The event envelope (schema version 1) shared by every producer and consumer of the async shop.

An event is a fact that happened; it is never changed. On the wire it is a JSON object::

    {"eventId": "<uuid4>", "eventType": "CoffeeOrdered", "schemaVersion": 1,
     "occurredAt": "2026-11-27T10:00:00.123456+00:00", "orderId": "<uuid>", "payload": {...}}

`decode` validates the envelope and the payload of known event types and raises `InvalidEvent`
naming the problem; consumers dead-letter such messages instead of crashing.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

# eventType -> required payload fields and their types
PAYLOADS: dict[str, dict[str, type]] = {
    "CoffeeOrdered": {"product": str, "size": str},
    "CoffeeBrewed": {"product": str, "size": str, "brewId": str, "barista": str, "brewMs": float},
    "CoffeeServed": {"product": str, "size": str, "waiter": str},
}
MAX_EVENT_BYTES = 64 * 1024


class InvalidEvent(ValueError):
    """A message that is not a valid event of a known type and version."""


@dataclass(frozen=True)
class Event:
    event_type: str
    order_id: str
    payload: dict[str, Any]
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "schemaVersion": self.schema_version,
            "occurredAt": self.occurred_at,
            "orderId": self.order_id,
            "payload": self.payload,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


def new_event(event_type: str, order_id: str, payload: dict[str, Any], event_id: str | None = None) -> Event:
    """Build an event, validating it as a consumer would (so producers cannot emit garbage)."""
    event = Event(event_type, order_id, dict(payload), event_id or str(uuid.uuid4()))
    return decode(event.encode())


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise InvalidEvent(f"{where}{key}: missing")
    value = data[key]
    if kind is float:
        kind = (int, float)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidEvent(f"{where}{key}: expected {getattr(kind, '__name__', 'number')}, got {type(value).__name__}")
    return value


def decode(body: bytes) -> Event:
    """Parse and validate one event; raise InvalidEvent with the field path and the problem."""
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"body: {len(body)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"body: malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidEvent(f"body: expected a JSON object, got {type(data).__name__}")
    event_type = _require(data, "eventType", str, "")
    if event_type not in PAYLOADS:
        raise InvalidEvent(f"eventType: unknown {event_type!r}")
    version = _require(data, "schemaVersion", int, "")
    if version != SCHEMA_VERSION:
        raise InvalidEvent(f"schemaVersion: unsupported {version}")
    event_id = _require(data, "eventId", str, "")
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise InvalidEvent(f"eventId: not a UUID: {event_id!r}") from None
    occurred_at = _require(data, "occurredAt", str, "")
    try:
        datetime.fromisoformat(occurred_at)
    except ValueError:
        raise InvalidEvent(f"occurredAt: not an ISO-8601 time: {occurred_at!r}") from None
    order_id = _require(data, "orderId", str, "")
    if not order_id:
        raise InvalidEvent("orderId: empty")
    payload = _require(data, "payload", dict, "")
    for key, kind in PAYLOADS[event_type].items():
        _require(payload, key, kind, "payload.")
    return Event(event_type, order_id, payload, event_id, occurred_at, version)
