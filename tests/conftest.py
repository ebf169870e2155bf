"""Shared fixtures. Integration tests start real processes: RabbitMQ, the real Toxiproxy server and
every shop service; each test gets its own Toxiproxy and shop and cleans them up. RabbitMQ is one
node for the session (per pytest-xdist worker; started by the first test that needs it) on which each test gets a vhost and
user of its own, deleted after it; a test that stops or crashes the broker takes `private_infra`,
a node of its own."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator["object"]:
    """The session's RabbitMQ node (harness.infra.stack.SharedBroker), stopped at the end."""
    from harness.infra.stack import SharedBroker

    with SharedBroker(tmp_path_factory.mktemp("shared-broker")) as shared:
        yield shared


@pytest.fixture
def infra(tmp_path: Path, shared_broker: "object") -> Iterator["object"]:
    """Toxiproxy (real, in tmp_path) and a vhost of this test's own on the session's broker."""
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path / "run", broker=True,
                        shared_broker=shared_broker.node()) as running:  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def private_infra(tmp_path: Path) -> Iterator["object"]:
    """Toxiproxy and a private broker, both real, in tmp_path: for tests that stop the broker."""
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path / "run", broker=True) as running:
        yield running


@pytest.fixture
def proxy_only_infra(tmp_path: Path) -> Iterator["object"]:
    """Toxiproxy only (enough for the sync shop)."""
    from harness.infra.stack import Infrastructure

    with Infrastructure(tmp_path / "run", broker=False) as running:
        yield running
