"""The Docker runtime end to end on a real engine: images, faults mapped onto containers, the
broker in a container, experiments with the same verdicts as the local runtime, and cleanup (also
on Ctrl-C). No registry is needed: the session fixture builds the configured images locally
(debootstrapped base, Debian's RabbitMQ, the installed Toxiproxy; cached by content hash).

Skipped, with the reason, only where no Docker engine answers, or where the base image is missing
and cannot be debootstrapped (not root, no debootstrap); a failing image build fails them.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from mainrun import MainRun

from cafe.brewing import BrewTime
from harness.infra.docker_supervisor import DockerSupervisor
from harness.infra.engine import RUN_LABEL, EngineError, connect
from harness.infra.images import LOCAL_BASE, ImageNames, build_local_images, has_image, shop_image
from harness.infra.stack import Infrastructure
from harness.load.batch import place_orders, sample_orders, wait_until
from harness.shops import SHOP_NAMES, SHOPS, ShopSettings

pytestmark = [pytest.mark.integration, pytest.mark.docker]

DOCKER_EXPERIMENTS = ("steady-state", "barista-pause")   # a process fault (pause) in 4 s of arrivals
FAST = ShopSettings(baristas=1, brewers=2, brew=BrewTime("fixed", mean_ms=20), capacity=8, prefetch=2)


@pytest.fixture(scope="session")
def docker_images() -> Iterator[dict[str, str]]:
    """The environment a Docker run needs (image names), with every image present (built here when
    missing); skips when no engine answers or the base can be neither found nor debootstrapped."""
    try:
        client = connect(10)
    except EngineError as exc:
        pytest.skip(f"Docker runtime not testable: {exc}")
    env = {"CHAOSCAFE_BASE_IMAGE": os.environ.get("CHAOSCAFE_BASE_IMAGE") or LOCAL_BASE}
    names = ImageNames.from_env({**os.environ, **env})
    env.update(CHAOSCAFE_RABBITMQ_IMAGE=names.rabbitmq, CHAOSCAFE_TOXIPROXY_IMAGE=names.toxiproxy)
    try:   # a failing build fails the tests; only missing prerequisites skip them
        if not all(has_image(client, n) for n in names.runtime_images()) or names.base == LOCAL_BASE:
            if not has_image(client, names.base) and (os.geteuid() != 0 or shutil.which("debootstrap") is None):
                pytest.skip(f"base image {names.base} missing; building it needs root and debootstrap")
            took = build_local_images(client, names)
            print(f"local images built in {took}")
        for kind in ("sync", "async"):
            shop_image(client, kind, names)
    finally:
        client.close()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def labelled(key: str = RUN_LABEL, value: str | None = None) -> list[str]:
    """Names of containers and volumes carrying the label (any value, or `value`)."""
    client = connect(10)
    try:
        selector = {"label": key if value is None else f"{key}={value}"}
        # sparse: the list call's own rows, no inspect per container (one removed between the list
        # and its inspect made the helper raise NotFound while a run was starting or stopping)
        rows = client.containers.list(all=True, filters=selector, sparse=True)
        return ([str(c.attrs["Names"][0]).lstrip("/") for c in rows]
                + [v.name for v in client.volumes.list(filters=selector)])
    finally:
        client.close()


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_process_faults_map_onto_containers_and_nothing_is_left(docker_images: dict[str, str],
                                                                tmp_path: Path) -> None:
    with Infrastructure(tmp_path, broker=False, runtime="docker") as infra, SHOPS["sync"](infra, FAST) as shop:
        sup = shop.supervisor
        assert isinstance(sup, DockerSupervisor) and infra.docker is not None
        run_id = infra.docker.engine.run_id
        client = infra.docker.engine.client
        containers = client.containers.list(filters={"label": f"{RUN_LABEL}={run_id}"})
        assert sorted(c.labels["chaoscafe.role"] for c in containers) == ["sync-barista-1", "sync-cashier-1", "toxiproxy"]
        assert {c.attrs["HostConfig"]["NetworkMode"] for c in containers} == {"host"}
        barista = sup.replicas("barista")[0]
        health = f"{shop.url('barista-1')}/health"
        orders = sample_orders(3)

        assert [s for s, _ in place_orders(shop.entry_url, orders[:1])] == [201]
        assert [r.name for r in sup.pause("barista")] == ["barista-1"]
        assert barista.state == "paused" and client.containers.get(barista.container.id).status == "paused"
        assert not healthy(health)                       # frozen: no answer
        sup.resume("barista")
        assert barista.state == "running" and healthy(health, 5)

        sup.kill("barista")
        assert barista.state == "killed" and barista.returncode == 137 and not barista.alive()
        assert [s for s, _ in place_orders(shop.entry_url, orders[1:2], timeout_s=10)] == [503]
        sup.start("barista")
        assert barista.state == "running" and barista.starts == 2 and healthy(health)
        assert [s for s, _ in place_orders(shop.entry_url, orders[2:3])] == [201]

        sup.pause("barista")
        sup.kill("barista")                              # a frozen replica can be killed
        assert barista.state == "killed" and not barista.alive()
        sup.start("barista")
        sup.pause("barista")
        sup.stop("barista")                              # ... and stopped
        assert barista.state == "stopped" and not barista.alive()
        sup.restart("barista")
        assert barista.state == "running" and healthy(health)

        running = sup.scale("barista", 2)
        assert [r.name for r in running] == ["barista-1", "barista-2"]
        assert len(client.containers.list(filters={"label": f"{RUN_LABEL}={run_id}"})) == 4
        assert len(sup.pids()) == 3
        sup.scale("barista", 1)
        assert [r.name for r in sup.replicas("barista")] == ["barista-1"]
        assert {str(b["ref"]) for b in shop.brewed()} == {str(orders[0]["ref"]), str(orders[2]["ref"])}
    assert labelled(value=run_id) == []
    log = (tmp_path / "sync" / "logs" / "barista-1.log").read_text()
    assert "=== container chaoscafe-" in log and "listening on http://127.0.0.1:" in log
    assert (tmp_path / "sync" / "barista.db").is_file()          # the database lives in the run dir
    assert "Starting Toxiproxy" in (tmp_path / "toxiproxy" / "toxiproxy.log").read_text()


def test_broker_container_keeps_persistent_messages_across_a_crash(docker_images: dict[str, str],
                                                                   tmp_path: Path) -> None:
    with Infrastructure(tmp_path, broker=True, runtime="docker") as infra:
        broker = infra.broker
        assert broker is not None and broker.is_running() and broker.version().startswith("3.")
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("probe", durable=True, arguments={"x-queue-type": "quorum"})
        ch.basic_publish("", "probe", b"kept", pika.BasicProperties(delivery_mode=2))
        conn.close()
        assert wait_until(lambda: broker.queue_stats("probe")["total"] == 1, 10)
        broker.crash()
        assert not broker.is_running()
        broker.restart()
        assert broker.is_running()
        assert wait_until(lambda: broker.queue_stats("probe")["total"] == 1, 20)
        run_id = infra.docker.engine.run_id if infra.docker else ""
    assert labelled(value=run_id) == []
    assert "Server startup complete" in (tmp_path / "broker" / "rabbit.log").read_text()


def chaoscafe(*args: str, env: dict[str, str] | None = None, timeout: float = 420,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})}, cwd=cwd)


def results(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    (run_dir,) = (out / "runs").iterdir()
    return {(p.parent.parent.name, p.parent.name): json.loads(p.read_text())
            for p in run_dir.glob("*/*/results.json")}


@pytest.mark.main_run(*DOCKER_EXPERIMENTS)
@pytest.mark.timeout(900)   # also the local runs of the two, when no CHAOSCAFE_MAIN_RUN is given
def test_experiments_through_docker_have_the_local_verdicts(docker_images: dict[str, str], main_run: MainRun,
                                                            tmp_path: Path) -> None:
    """The local runtime's verdicts are the main run's (tests/integration/mainrun.py: in CI the fast
    run of every experiment with local processes that CI's main job made and compares with the
    committed baseline)."""
    experiments = DOCKER_EXPERIMENTS
    out = tmp_path / "docker"
    proc = chaoscafe("run", *experiments, "--profile", "fast", "--runtime", "docker", "--out", "docker", "--quiet",
                     env={"CHAOSCAFE_RUNTIME": "local"}, cwd=tmp_path)   # the option wins; a relative run dir
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    docker = results(out)
    assert set(docker) == {(e, s) for e in experiments for s in SHOP_NAMES}   # every registered shop
    for (experiment, system), r in docker.items():
        local = main_run.results(experiment, system)
        assert r["passed"] == local["passed"], (experiment, system, r["checks"])
        assert r["complete"] and r["orders"]["lost"] == 0, (experiment, system)
    assert proc.returncode == 0 and all(r["passed"] for r in docker.values()), {k: r["checks"] for k, r in docker.items()}
    # the run really ran containers: each service's log is a container's output
    (run_dir,) = (out / "runs").iterdir()
    logs = sorted(run_dir.glob("*/*/infra/*/logs/*.log"))
    assert logs and all(p.read_text().startswith("=== container chaoscafe-") for p in logs)
    assert "Server startup complete" in (run_dir / "barista-pause" / "async" / "infra" / "broker" / "rabbit.log").read_text()
    assert labelled() == []


def test_ctrl_c_removes_every_container_of_the_run(docker_images: dict[str, str], tmp_path: Path) -> None:
    assert labelled() == [], "containers of an earlier run are left"
    env = {**os.environ, "CHAOSCAFE_RUNTIME": "docker", "CHAOSCAFE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "shop", "up", "async", "--run-dir", str(tmp_path / "run")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        # rabbitmq, toxiproxy, barista, waiter, orders (+ the broker's data volume)
        assert wait_until(lambda: len(labelled()) >= 6 or proc.poll() is not None, 180), labelled()
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 130, out
    assert labelled() == []
    assert (tmp_path / "run").exists()
