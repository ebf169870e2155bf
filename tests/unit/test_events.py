"""The event envelope: encode/decode round trip, and every malformed event is refused with a reason."""
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cafe.events import SCHEMA_VERSION, InvalidEvent, decode, new_event


def ordered() -> dict:
    return new_event("CoffeeOrdered", "order-1", {"product": "Latte", "size": "small"}).to_json()


def test_round_trip_keeps_every_field() -> None:
    event = new_event("CoffeeBrewed", "o-9", {"product": "Latte", "size": "small", "brewId": "b",
                                              "barista": "barista-1", "brewMs": 12.5})
    again = decode(event.encode())
    assert again == event
    data = json.loads(event.encode())
    assert set(data) == {"eventId", "eventType", "schemaVersion", "occurredAt", "orderId", "payload"}
    assert data["schemaVersion"] == SCHEMA_VERSION
    uuid.UUID(data["eventId"])


def test_event_ids_are_unique_unless_given() -> None:
    a = new_event("CoffeeOrdered", "o", {"product": "Latte", "size": "small"})
    b = new_event("CoffeeOrdered", "o", {"product": "Latte", "size": "small"})
    assert a.event_id != b.event_id
    fixed = str(uuid.uuid4())
    assert new_event("CoffeeOrdered", "o", {"product": "Latte", "size": "small"}, fixed).event_id == fixed


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.pop("eventId"), "eventId: missing"),
        (lambda d: d.update(eventId="nope"), "eventId: not a UUID"),
        (lambda d: d.update(eventType="CoffeeSpilled"), "eventType: unknown"),
        (lambda d: d.update(schemaVersion=99), "schemaVersion: unsupported"),
        (lambda d: d.update(schemaVersion="1"), "schemaVersion: expected int"),
        (lambda d: d.update(occurredAt="yesterday"), "occurredAt"),
        (lambda d: d.update(orderId=""), "orderId: empty"),
        (lambda d: d["payload"].pop("product"), "payload.product: missing"),
        (lambda d: d["payload"].update(size=3), "payload.size: expected str"),
        (lambda d: d.update(payload=[]), "payload: expected dict"),
    ],
)
def test_invalid_events_are_refused_with_the_field(change, words: str) -> None:
    data = ordered()
    change(data)
    with pytest.raises(InvalidEvent, match=words.replace("(", r"\(")):
        decode(json.dumps(data).encode())


def test_not_json_and_too_large() -> None:
    with pytest.raises(InvalidEvent, match="malformed JSON"):
        decode(b"\x00poison")
    with pytest.raises(InvalidEvent, match="exceeds"):
        decode(b" " * (65 * 1024))


@given(st.binary(max_size=300))
def test_garbage_only_raises_invalid_event(body: bytes) -> None:
    try:
        decode(body)
    except InvalidEvent:
        pass


def test_producers_cannot_emit_invalid_events() -> None:
    with pytest.raises(InvalidEvent):
        new_event("CoffeeOrdered", "o", {"product": "Latte"})
