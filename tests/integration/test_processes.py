"""Supervisor against real processes: a tiny http.server service written to tmp_path.

Every process is identified by PID *and* by its cmdline containing the test's own
service script path, so PID reuse can never make us look at (or kill) a stranger.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_for

from harness.infra.ports import free_port
from harness.infra.processes import ProcessError, Replica, ServiceSpec, Supervisor

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

SERVICE = r'''
import http.server, signal, subprocess, sys
port, mode = int(sys.argv[1]), sys.argv[2]
if mode == "crash":
    print("boom: cannot start", flush=True)
    sys.exit(3)
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "child":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", __file__])
    print(f"child {child.pid}", flush=True)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

print(f"listening on {port}", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
'''

DRIVER = r'''
import signal, sys, time
from pathlib import Path
from harness.infra.ports import free_port
from harness.infra.processes import ServiceSpec, Supervisor, install_signal_handlers
mode, run_dir, script = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if mode == "SIGTERM":
    install_signal_handlers()
else:  # SIGINT: default Python behaviour, even if we inherited SIG_IGN from a background shell
    signal.signal(signal.SIGINT, signal.default_int_handler)
ports = {1: free_port(), 2: free_port()}
with Supervisor(run_dir) as sup:
    sup.add(ServiceSpec("svc", command=lambda i: [sys.executable, script, str(ports[i]), "ok"],
                        health_url=lambda i: f"http://127.0.0.1:{ports[i]}/health"), replicas=2)
    print("PIDS", *sup.pids(), flush=True)
    while True:
        time.sleep(0.1)
'''


# ------------------------------------------------------------------ helpers


def running(pid: int, marker: str) -> bool:
    """Is `pid` a live (non-zombie) process whose cmdline contains `marker`?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return marker in cmdline and state not in ("Z", "X")


def wait_gone(pids: list[int], marker: str, timeout: float = 5.0) -> list[int]:
    return wait_for(lambda: [p for p in pids if running(p, marker)], lambda alive: not alive, timeout_s=timeout,
                    interval_s=0.05)


def kill_leftovers(pids: list[int], marker: str) -> None:
    """Last-resort cleanup: SIGKILL only PIDs that still run our own script."""
    for pid in pids:
        if running(pid, marker):
            os.kill(pid, signal.SIGKILL)


def get(url: str, timeout: float = 2.0) -> int:
    with NO_PROXY.open(url, timeout=timeout) as resp:
        return int(resp.status)


class Service:
    """Spec factory for the script in tmp_path; remembers one port per (service, replica)."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.ports: dict[tuple[str, int], int] = {}

    def port(self, name: str, i: int) -> int:
        if (name, i) not in self.ports:
            self.ports[name, i] = free_port()
        return self.ports[name, i]

    def url(self, name: str, i: int) -> str:
        return f"http://127.0.0.1:{self.port(name, i)}/health"

    def spec(self, name: str, mode: str = "ok", ready_timeout: float = 15.0) -> ServiceSpec:
        return ServiceSpec(
            name,
            command=lambda i: [sys.executable, str(self.script), str(self.port(name, i)), mode],
            health_url=lambda i: self.url(name, i),
            ready_timeout=ready_timeout)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "svc_service.py"
    path.write_text(SERVICE)
    return path


@pytest.fixture
def svc(script: Path) -> Service:
    return Service(script)


@pytest.fixture
def sup(tmp_path: Path, script: Path) -> Iterator[Supervisor]:
    seen: list[int] = []
    s = Supervisor(tmp_path / "run")
    original = s._start_one

    def tracking_spawn(r: Replica) -> None:
        original(r)
        if r.pid is not None:
            seen.append(r.pid)
    s._start_one = tracking_spawn  # type: ignore[method-assign]
    try:
        yield s
    finally:
        s.shutdown(timeout=2.0)
        kill_leftovers(seen, str(script))
        assert not [p for p in seen if running(p, str(script))]


# ------------------------------------------------------------------ supervisor


def test_add_kill_and_start_again(sup: Supervisor, svc: Service) -> None:
    reps = sup.add(svc.spec("web"), replicas=2)
    assert [r.name for r in reps] == ["web-1", "web-2"]
    assert all(get(svc.url("web", i)) == 200 for i in (1, 2))

    old_pid = reps[0].pid
    assert sup.kill("web", 1) == [reps[0]]
    assert not reps[0].alive() and reps[0].state == "killed"
    assert reps[0].returncode == -signal.SIGKILL
    assert get(svc.url("web", 2)) == 200 and reps[1].state == "running"
    assert sup.kill("web", 1) == []  # already dead: nothing to do

    assert sup.start("web", 1) == [reps[0]]
    assert reps[0].alive() and reps[0].pid != old_pid and reps[0].starts == 2
    assert get(svc.url("web", 1)) == 200  # same index -> same port
    log = reps[0].log_path.read_text()
    assert log.count("=== started pid ") == 2
    assert f"=== started pid {reps[0].pid} at " in log
    assert reps[0].log_path == sup.run_dir / "logs" / "web-1.log"


def test_pause_and_resume(sup: Supervisor, svc: Service) -> None:
    (rep,) = sup.add(svc.spec("web"))
    assert sup.pause("web") == [rep] and rep.state == "paused" and rep.alive()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        get(svc.url("web", 1), timeout=0.5)
    assert sup.resume("web") == [rep] and rep.state == "running"
    assert get(svc.url("web", 1), timeout=5.0) == 200


def test_scale_up_and_down(sup: Supervisor, svc: Service) -> None:
    sup.add(svc.spec("web"))
    running3 = sup.scale("web", 3)
    assert [r.index for r in running3] == [1, 2, 3]
    assert all(get(svc.url("web", i)) == 200 for i in (1, 2, 3))
    dropped = running3[1:]

    assert [r.index for r in sup.scale("web", 1)] == [1]
    assert [r.index for r in sup.replicas("web")] == [1]
    assert all(r.state == "stopped" and not r.alive() for r in dropped)
    assert len(sup.pids()) == 1

    again = sup.scale("web", 2)  # slot 2 is reused: same log, second start
    assert [r.index for r in again] == [1, 2] and again[1] is dropped[0]
    assert again[1].starts == 2 and get(svc.url("web", 2)) == 200


def test_stop_sigkills_a_process_that_ignores_sigterm(sup: Supervisor, svc: Service) -> None:
    (stubborn,) = sup.add(svc.spec("stubborn", mode="ignore-term"))
    (polite,) = sup.add(svc.spec("polite"))

    t0 = time.monotonic()
    assert sup.stop("polite", timeout=5.0) == [polite]
    assert time.monotonic() - t0 < 4.0 and polite.returncode == -signal.SIGTERM

    t0 = time.monotonic()
    assert sup.stop("stubborn", timeout=1.0) == [stubborn]
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 5.0
    assert stubborn.state == "stopped" and stubborn.returncode == -signal.SIGKILL


def test_stop_kills_children_of_the_service(sup: Supervisor, svc: Service, script: Path) -> None:
    (rep,) = sup.add(svc.spec("parent", mode="child"))
    line = next(x for x in rep.log_path.read_text().splitlines() if x.startswith("child "))
    child = int(line.split()[1])
    assert running(child, str(script))
    try:
        sup.stop("parent", timeout=5.0)
        assert wait_gone([child], str(script)) == []
    finally:
        kill_leftovers([child], str(script))


def test_crash_at_start_raises_with_log_tail(sup: Supervisor, svc: Service) -> None:
    with pytest.raises(ProcessError) as err:
        sup.add(svc.spec("crash", mode="crash"))
    assert "crash-1" in str(err.value) and "boom: cannot start" in str(err.value)
    (rep,) = sup.replicas("crash")
    assert rep.state == "exited" and rep.returncode == 3


def test_replica_exiting_by_itself_is_reported_not_restarted(sup: Supervisor,
                                                             svc: Service) -> None:
    (rep,) = sup.add(svc.spec("web"))
    assert rep.pid is not None
    os.kill(rep.pid, signal.SIGTERM)  # our own child: it "crashes" behind the supervisor's back
    wait_for(lambda: sup.replicas("web")[0].state, lambda state: state == "exited", timeout_s=5.0, interval_s=0.05)
    assert rep.state == "exited" and rep.returncode == -signal.SIGTERM
    time.sleep(0.3)
    assert rep.state == "exited" and rep.starts == 1 and sup.pids() == []


def test_kill_while_another_thread_polls(sup: Supervisor, svc: Service) -> None:
    sup.add(svc.spec("web"), replicas=3)
    stop = threading.Event()
    seen: set[str] = set()
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            while not stop.is_set():
                seen.update(r.state for r in sup.replicas("web"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        sup.kill("web")
    finally:
        stop.set()
        poller.join(timeout=10)
    assert not errors and "exited" not in seen
    assert [r.state for r in sup.replicas("web")] == ["killed"] * 3


def test_replicas_started_from_a_short_lived_thread_survive_it(sup: Supervisor,
                                                              svc: Service) -> None:
    """PDEATHSIG fires when the forking *thread* dies; the supervisor forks on its own thread."""
    worker = threading.Thread(target=lambda: sup.add(svc.spec("web")))
    worker.start()
    worker.join(timeout=30)
    time.sleep(0.5)
    (rep,) = sup.replicas("web")
    assert rep.state == "running" and get(svc.url("web", 1)) == 200


def test_shutdown_leaves_no_process(sup: Supervisor, svc: Service, script: Path) -> None:
    sup.add(svc.spec("a"), replicas=2)
    sup.add(svc.spec("b", mode="ignore-term"))
    sup.pause("a", 2)  # a SIGSTOPped process must be continued to see SIGTERM
    pids = sup.pids()
    assert len(pids) == 3 and all(running(p, str(script)) for p in pids)
    sup.shutdown(timeout=1.0)
    assert sup.pids() == []
    assert [p for p in pids if os.path.exists(f"/proc/{p}") and running(p, str(script))] == []
    assert {r.state for s in ("a", "b") for r in sup.replicas(s)} == {"stopped"}
    sup.shutdown()  # idempotent
    with pytest.raises(ProcessError):
        sup.start("a")


# ------------------------------------------------------------------ cleanup proof


def read_line(stream: object, timeout: float) -> str:
    assert hasattr(stream, "readline") and hasattr(stream, "fileno")
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().decode() if ready else ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_children_die_with_the_driver(tmp_path: Path, script: Path,
                                      sig: signal.Signals) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    stderr = tmp_path / "driver.stderr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pids: list[int] = []
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(driver), sig.name, str(tmp_path / "run"), str(script)],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True)
    try:
        line = read_line(proc.stdout, 30.0)
        assert line.startswith("PIDS "), f"driver said {line!r}; stderr:\n{stderr.read_text()}"
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) == 2 and all(running(p, str(script)) for p in pids)

        proc.send_signal(sig)
        rc = proc.wait(timeout=15)
        expected = {signal.SIGINT: (-signal.SIGINT, 1), signal.SIGTERM: (143,),
                    signal.SIGKILL: (-signal.SIGKILL,)}[sig]
        assert rc in expected, stderr.read_text()
        assert wait_gone(pids, str(script)) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
        kill_leftovers(pids, str(script))
