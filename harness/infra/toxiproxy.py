"""The real Toxiproxy server as a child process, and a small client for its HTTP API.

This is the only module that talks to Toxiproxy. It does not use toxiproxy-python
(0.1.1 keeps host/port in class-level globals, has no timeouts and ignores 5xx);
every request here goes through one `requests.Session` with a timeout, and any
4xx/5xx becomes a `ToxiproxyError` naming the proxy/toxic and the server's message.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from harness.errors import ToxiproxyError
from harness.infra.ports import free_port
from harness.infra.processes import spawn

_HOST = "127.0.0.1"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
STREAMS = ("upstream", "downstream")


# ------------------------------------------------------------------- client


@dataclass(frozen=True)
class Proxy:
    """A proxy as the server reports it."""

    name: str
    listen_host: str
    listen_port: int
    upstream: str
    enabled: bool

    @property
    def listen(self) -> str:
        """"host:port" clients should connect to."""
        return f"{self.listen_host}:{self.listen_port}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proxy:
        host, _, port = str(data["listen"]).rpartition(":")
        return cls(str(data["name"]), host.strip("[]"), int(port), str(data["upstream"]), bool(data["enabled"]))


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ToxiproxyError(f"invalid {kind} name {name!r}: use 1-100 letters, digits, '-' or '_'")
    return name


class Toxiproxy:
    """Client for one Toxiproxy server; every call has a `timeout` (seconds)."""

    def __init__(self, api_url: str, timeout: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "chaoscafe"  # a Mozilla/ agent gets 403

    def _call(self, method: str, path: str, what: str, body: dict[str, Any] | None = None) -> Any:
        """One API request; JSON result (None for 204); ToxiproxyError on any failure."""
        url = f"{self.api_url}{path}"
        try:
            resp = self._session.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ToxiproxyError(f"{what}: {method} {url} failed: {exc}") from exc
        if resp.status_code >= 400:
            try:
                msg = resp.json().get("error", resp.text)
            except ValueError:
                msg = resp.text
            raise ToxiproxyError(f"{what}: HTTP {resp.status_code}: {str(msg).strip()}")
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise ToxiproxyError(f"{what}: non-JSON answer: {resp.text[:200]!r}") from exc

    def version(self) -> str:
        """Server version string ("git" for binaries built by plain `go install`)."""
        data = self._call("GET", "/version", "version")
        return str(data["version"]) if isinstance(data, dict) else str(data)

    def create_proxy(self, name: str, upstream: str, listen: str = f"{_HOST}:0") -> Proxy:
        """Create an enabled proxy; the result carries the real listen port. Duplicate → error."""
        _check_name("proxy", name)
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": True}
        return Proxy.from_json(self._call("POST", "/proxies", f"create proxy {name!r}", body))

    def proxies(self) -> list[Proxy]:
        """All proxies, sorted by name."""
        data = self._call("GET", "/proxies", "list proxies") or {}
        return sorted((Proxy.from_json(p) for p in data.values()), key=lambda p: p.name)

    def _patch(self, name: str, what: str, body: dict[str, Any]) -> Proxy:
        _check_name("proxy", name)
        return Proxy.from_json(self._call("PATCH", f"/proxies/{name}", f"{what} proxy {name!r}", body))

    def disable(self, name: str) -> Proxy:
        """Stop listening and close all connections through the proxy."""
        return self._patch(name, "disable", {"enabled": False})

    def enable(self, name: str) -> Proxy:
        """Listen again on the same address."""
        return self._patch(name, "enable", {"enabled": True})

    def add_toxic(
        self,
        proxy: str,
        kind: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        """Add a toxic and return its name (default f"{kind}_{stream}")."""
        _check_name("proxy", proxy)
        if stream not in STREAMS:
            raise ToxiproxyError(f"toxic on {proxy!r}: stream must be one of {STREAMS}, not {stream!r}")
        if not 0.0 <= toxicity <= 1.0:
            raise ToxiproxyError(f"toxic on {proxy!r}: toxicity {toxicity} not in [0, 1]")
        toxic = _check_name("toxic", name or f"{kind}_{stream}")
        body = {"name": toxic, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes or {}}
        data = self._call("POST", f"/proxies/{proxy}/toxics", f"add toxic {toxic!r} ({kind}) to proxy {proxy!r}", body)
        return str(data.get("name", toxic)) if isinstance(data, dict) else toxic

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        """Remove one toxic; ToxiproxyError if the proxy or toxic is absent."""
        _check_name("proxy", proxy)
        _check_name("toxic", toxic)
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}", f"remove toxic {toxic!r} from proxy {proxy!r}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        """The proxy's toxics as the server reports them."""
        _check_name("proxy", proxy)
        return list(self._call("GET", f"/proxies/{proxy}/toxics", f"list toxics of proxy {proxy!r}") or [])

    def close(self) -> None:
        """Release the HTTP session."""
        self._session.close()


# ------------------------------------------------------------------- server


class ToxiproxyServer:
    """A `toxiproxy-server` child bound to 127.0.0.1 on a free port, owned by PID."""

    def __init__(self, base_dir: Path, *, binary: Path | None = None) -> None:
        if binary is None:
            from harness.infra.provision import find_toxiproxy

            binary = find_toxiproxy()
        if binary is None:
            raise ToxiproxyError("toxiproxy-server not found: run `python -m harness.infra.provision`")
        self.binary = Path(binary)
        self.base_dir = Path(base_dir).resolve()
        self.port = free_port(_HOST)
        self.api_url = f"http://{_HOST}:{self.port}"
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.base_dir / "toxiproxy.log"

    def start(self, timeout: float = 20) -> None:
        """Launch the server and wait until GET /version answers; ToxiproxyError otherwise."""
        if self._proc is not None and self._proc.poll() is None:
            raise ToxiproxyError(f"toxiproxy already running (pid {self.pid})")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._proc = spawn([str(self.binary), "-host", _HOST, "-port", str(self.port)],
                           log_path=self.log_file, cwd=self.base_dir)
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout
        probe = Toxiproxy(self.api_url, timeout=1.0)
        try:
            while True:
                if self._proc.poll() is not None:
                    raise ToxiproxyError(f"toxiproxy-server exited with {self._proc.returncode}: {self._tail()}")
                try:
                    probe.version()
                    return
                except ToxiproxyError as exc:
                    if time.monotonic() >= deadline:
                        msg = f"toxiproxy-server not answering after {timeout}s: {self._tail()}"
                        raise ToxiproxyError(msg) from exc
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        finally:
            probe.close()

    def _tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM, then SIGKILL after `timeout`; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.pid = None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def version(self) -> str:
        """Version reported by the running server."""
        client = self.client()
        try:
            return client.version()
        finally:
            client.close()

    def client(self, timeout: float = 5.0) -> Toxiproxy:
        """A new client for this server."""
        return Toxiproxy(self.api_url, timeout=timeout)

    def __enter__(self) -> ToxiproxyServer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["Proxy", "Toxiproxy", "ToxiproxyError", "ToxiproxyServer"]
