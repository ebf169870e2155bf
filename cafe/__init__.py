"""The coffee-shop domain shared by both shops: menu, orders, events, brew times, storage, config.

The services themselves live in `systems/sync/` and `systems/async/` and are run by path (see
docs/architecture.md: `async` is a Python keyword, so those folders are not importable packages).
"""
