"""Shared fixtures. Integration tests start real processes: a private RabbitMQ node, the real
Toxiproxy server and every shop service; each test gets its own and cleans them up."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def infra(tmp_path: Path) -> Iterator["object"]:
    """Toxiproxy and a private broker, both real, in tmp_path."""
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path / "run", broker=True) as running:
        yield running


@pytest.fixture
def proxy_only_infra(tmp_path: Path) -> Iterator["object"]:
    """Toxiproxy only (enough for the sync shop)."""
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path / "run", broker=False) as running:
        yield running
