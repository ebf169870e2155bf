"""The menu: which products and sizes a shop sells (shared by both shops)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Menu:
    """Products with the sizes each is sold in. Names are canonical (as written in the menu file)."""

    products: dict[str, tuple[str, ...]]

    def canonical_product(self, name: str) -> str | None:
        """The menu's spelling of `name` (case and surrounding blanks ignored), or None if not sold."""
        wanted = " ".join(name.split()).casefold()
        for product in self.products:
            if product.casefold() == wanted:
                return product
        return None

    def sizes_of(self, product: str) -> tuple[str, ...]:
        return self.products[product]


def load_menu(path: str | Path | None = None) -> Menu:
    """Load a menu file (TOML); the packaged `menu.toml` when `path` is None."""
    if path is None:
        text = resources.files("cafe").joinpath("menu.toml").read_text(encoding="utf-8")
        source = "cafe/menu.toml"
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = str(path)
    data = tomllib.loads(text)
    default_sizes = tuple(data.get("sizes", ()))
    products: dict[str, tuple[str, ...]] = {}
    for entry in data.get("products", []):
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{source}: every product needs a non-empty name")
        sizes = tuple(entry.get("sizes", default_sizes))
        if not sizes:
            raise ValueError(f"{source}: product {name!r} has no sizes")
        products[name] = sizes
    if not products:
        raise ValueError(f"{source}: the menu has no products")
    return Menu(products)
