"""The pure parts of the Docker runtime: runtime choice, image names and hashes, command mapping,
container naming and state mapping. The engine itself is exercised in tests/integration/test_docker.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.infra.docker_supervisor import container_command, container_state, image_kind
from harness.infra.engine import container_name
from harness.infra.images import ImageError, ImageNames, content_hash, pip_ca_bundle, shop_tag, tree_parts
from harness.infra.processes import ProcessError
from harness.infra.runtime import choose_runtime, requested_runtime


def test_requested_runtime_defaults_to_local_and_reads_the_environment() -> None:
    assert requested_runtime(None, {}) == "local"
    assert requested_runtime(None, {"CHAOSCAFE_RUNTIME": "docker"}) == "docker"
    assert requested_runtime("auto", {"CHAOSCAFE_RUNTIME": "docker"}) == "auto"   # explicit wins
    assert requested_runtime(" Docker ", {}) == "docker"
    with pytest.raises(ValueError, match="unknown runtime 'podman'"):
        requested_runtime("podman", {})


def test_choose_runtime_asks_the_engine_only_for_auto() -> None:
    def never() -> bool:
        raise AssertionError("must not be asked")

    assert choose_runtime("local", engine_ok=never, images_ok=never) == "local"
    assert choose_runtime("docker", engine_ok=never, images_ok=never) == "docker"
    assert choose_runtime("auto", engine_ok=lambda: True, images_ok=lambda: True) == "docker"
    assert choose_runtime("auto", engine_ok=lambda: True, images_ok=lambda: False) == "local"
    assert choose_runtime("auto", engine_ok=lambda: False, images_ok=never) == "local"
    with pytest.raises(ValueError):
        choose_runtime("vm", engine_ok=never, images_ok=never)


def test_image_names_default_to_the_official_images_and_follow_the_environment() -> None:
    d = ImageNames.from_env({})
    assert (d.rabbitmq, d.toxiproxy, d.base) == ("rabbitmq:3-management", "ghcr.io/shopify/toxiproxy",
                                                 "python:3.11-slim")
    n = ImageNames.from_env({"CHAOSCAFE_RABBITMQ_IMAGE": "r:1", "CHAOSCAFE_TOXIPROXY_IMAGE": "t:2",
                             "CHAOSCAFE_BASE_IMAGE": "chaoscafe/base:bookworm"})
    assert n.runtime_images() == ("r:1", "t:2", "chaoscafe/base:bookworm")


def _checkout(root: Path) -> Path:
    for rel, text in {"cafe/menu.py": "M = 1\n", "systems/sync/cashier.py": "print(1)\n",
                      "systems/sync/Dockerfile": "FROM x\n", "systems/async/waiter.py": "print(2)\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_shop_tag_changes_with_sources_and_base_but_not_with_caches(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    tag = shop_tag("sync", "sha256:aaa", repo)
    assert tag.startswith("chaoscafe/shop-sync:") and len(tag.rpartition(":")[2]) == 16
    assert shop_tag("sync", "sha256:aaa", repo) == tag
    assert shop_tag("async", "sha256:aaa", repo) != tag
    assert shop_tag("sync", "sha256:bbb", repo) != tag
    (repo / "systems/sync/__pycache__").mkdir()
    (repo / "systems/sync/__pycache__/cashier.cpython-311.pyc").write_bytes(b"\0")
    assert shop_tag("sync", "sha256:aaa", repo) == tag
    (repo / "cafe/menu.py").write_text("M = 2\n")
    assert shop_tag("sync", "sha256:aaa", repo) != tag
    with pytest.raises(ImageError):
        shop_tag("newcomers", "sha256:aaa", repo)


def test_content_hash_is_order_and_boundary_sensitive(tmp_path: Path) -> None:
    assert content_hash([("a", b"bc")]) != content_hash([("ab", b"c")])
    assert content_hash([("a", b"1"), ("b", b"2")]) != content_hash([("b", b"2"), ("a", b"1")])
    repo = _checkout(tmp_path)
    assert [name for name, _ in tree_parts(repo / "systems", "systems")] == [
        "systems/async/waiter.py", "systems/sync/Dockerfile", "systems/sync/cashier.py"]


def test_pip_ca_bundle_prefers_the_pip_setting(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert pip_ca_bundle({"PIP_CERT": str(ca), "SSL_CERT_FILE": "/nonexistent"}) == ca
    assert pip_ca_bundle({"PIP_CERT": "/nonexistent", "REQUESTS_CA_BUNDLE": str(ca)}) == ca
    assert pip_ca_bundle({}).is_file()


def test_container_command_maps_a_service_program_into_the_image(tmp_path: Path) -> None:
    systems = _checkout(tmp_path) / "systems"
    argv = ["/usr/bin/python3.11", str(systems / "async" / "waiter.py"), "--config", "/run/x/waiter-1.json"]
    assert container_command(argv, systems) == (
        "async", ["python3", "/app/systems/async/waiter.py", "--config", "/run/x/waiter-1.json"])
    with pytest.raises(ProcessError, match="not a service program"):
        container_command(["/bin/sleep", "10"], systems)
    with pytest.raises(ProcessError):   # a program outside systems/
        container_command(["python3", str(tmp_path / "cafe" / "menu.py")], systems)


def test_image_kind_runs_shared_programs_in_the_starting_shops_image(tmp_path: Path) -> None:
    assert image_kind("sync", tmp_path / "async") == "sync"
    assert image_kind("newcomers", tmp_path / "infra" / "async") == "async"
    with pytest.raises(ProcessError):
        image_kind("newcomers", tmp_path / "elsewhere")


@pytest.mark.parametrize(("status", "before", "after"), [
    ("running", "running", "running"),
    ("paused", "running", "paused"),
    ("running", "paused", "paused"),        # unpaused behind our back is not assumed
    ("exited", "running", "exited"),        # died on its own
    ("exited", "paused", "exited"),
    ("exited", "killed", "killed"),         # we killed it: keep our word
    ("exited", "stopped", "stopped"),
    ("absent", "running", "exited"),
    ("created", "stopped", "stopped"),
])
def test_container_state_mapping(status: str, before: str, after: str) -> None:
    assert container_state(status, before) == after


def test_container_names_carry_the_run_and_are_valid() -> None:
    assert container_name("ab12", "sync-barista-1") == "chaoscafe-ab12-sync-barista-1"
    assert container_name("ab12", "a b/c:d") == "chaoscafe-ab12-a-b-c-d"
