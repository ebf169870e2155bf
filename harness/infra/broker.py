"""A private, loopback-only RabbitMQ node per run, owned by PID.

`RabbitNode` runs the unwrapped Debian scripts with its own HOME/cookie, config,
data dir, ports and a private foreground epmd. Nothing is found or killed by
name: every process is a descendant of a process this object started.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from harness.errors import BrokerError
from harness.infra import processes
from harness.infra.ports import free_port

DEFAULT_RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
_HOST = "127.0.0.1"
# The node's extra VM arguments: Erlang distribution on loopback only, and quorum queues that report
# their counts (messages ready and unacked, consumers) to the management API every 500 ms, as
# `collect_statistics_interval` does for the rest, instead of RabbitMQ 3.10's 5 s; without it a
# backlog sample or a consumer count can be 5 s old.
NODE_ERL_ARGS = "-kernel inet_dist_use_interface {127,0,0,1} -rabbit quorum_tick_interval 500"


# ---------------------------------------------------------------- processes


def spawn(argv: list[str], env: dict[str, str], out: Path, *, stdin: int | None) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session with PDEATHSIG, output appended to `out`, cwd = out's folder
    (so an erl_crash.dump lands in the run directory), via the one spawner of processes.py."""
    return processes.spawn(argv, log_path=out, env=env, cwd=out.parent, stdin=stdin)


Proc = tuple[int, int]  # (pid, start time in clock ticks): one exact process, never a reused PID


def ident(pid: int) -> Proc | None:
    """Identity of live (non-zombie) `pid`, or None."""
    st = processes.proc_stat(pid)
    return None if st is None or st[1] in ("Z", "X") else (pid, st[3])


def alive(proc: int | Proc) -> bool:
    """True if the PID (or that exact process, for a Proc) exists and is not a zombie."""
    pid = proc if isinstance(proc, int) else proc[0]
    now = ident(pid)
    return now is not None and (isinstance(proc, int) or now == proc)


def descendants(root: int) -> list[Proc]:
    """Live descendants of `root` (not including it), from one /proc scan."""
    children: dict[int, list[Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := processes.proc_stat(int(entry))) is not None and st[1] not in ("Z", "X"):
            children.setdefault(st[2], []).append((int(entry), st[3]))
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def kill_all(procs: Iterable[Proc], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to each process that is still the same live process (never to a reused PID)."""
    for proc in procs:
        if alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc[0], sig)


def wait_gone(procs: Iterable[Proc], timeout: float) -> bool:
    """Wait until none of `procs` is alive; True if they all went in time."""
    pending = list(procs)
    deadline = time.monotonic() + timeout
    while True:
        pending = [p for p in pending if alive(p)]
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _port_open(port: int, host: str = _HOST) -> bool:
    """True if a TCP connect to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_epmd(rabbit_bin: Path | None = None) -> Path | None:
    """The epmd binary shipped with Erlang (/usr/lib/erlang/erts-*/bin) or on PATH."""
    for cand in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"), reverse=True):
        if os.access(cand, os.X_OK):
            return cand
    found = shutil.which("epmd")
    return Path(found) if found else None


# --------------------------------------------------------------------- node


# resource -> (the Erlang function rabbitmqctl's set_vm_memory_high_watermark / set_disk_free_limit
# call, the value that raises its alarm, this node's configured value)
ALARM_LIMITS: dict[str, tuple[str, str, str]] = {
    "memory": ("vm_memory_monitor:set_vm_memory_high_watermark", "0.0", "0.4"),
    "disk": ("rabbit_disk_monitor:set_disk_free_limit", "1000000000000000", "50000000"),
}
# one `rabbitmqctl eval`: set the limit, then poll the node's alarms every 50 ms until `resource`'s
# is raised (or cleared) or `tries` polls have passed; prints done or timeout. One CLI call instead
# of a set and a status (each boots an Erlang VM: 0.6-2.2 s here, more on a busy machine)
_ALARM_EVAL = ("{setter}({value}), "
               "Raised = fun() -> [R || {{{{resource_limit, R, _}}, _}} <- rabbit_alarm:get_alarms(), R =:= {resource}] =/= [] end, "
               "Wait = fun W(0) -> timeout; W(K) -> case Raised() of {want} -> done; _ -> timer:sleep(50), W(K - 1) end end, "
               "Wait({tries}).")


class RabbitNode:
    """One private RabbitMQ node under `base_dir`; ports and credentials are fixed
    for the object's life, so `restart()` keeps the same identity and data. Its clients use the
    default vhost "/"; `Vhost` gives one shop run its own vhost and user on a shared node."""

    vhost = "/"
    shared = False   # a private node: its faults (crash, stop, restart) are the run's to inject

    def __init__(
        self, base_dir: Path, *, name: str = "cafe", management: bool = True, rabbit_bin: Path | None = None,
        address: str = _HOST,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.rabbit_bin = Path(rabbit_bin) if rabbit_bin else DEFAULT_RABBIT_BIN
        self.management = management
        self.address = address   # the loopback address its AMQP and management listeners bind
        self.nodename = f"{name}-{secrets.token_hex(4)}@localhost"
        self.amqp_port = free_port(_HOST)
        self.management_port = free_port(_HOST)
        self.dist_port = free_port(_HOST)
        self.epmd_port = free_port(_HOST)
        self.username = f"cafe-{secrets.token_hex(4)}"
        self.password = secrets.token_hex(16)
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._known: set[Proc] = set()  # every process ever seen as ours (for pids()/cleanup)
        self._prepared = False

    # -- identity

    @property
    def amqp_url(self) -> str:
        """AMQP URL for the default vhost, credentials included."""
        return amqp_url_of(self.username, self.password, self.amqp_port, self.vhost, self.address)

    def amqp_url_at(self, port: int) -> str:
        """AMQP URL of this node's vhost and credentials at 127.0.0.1:`port` (a proxy in front of
        the node)."""
        return amqp_url_of(self.username, self.password, port, self.vhost)

    def endpoints(self) -> list[tuple[str, int]]:
        """Where clients reach the broker: (address, AMQP port) per node, this one only."""
        return [(self.address, self.amqp_port)]

    @property
    def management_url(self) -> str:
        """Base URL of the management HTTP API (no trailing slash)."""
        return f"http://{self.address}:{self.management_port}"

    @property
    def log_file(self) -> Path:
        """The node's main log file."""
        return self.base_dir / "log" / f"{self.nodename}.log"

    # -- files and environment

    def _prepare(self) -> None:
        """Write config, cookie, plugins file and directories (once)."""
        if self._prepared:
            return
        for sub in ("mnesia", "log", "home"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        cookie = self.base_dir / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        lines = [
            f"listeners.tcp.default = {self.address}:{self.amqp_port}",
            f"default_user = {self.username}",
            f"default_pass = {self.password}",
            "loopback_users = none",
            "disk_free_limit.absolute = 50MB",
            "collect_statistics_interval = 500",
        ]
        if self.management:
            lines += [f"management.tcp.ip = {self.address}", f"management.tcp.port = {self.management_port}"]
        (self.base_dir / "rabbitmq.conf").write_text("\n".join(lines + self._extra_conf()) + "\n")
        plugins = "[rabbitmq_management]." if self.management else "[]."
        (self.base_dir / "enabled_plugins").write_text(plugins + "\n")
        (self.base_dir / "rabbitmq-env.conf").write_text("")
        self._prepared = True

    def _extra_conf(self) -> list[str]:
        """More rabbitmq.conf lines (a cluster member's peer discovery and partition handling)."""
        return []

    def _erl_args(self) -> str:
        """The node's extra VM arguments."""
        return NODE_ERL_ARGS

    def _env(self, *, server: bool) -> dict[str, str]:
        """Environment for the node (server=True) or for a CLI call (no DIST_PORT)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.base_dir / "home"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=_HOST,
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_CONF_ENV_FILE=str(self.base_dir / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.base_dir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base_dir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.base_dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base_dir / "log"),
            RABBITMQ_PID_FILE=str(self.base_dir / "rabbit.pid"),
        )
        if server:
            env.update(
                RABBITMQ_NODE_IP_ADDRESS=self.address,
                RABBITMQ_NODE_PORT=str(self.amqp_port),
                RABBITMQ_DIST_PORT=str(self.dist_port),
                RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=self._erl_args(),
                # exec erl directly so the child we start *is* beam.smp: PDEATHSIG and the
                # stdin pipe (EOF halts the VM) then protect the node if the harness dies.
                RABBITMQ_ALLOW_INPUT="true",
            )
        return env

    def ctl(self, *args: str, timeout: float = 30, tool: str = "rabbitmqctl") -> subprocess.CompletedProcess[str]:
        """Run `<tool> -n <node> args...` against this node (rabbitmqctl, or another CLI tool such as
        rabbitmq-queues; never raises on exit code)."""
        argv = [str(self.rabbit_bin / tool), "-n", self.nodename, *args]
        try:
            return subprocess.run(argv, env=self._env(server=False), capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, cwd=self.base_dir)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(argv, 124, str(exc.stdout or ""), f"timed out after {timeout}s")

    def _tail(self, n: int = 40) -> str:
        """Last lines of rabbit.out and the node log, for error messages."""
        parts = []
        for f in (self.base_dir / "rabbit.out", self.log_file):
            if f.exists():
                lines = f.read_text(errors="replace").splitlines()[-n:]
                parts.append(f"--- {f.name} (tail)\n" + "\n".join(lines))
        return "\n".join(parts) or "(no output)"

    # -- lifecycle

    def _start_epmd(self) -> None:
        """Start the private epmd in the foreground if it is not running."""
        if self._epmd is not None and self._epmd.poll() is None:
            return
        epmd = find_epmd(self.rabbit_bin)
        if epmd is None:
            raise BrokerError("epmd not found: install erlang-base (apt-get install rabbitmq-server)")
        self._epmd = spawn([str(epmd), "-port", str(self.epmd_port), "-address", _HOST],
                           self._env(server=False), self.base_dir / "epmd.out", stdin=subprocess.DEVNULL)
        self._remember(self._epmd.pid)

    def start(self, timeout: float = 90) -> None:
        """Launch the node and return once `rabbitmqctl await_startup` (and the
        management API, if enabled) succeed; BrokerError with the log tail otherwise."""
        if self.is_running():
            raise BrokerError(f"{self.nodename} is already running")
        self._prepare()
        deadline = time.monotonic() + timeout
        self._start_epmd()
        self._server = spawn([str(self.rabbit_bin / "rabbitmq-server")], self._env(server=True),
                             self.base_dir / "rabbit.out", stdin=subprocess.PIPE)
        self._remember(self._server.pid)
        try:
            self._await_ready(deadline, timeout)
        except BaseException:
            self._kill_node()
            raise

    def _await_ready(self, deadline: float, timeout: float) -> None:
        """Wait for the AMQP port (cheap), confirm with `rabbitmqctl await_startup`, then wait
        for the management API; all before `deadline`. Each CLI call is a whole Erlang VM, so
        it is not run in a tight loop while the node is still booting."""
        last = "AMQP port not open yet"
        while True:
            self._known.update(self._node_procs())
            if self._server is None or self._server.poll() is not None:
                code = None if self._server is None else self._server.returncode
                raise BrokerError(f"{self.nodename} exited during startup (code {code})\n{self._tail()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerError(f"{self.nodename} not ready after {timeout:.0f}s: {last}\n{self._tail()}")
            if not _port_open(self.amqp_port, self.address):
                time.sleep(0.1)
                continue
            res = self.ctl("await_startup", "--timeout", str(max(1, int(left))), timeout=left + 5)
            if res.returncode == 0:
                break
            last = ((res.stderr or res.stdout).strip().splitlines() or [f"exit {res.returncode}"])[-1]
            time.sleep(0.25)
        while self.management:
            try:
                self._api("overview", timeout=2)
                return
            except BrokerError as exc:
                if time.monotonic() >= deadline:
                    raise BrokerError(f"management API not ready after {timeout:.0f}s: {exc}\n{self._tail()}") from exc
                time.sleep(0.2)

    def _remember(self, pid: int) -> None:
        if (proc := ident(pid)) is not None:
            self._known.add(proc)

    def _node_procs(self) -> list[Proc]:
        """The server process and its live descendants."""
        if self._server is None:
            return []
        root = ident(self._server.pid)
        return ([root] if root else []) + descendants(self._server.pid)

    def beam_pid(self) -> int | None:
        """PID of this node's beam.smp (the started process or a descendant of it)."""
        for pid, _ in self._node_procs():
            st = processes.proc_stat(pid)
            if st is not None and st[0] == "beam.smp":
                return pid
        return None

    def is_running(self) -> bool:
        """True while this node's VM process is alive (not necessarily booted)."""
        return self._server is not None and self._server.poll() is None and self.beam_pid() is not None

    def stop(self, timeout: float = 30) -> None:
        """Graceful stop: SIGTERM to the node, wait for all its processes to exit.
        On timeout the node is SIGKILLed and BrokerError is raised. No-op if stopped."""
        if self._server is None:
            return
        procs = self._node_procs()
        self._known.update(procs)
        if self._server.poll() is None:
            self._server.send_signal(signal.SIGTERM)
        try:
            self._server.wait(timeout)
            graceful = wait_gone(procs, max(0.5, timeout / 4))
        except subprocess.TimeoutExpired:
            graceful = False
        if not graceful:
            self._kill_node()
            raise BrokerError(f"{self.nodename} did not stop within {timeout}s; killed\n{self._tail()}")
        self._forget_server()

    def crash(self) -> None:
        """SIGKILL this node's beam.smp only (a broker crash) and reap what is left."""
        beam = self.beam_pid()
        if beam is None:
            raise BrokerError(f"{self.nodename} is not running")
        procs = self._node_procs()
        os.kill(beam, signal.SIGKILL)
        if self._server is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._server.wait(10)
        kill_all(procs)  # helpers (erl_child_setup, inet_gethost) normally exit on their own
        wait_gone(procs, 5)
        self._forget_server()

    def _forget_server(self) -> None:
        """Drop the (exited) server process; closing its stdin pipe only now, since EOF halts a live VM."""
        if self._server is not None and self._server.stdin is not None:
            with contextlib.suppress(OSError):
                self._server.stdin.close()
        self._server = None

    def restart(self, timeout: float = 90) -> None:
        """Start again with the same name, ports and data dir (stops first if running)."""
        if self.is_running():
            self.stop()
        self.start(timeout)

    def _kill_node(self) -> None:
        """SIGKILL the node's process group and every known descendant; reap."""
        if self._server is None:
            return
        procs = self._node_procs()
        self._known.update(procs)
        if self._server.poll() is None:  # not reaped yet, so the group id cannot be reused
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._server.pid, signal.SIGKILL)
        kill_all(procs)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._server.wait(5)
        wait_gone(procs, 5)
        self._forget_server()

    def cleanup(self, *, graceful: bool = False) -> None:
        """Stop the node and the private epmd, for good. Idempotent, never raises for
        already-dead processes.

        A node being thrown away keeps nothing anyone reads again, so by default it is SIGKILLed
        (a graceful stop takes about 6 s with the management plugin on this machine, 1 s
        without); `graceful=True` stops it as `stop()` does first (SIGKILL if that times out)."""
        try:
            if graceful:
                self.stop(timeout=30)
        except BrokerError:
            pass  # stop() already killed it
        finally:
            self._kill_node()
            if self._epmd is not None:
                if self._epmd.poll() is None:
                    self._epmd.terminate()
                    try:
                        self._epmd.wait(5)
                    except subprocess.TimeoutExpired:
                        self._epmd.kill()
                        self._epmd.wait(5)
                self._epmd = None
            kill_all(self._known)  # anything ours that was orphaned along the way
            wait_gone(self._known, 5)

    def pids(self) -> list[int]:
        """Every live PID this node owns: server, beam.smp, its children, epmd, and any
        process it ever owned that is still alive (e.g. orphaned)."""
        self._known.update(self._node_procs())
        if self._epmd is not None and self._epmd.poll() is None:
            self._remember(self._epmd.pid)
        return sorted(pid for pid, start in self._known if alive((pid, start)))

    # -- queries

    def _api(self, path: str, timeout: float = 5, *, method: str = "GET", body: Any = None) -> Any:
        """`method` /api/<path> on the management plugin (as the node's administrator); the decoded
        JSON answer of a GET, None for a write; BrokerError on failure or an unexpected status."""
        if not self.management:
            raise BrokerError("management plugin disabled for this node")
        url = f"{self.management_url}/api/{path}"
        try:
            resp = requests.request(method, url, auth=(self.username, self.password), json=body, timeout=timeout)
        except requests.RequestException as exc:
            raise BrokerError(f"{method} {url}: {exc}") from exc
        if resp.status_code not in ((200,) if method == "GET" else (200, 201, 204)):
            raise BrokerError(f"{method} {url}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp.json() if method == "GET" else None

    def bindings(self, exchange: str, queue: str, vhost: str = "/") -> list[str]:
        """The routing keys binding `queue` to `exchange` (management API)."""
        path = "/".join(urllib.parse.quote(p, safe="") for p in (vhost, "e", exchange, "q", queue))
        return [str(b["routing_key"]) for b in self._api(f"bindings/{path}")]

    def unbind(self, exchange: str, queue: str, routing_key: str, vhost: str = "/") -> None:
        """Delete the binding of `queue` to `exchange` under `routing_key` (management API; a binding
        without arguments has its routing key as its properties key)."""
        path = "/".join(urllib.parse.quote(p, safe="") for p in (vhost, "e", exchange, "q", queue, routing_key))
        self._api(f"bindings/{path}", method="DELETE")

    def delete_queue(self, queue: str, vhost: str = "/") -> None:
        """Delete `queue` with its messages (management API): its consumers are cancelled."""
        self._api(f"queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(queue, safe='')}", method="DELETE")

    def bind(self, exchange: str, queue: str, routing_key: str, vhost: str = "/") -> None:
        """Bind `queue` to `exchange` under `routing_key` (management API; idempotent)."""
        path = "/".join(urllib.parse.quote(p, safe="") for p in (vhost, "e", exchange, "q", queue))
        self._api(f"bindings/{path}", method="POST", body={"routing_key": routing_key})

    def queue_stats(self, queue: str, vhost: str = "/") -> dict[str, Any]:
        """{"ready", "unacked", "total", "consumers"} (ints) and "node" (the member leading a quorum
        queue, or the node holding a classic one; None if not said) for `queue` from the management
        API (refreshed every 500 ms; on a cluster it lags an election by seconds); BrokerError if
        the queue does not exist."""
        q = self._api(f"queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(queue, safe='')}")
        return {
            "ready": int(q.get("messages_ready", 0)),
            "unacked": int(q.get("messages_unacknowledged", 0)),
            "total": int(q.get("messages", 0)),
            "consumers": int(q.get("consumers", 0)),
            "node": q.get("leader") or q.get("node"),
        }

    # -- resource alarms (issue 20, item 1)

    def alarms(self) -> list[str]:
        """The resources ("memory", "disk") whose alarm is raised on this node now, from
        `rabbitmqctl status` (exact: the management API's node record lags); BrokerError when the
        node does not answer."""
        res = self.ctl("status", "--formatter", "json", timeout=30)
        try:
            status = json.loads(res.stdout)
        except ValueError:
            raise BrokerError(f"{self.nodename}: rabbitmqctl status failed: {res.stderr.strip()[-300:]}") from None
        return sorted({str(a.get("resource")) for a in status.get("alarms", []) if a.get("type") == "resource_limit"})

    def set_alarm(self, resource: str, wait_s: float = 20.0) -> None:
        """Raise `resource`'s alarm ("memory" or "disk") by putting its limit out of reach (a memory
        high watermark of 0, a disk free limit of 1 PB) and return once the node reports it raised
        (at once for memory; a disk alarm waits for the disk monitor's next check). The broker then
        blocks every connection that publishes (connection.blocked) and stops reading from it.
        BrokerError if rabbitmqctl fails or the alarm is not raised within `wait_s` seconds."""
        setter, raise_at, _ = ALARM_LIMITS[resource]
        self._limit(resource, setter, raise_at, raised=True, wait_s=wait_s)

    def clear_alarm(self, resource: str, wait_s: float = 20.0) -> None:
        """Put `resource`'s limit back to this node's configured value and return once the node
        reports the alarm cleared; BrokerError as for set_alarm."""
        setter, _, configured = ALARM_LIMITS[resource]
        self._limit(resource, setter, configured, raised=False, wait_s=wait_s)

    def _limit(self, resource: str, setter: str, value: str, *, raised: bool, wait_s: float) -> None:
        code = _ALARM_EVAL.format(setter=setter, value=value, resource=resource, want=str(raised).lower(),
                                  tries=max(1, int(wait_s / 0.05)))
        res = self.ctl("eval", code, timeout=wait_s + 30)
        if res.returncode != 0 or res.stdout.strip() != "done":
            what = "raised" if raised else "cleared"
            detail = "not " + what + f" within {wait_s:g}s" if res.stdout.strip() == "timeout" else \
                f"rabbitmqctl eval failed: {(res.stderr or res.stdout).strip()[-300:]}"
            raise BrokerError(f"{self.nodename}: the {resource} alarm ({setter}({value})): {detail}")

    def blocked_connections(self, vhost: str = "/") -> int:
        """Connections of `vhost` the broker holds blocked now: they published during a resource
        alarm and it reads nothing more from them (`rabbitmqctl list_connections state`, asked of
        each connection: exact, unlike the management API's statistics, which lag by seconds).
        BrokerError when rabbitmqctl fails."""
        res = self.ctl("list_connections", "-p", vhost, "--formatter", "json", "state", timeout=30)
        try:
            rows = json.loads(res.stdout)
        except ValueError:
            raise BrokerError(f"{self.nodename}: rabbitmqctl list_connections failed: "
                              f"{res.stderr.strip()[-300:]}") from None
        return sum(1 for row in rows if row.get("state") == "blocked")

    def version(self) -> str:
        """RabbitMQ server version, e.g. "3.10.8"."""
        if self.management:
            return str(self._api("overview")["rabbitmq_version"])
        res = self.ctl("eval", "rabbit_misc:version().", timeout=30)
        if res.returncode != 0:
            raise BrokerError(f"rabbitmqctl eval failed: {res.stderr.strip()}")
        return res.stdout.strip().strip('"')

    # -- context manager

    def __enter__(self) -> RabbitNode:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.cleanup()


def amqp_url_of(user: str, password: str, port: int, vhost: str, host: str = _HOST) -> str:
    """amqp://user:password@host:port/vhost, every part percent-encoded."""
    user, password, vhost = (urllib.parse.quote(s, safe="") for s in (user, password, vhost))
    return f"amqp://{user}:{password}@{host}:{port}/{vhost}"


class Vhost:
    """One shop run's tenant on a shared node: its own virtual host and its own user (generated
    password, permissions on that vhost only), so its queues, streams and messages are invisible to
    every other run, and deleting the vhost at the end removes all of them and closes the run's
    connections. It offers what the shops and the harness read from a node (URLs, `queue_stats`,
    `version`, `is_running`, `beam_pid`); the node's own lifecycle is not the run's: `crash`, `stop`
    and `restart` raise BrokerError (a broker fault needs a private node, see
    `Experiment.needs_private_broker`).

    `start()` creates the vhost, user and permissions through the management API; `cleanup()`
    deletes them (idempotent, never raises: the node may already be gone)."""

    shared = True

    def __init__(self, node: RabbitNode, name: str | None = None) -> None:
        self.node = node
        self.vhost = name or f"run-{secrets.token_hex(4)}"
        self.username = f"{self.vhost}-{secrets.token_hex(2)}"
        self.password = secrets.token_hex(16)
        self._created = False

    @property
    def amqp_port(self) -> int:
        return self.node.amqp_port

    @property
    def nodename(self) -> str:
        return self.node.nodename

    @property
    def management_url(self) -> str:
        return self.node.management_url

    @property
    def amqp_url(self) -> str:
        """AMQP URL of this vhost at the node's own port, this tenant's credentials included."""
        return amqp_url_of(self.username, self.password, self.node.amqp_port, self.vhost, self.node.address)

    def endpoints(self) -> list[tuple[str, int]]:
        return self.node.endpoints()

    def amqp_url_at(self, port: int) -> str:
        """AMQP URL of this vhost at loopback `port` (a proxy in front of the node)."""
        return amqp_url_of(self.username, self.password, port, self.vhost)

    def start(self) -> None:
        """Create the vhost, the user and its permissions on that vhost only."""
        vhost = urllib.parse.quote(self.vhost, safe="")
        user = urllib.parse.quote(self.username, safe="")
        self.node._api(f"vhosts/{vhost}", method="PUT", body={})
        self._created = True
        self.node._api(f"users/{user}", method="PUT", body={"password": self.password, "tags": ""})
        self.node._api(f"permissions/{vhost}/{user}", method="PUT",
                       body={"configure": ".*", "write": ".*", "read": ".*"})

    def cleanup(self) -> None:
        """Delete the vhost (its queues, messages and connections go with it) and the user."""
        if not self._created:
            return
        for path in (f"vhosts/{urllib.parse.quote(self.vhost, safe='')}",
                     f"users/{urllib.parse.quote(self.username, safe='')}"):
            with contextlib.suppress(BrokerError):
                self.node._api(path, method="DELETE", timeout=10)
        self._created = False

    def queue_stats(self, queue: str) -> dict[str, Any]:
        """The node's `queue_stats` for `queue` in this vhost."""
        return self.node.queue_stats(queue, self.vhost)

    def bindings(self, exchange: str, queue: str) -> list[str]:
        return self.node.bindings(exchange, queue, self.vhost)

    def unbind(self, exchange: str, queue: str, routing_key: str) -> None:
        self.node.unbind(exchange, queue, routing_key, self.vhost)

    def bind(self, exchange: str, queue: str, routing_key: str) -> None:
        self.node.bind(exchange, queue, routing_key, self.vhost)

    def delete_queue(self, queue: str) -> None:
        self.node.delete_queue(queue, self.vhost)

    def alarms(self) -> list[str]:
        return self.node.alarms()

    def set_alarm(self, resource: str, wait_s: float = 20.0) -> None:
        """The node's alarm: it blocks every publisher of the node, this vhost's among them (the
        fault restores the limit at its end; a node other runs share is used by one run at a time)."""
        self.node.set_alarm(resource, wait_s)

    def clear_alarm(self, resource: str, wait_s: float = 20.0) -> None:
        self.node.clear_alarm(resource, wait_s)

    def blocked_connections(self) -> int:
        return self.node.blocked_connections(self.vhost)

    def version(self) -> str:
        return self.node.version()

    def is_running(self) -> bool:
        return self.node.is_running()

    def beam_pid(self) -> int | None:
        return self.node.beam_pid()

    def _refuse(self) -> None:
        raise BrokerError(f"{self.node.nodename} is shared by every shop run of this set: a fault that "
                          "stops the broker needs a private node (Experiment.needs_private_broker)")

    def crash(self) -> None:
        self._refuse()

    def stop(self, timeout: float = 30) -> None:
        self._refuse()

    def restart(self, timeout: float = 90) -> None:
        self._refuse()


__all__ = ["BrokerError", "RabbitNode", "Vhost", "find_epmd"]
