"""Service configuration files: round trip and clear refusals."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cafe.brewing import BrewTime
from cafe.config import ServiceConfig

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip(tmp_path: Path) -> None:
    config = ServiceConfig(name="barista-1", port=1234, db="b.db", brew=BrewTime("uniform", 0, 10, 20),
                           barista_urls=("http://127.0.0.1:1",))
    path = config.write(tmp_path / "c.json")
    assert ServiceConfig.from_dict(json.loads(path.read_text())) == config


@pytest.mark.parametrize(("data", "words"), [
    ({"name": "x", "port": 1, "db": "d", "colour": "red"}, "unknown config field 'colour'"),
    ({"name": "x", "port": 1, "db": "d", "publish_mode": "carrier-pigeon"}, "publish_mode"),
    ({"name": "x", "port": 1, "db": "d", "brewers": 0}, "brewers: must be >= 1"),
    ({"name": "x", "port": 1, "db": "d", "queue_type": "lazy"}, "queue_type: 'lazy' is not one of"),
    ({"name": "x", "port": 1, "db": "d", "max_length": 0}, "max_length: must be >= 1, got 0"),
    ({"name": "x", "port": 1, "db": "d", "overflow": "reject-publish-dlx"}, "overflow: 'reject-publish-dlx'"),
])
def test_bad_config_is_refused(data: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ServiceConfig.from_dict(data)


def test_service_exits_2_with_one_line_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "port": 1, "db": "d", "brewers": -3}')
    proc = subprocess.run([sys.executable, str(ROOT / "systems/sync/barista.py"), "--config", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "brewers" in proc.stderr and "Traceback" not in proc.stderr


def test_the_work_queues_carry_a_length_limit_only_when_one_is_set() -> None:
    from cafe import topology
    plain = ServiceConfig(name="x", port=1, db="d").queues.arguments()
    assert plain == {"x-dead-letter-exchange": topology.DLX, "x-queue-type": "quorum", "x-delivery-limit": 5}
    capped = ServiceConfig(name="x", port=1, db="d", max_length=5, overflow="reject-publish").queues
    assert capped.arguments()["x-max-length"] == 5 and capped.arguments()["x-overflow"] == "reject-publish"
    assert "x-max-length" not in capped.arguments(limited=False)   # a newcomer's own queue: no limit
    queues = [args for kind, args in topology.declarations(capped) if kind == "queue"]
    assert {a["queue"]: "x-max-length" in (a["arguments"] or {}) for a in queues} == {
        topology.DEAD_LETTERS: False, topology.ORDERS_QUEUE: True, topology.BREWED_QUEUE: True}


def test_on_a_cluster_every_quorum_queue_gets_a_member_per_node() -> None:
    from cafe import topology
    five = ServiceConfig(name="x", port=1, db="d", quorum_members=5).queues
    queues = {a["queue"]: a["arguments"] or {} for kind, a in topology.declarations(five) if kind == "queue"}
    assert {q: args.get("x-quorum-initial-group-size") for q, args in queues.items()} == {
        topology.DEAD_LETTERS: 5, topology.ORDERS_QUEUE: 5, topology.BREWED_QUEUE: 5}
    assert "x-quorum-initial-group-size" not in ServiceConfig(name="x", port=1, db="d").queues.arguments()
    classic = ServiceConfig(name="x", port=1, db="d", queue_type="classic", quorum_members=3).queues
    assert "x-quorum-initial-group-size" not in classic.arguments()
    with pytest.raises(ValueError, match="quorum_members"):
        ServiceConfig(name="x", port=1, db="d", quorum_members=0)
