"""Validation of a customer's order (`POST /orders` body), identical in both shops."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from cafe.menu import Menu

MAX_TEXT = 200


class OrderRejected(ValueError):
    """The order cannot be accepted. `field` names the offending field (or "body")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"error": "invalid order", "field": self.field, "detail": self.message}


@dataclass(frozen=True)
class OrderRequest:
    """A valid order. `ref` is the client's own reference (the harness sends its schedule index)."""

    product: str
    size: str
    customer: str | None = None
    ref: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"product": self.product, "size": self.size, "customer": self.customer, "ref": self.ref}


def _optional_text(data: dict[str, object], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OrderRejected(field, f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise OrderRejected(field, f"must be at most {MAX_TEXT} characters, got {len(value)}")
    return value


def parse_order(body: bytes, menu: Menu) -> OrderRequest:
    """Parse and validate a JSON order body against `menu`; raise OrderRejected naming the problem."""
    try:
        data = orjson.loads(body)   # a JSONDecodeError for anything not JSON: bad UTF-8, NaN, nesting too deep
    except orjson.JSONDecodeError as exc:
        raise OrderRejected("body", f"malformed JSON ({exc})") from None
    return order_from(data, menu)


def order_from(data: object, menu: Menu) -> OrderRequest:
    """Validate an order already decoded from JSON (the fields of a barista's brew request) against
    `menu`; raise OrderRejected naming the problem, as `parse_order` does."""
    if not isinstance(data, dict):
        raise OrderRejected("body", f"must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"product", "size", "customer", "ref"})
    if unknown:
        raise OrderRejected(unknown[0], "unknown field")
    for field in ("product", "size"):
        if field not in data:
            raise OrderRejected(field, "missing")
        if not isinstance(data[field], str):
            raise OrderRejected(field, f"must be a string, got {type(data[field]).__name__}")
    product = menu.canonical_product(data["product"])
    if product is None:
        raise OrderRejected(
            "product", f"{data['product']!r} is not on the menu ({', '.join(menu.products)})"
        )
    size = data["size"].strip().casefold()
    if size not in menu.sizes_of(product):
        raise OrderRejected(
            "size", f"{data['size']!r} is not sold for {product} ({', '.join(menu.sizes_of(product))})"
        )
    return OrderRequest(product, size, _optional_text(data, "customer"), _optional_text(data, "ref"))
