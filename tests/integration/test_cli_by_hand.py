"""The README's "poke a shop by hand" as a user does it: `chaoscafe shop up` from another
directory with a relative (or the default) run directory, an order placed with curl's request,
and the shop driven by another chaos tool through the Toxiproxy HTTP API it prints."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from polling import wait_for

pytestmark = pytest.mark.integration

ORDER = json.dumps({"product": "flat white", "size": "large"}).encode()


def post(url: str, body: bytes = ORDER, method: str = "POST", timeout: float = 10.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


class ShopUp:
    """`chaoscafe shop up ...` in a child process; its printed lines read until the shop is up."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("CHAOSCAFE_HOME", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "harness", "shop", "up", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        deadline = time.monotonic() + 120
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip())
            if line.startswith("Ctrl-C stops"):
                return
        self.stop()
        raise AssertionError("shop up did not come up:\n" + "\n".join(self.lines))

    def find(self, pattern: str) -> re.Match[str]:
        for line in self.lines:
            if (m := re.search(pattern, line)) is not None:
                return m
        raise AssertionError(f"no line matches {pattern!r}:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def test_sync_shop_up_with_a_relative_run_dir_driven_through_the_toxiproxy_api(tmp_path: Path) -> None:
    shop = ShopUp(tmp_path, "sync", "--run-dir", "rel-runs", "--brew-ms", "10")
    try:
        entry = shop.find(r"curl -X POST (http://127\.0\.0\.1:\d+)/orders").group(1)
        api = shop.find(r"toxiproxy api: (http://127\.0\.0\.1:\d+)").group(1)
        proxy = shop.find(r"proxy (\S+) \(edge customer->orders\): listen 127\.0\.0\.1:(\d+)")
        assert entry.endswith(f":{proxy.group(2)}")
        status, order = post(f"{entry}/orders")
        assert status == 201 and order is not None
        # another tool disables the entry proxy through the Toxiproxy HTTP API: orders cannot get in
        assert post(f"{api}/proxies/{proxy.group(1)}", json.dumps({"enabled": False}).encode())[0] == 200
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(urllib.request.Request(f"{entry}/orders", data=ORDER, method="POST",
                                                          headers={"content-type": "application/json"}), timeout=5)
        assert post(f"{api}/proxies/{proxy.group(1)}", json.dumps({"enabled": True}).encode())[0] == 200
        # ... and adds 300 ms of latency: an order now takes at least that long
        toxic = {"name": "slow", "type": "latency", "stream": "downstream", "attributes": {"latency": 300}}
        assert post(f"{api}/proxies/{proxy.group(1)}/toxics", json.dumps(toxic).encode())[0] == 200
        began = time.monotonic()
        assert post(f"{entry}/orders")[0] == 201
        assert time.monotonic() - began >= 0.3
        assert post(f"{api}/proxies/{proxy.group(1)}/toxics/slow", b"", method="DELETE")[0] == 204
        run_dir = Path(shop.find(r"run dir (\S+)\)").group(1))
        assert run_dir.is_absolute() and run_dir.is_relative_to(tmp_path / "rel-runs")
    finally:
        code = shop.stop()
    assert code == 130
    with pytest.raises(urllib.error.URLError):   # everything it started is gone
        urllib.request.urlopen(f"{api}/version", timeout=2)


def test_async_shop_up_with_the_default_run_dir_serves_a_coffee(tmp_path: Path) -> None:
    shop = ShopUp(tmp_path, "async", "--brew-ms", "10")
    try:
        entry = shop.find(r"curl -X POST (http://127\.0\.0\.1:\d+)/orders").group(1)
        waiter = shop.find(r"waiter-1: (http://127\.0\.0\.1:\d+)").group(1)
        assert post(f"{entry}/orders")[0] == 202

        def served_items() -> list[Any]:
            with urllib.request.urlopen(f"{waiter}/served", timeout=5) as resp:
                return list(json.loads(resp.read())["items"])

        served = wait_for(served_items, timeout_s=30, interval_s=0.2)
        assert len(served) == 1
        assert (tmp_path / ".chaoscafe" / "runs").is_dir()   # the default, relative to where it was started
    finally:
        assert shop.stop() == 130
