"""Orders and what a live shop served, for the integration tests that place orders by hand.

Importable as `shopping` from any test: pytest puts tests/ on sys.path for tests/conftest.py.
"""
from __future__ import annotations

from typing import Any


def orders(n: int, start: int = 0) -> list[dict[str, str]]:
    """`n` small lattes with refs start .. start+n-1, from seven customers."""
    return [{"product": "Latte", "size": "small", "ref": str(i), "customer": f"c{i % 7}"} for i in range(start, start + n)]


def served_refs(shop: Any) -> set[str]:
    """The refs of every coffee the shop has served so far."""
    return {str(r["ref"]) for r in shop.served()}
