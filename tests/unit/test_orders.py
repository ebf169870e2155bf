"""Menu and order validation: every bad order is refused with the field that is wrong."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cafe.menu import load_menu
from cafe.orders import OrderRejected, parse_order

MENU = load_menu()


def parse(data: object) -> object:
    return parse_order(json.dumps(data).encode(), MENU)


def test_packaged_menu_has_products_and_sizes() -> None:
    assert "Flat White" in MENU.products
    assert MENU.sizes_of("Espresso") == ("small",)
    assert MENU.sizes_of("Latte") == ("small", "medium", "large")


def test_valid_order_is_normalised() -> None:
    order = parse({"product": "  flat   WHITE ", "size": "Large", "customer": "Ada", "ref": "17"})
    assert (order.product, order.size, order.customer, order.ref) == ("Flat White", "large", "Ada", "17")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"{not json", "body", "malformed JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (b"\xff\xfe", "body", "malformed JSON"),
        (json.dumps({"size": "large"}).encode(), "product", "missing"),
        (json.dumps({"product": "latte"}).encode(), "size", "missing"),
        (json.dumps({"product": "tea", "size": "large"}).encode(), "product", "not on the menu"),
        (json.dumps({"product": "espresso", "size": "large"}).encode(), "size", "not sold for Espresso"),
        (json.dumps({"product": 3, "size": "large"}).encode(), "product", "must be a string"),
        (json.dumps({"product": "latte", "size": "large", "sugar": 2}).encode(), "sugar", "unknown field"),
        (json.dumps({"product": "latte", "size": "large", "customer": "x" * 500}).encode(), "customer", "at most"),
    ],
)
def test_bad_orders_name_the_field(body: bytes, field: str, words: str) -> None:
    with pytest.raises(OrderRejected) as info:
        parse_order(body, MENU)
    assert info.value.field == field
    assert words in info.value.message
    assert info.value.as_json()["field"] == field


@given(st.binary(max_size=200))
def test_garbage_never_escapes_as_another_exception(body: bytes) -> None:
    try:
        parse_order(body, MENU)
    except OrderRejected:
        pass


def test_menu_file_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "menu.toml"
    path.write_text('sizes = ["small"]\n[[products]]\nname = ""\n')
    with pytest.raises(ValueError, match="menu.toml"):
        load_menu(path)
