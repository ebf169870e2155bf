"""Shop adapters: the same operations for both architectures (see base.Shop)."""
from harness.shops.async_shop import AsyncShop
from harness.shops.base import Shop, ShopSettings
from harness.shops.sync_shop import SyncShop

SHOPS: dict[str, type[Shop]] = {"sync": SyncShop, "async": AsyncShop}

__all__ = ["AsyncShop", "SHOPS", "Shop", "ShopSettings", "SyncShop"]
