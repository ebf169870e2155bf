"""Find, or install, the RabbitMQ and Toxiproxy binaries the harness runs, and libfaketime (for
the clock-skew fault only) and iptables (for network faults between loopback addresses; installed
only as root): missing, these two are a warning, not an error.

`python -m harness.infra.provision [--check]` prints one line per component and
exits 0, or prints one error line naming what to install and how, and exits 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import ProvisionError
from harness.infra.broker import find_epmd

TOXIPROXY_ENV = "CHAOSCAFE_TOXIPROXY"
TOXIPROXY_VERSION = "2.12.0"
TOXIPROXY_PKG = f"github.com/Shopify/toxiproxy/v2/cmd/server@v{TOXIPROXY_VERSION}"
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")   # Debian's faketime package
_FAKETIME_HINT = "install libfaketime: `sudo apt-get install -y faketime` (Debian/Ubuntu)"
_IPTABLES_HINT = "install iptables: `sudo apt-get install -y iptables` (Debian/Ubuntu)"
_RABBIT_HINT = "install RabbitMQ: `sudo apt-get install -y rabbitmq-server` (Debian/Ubuntu), then rerun"
_TOXI_HINT = (
    f"install Toxiproxy: `go install {TOXIPROXY_PKG}` (Go >= 1.23) and copy the `server` binary "
    f"to ~/.local/bin/toxiproxy-server, or set {TOXIPROXY_ENV}=/path/to/it"
)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_rabbitmq() -> Path | None:
    """Directory holding the unwrapped `rabbitmq-server`/`rabbitmqctl` scripts, if an epmd exists too."""
    candidates = [RABBITMQ_BIN, *sorted(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*/sbin"), reverse=True)]
    for cand in candidates:
        if _executable(cand / "rabbitmq-server") and _executable(cand / "rabbitmqctl"):
            return cand if find_epmd() is not None else None
    return None


def rabbitmq_version(bin_dir: Path) -> str:
    """Version from the installed rabbitmq_server-X.Y.Z directory, or "unknown"."""
    parent = bin_dir.resolve().parent
    dirs = [parent, *sorted((parent / "lib").glob("rabbitmq_server-*"), reverse=True)]
    names = [d.name for d in dirs if d.name.startswith("rabbitmq_server-")]
    return names[-1].removeprefix("rabbitmq_server-") if names else "unknown"


def find_toxiproxy() -> Path | None:
    """`$CHAOSCAFE_TOXIPROXY` if set (None if it is not executable); else `toxiproxy-server`
    on PATH, in ~/go/bin, ~/.local/bin or /usr/local/bin."""
    override = os.environ.get(TOXIPROXY_ENV)
    if override:
        return Path(override) if _executable(Path(override)) else None
    on_path = shutil.which("toxiproxy-server")
    if on_path:
        return Path(on_path)
    for d in (Path.home() / "go" / "bin", Path.home() / ".local" / "bin", Path("/usr/local/bin")):
        if _executable(d / "toxiproxy-server"):
            return d / "toxiproxy-server"
    return None


def toxiproxy_version(binary: Path) -> str:
    """Version the binary reports with `-version` ("git" for an unstamped build)."""
    try:
        out = subprocess.run([str(binary), "-version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"{binary} does not run ({exc}); {_TOXI_HINT}") from exc
    words = (out.stdout + out.stderr).split()
    return words[-1] if out.returncode == 0 and words else "unknown"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _apt_install(package: str, what: str, hint: str, log: Callable[[str], None]) -> None:
    """apt-get install `package` (root only); `apt-get update` only if the first try fails."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ProvisionError(f"{what} not found and cannot install it here (needs root and apt-get): {hint}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", package]
    log(f"provision: installing {package} with apt-get")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        log("provision: apt-get install failed; running apt-get update and retrying")
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=900)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise ProvisionError(f"apt-get install {package} failed: {_last_line(res.stderr)}; {hint}")


def _install_rabbitmq(log: Callable[[str], None]) -> None:
    _apt_install("rabbitmq-server", "RabbitMQ", _RABBIT_HINT, log)


def _install_toxiproxy(log: Callable[[str], None]) -> Path:
    """go install into a temporary GOBIN, then copy to /usr/local/bin (root) or ~/.local/bin."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if _executable(Path("/usr/local/go/bin/go")) else None)
    if go is None:
        raise ProvisionError(f"toxiproxy-server not found and Go is not installed: {_TOXI_HINT}")
    dest_dir = Path("/usr/local/bin") if os.geteuid() == 0 else Path.home() / ".local" / "bin"
    stamp = f"-X github.com/Shopify/toxiproxy/v2.Version={TOXIPROXY_VERSION}"
    log(f"provision: building toxiproxy {TOXIPROXY_VERSION} with go install (first build takes a minute or two)")
    with tempfile.TemporaryDirectory(prefix="chaoscafe-gobin-") as gobin:
        res = subprocess.run([go, "install", "-ldflags", stamp, TOXIPROXY_PKG], env={**os.environ, "GOBIN": gobin},
                             capture_output=True, text=True, timeout=1200)
        built = Path(gobin) / "server"
        if res.returncode != 0 or not built.exists():
            raise ProvisionError(f"go install {TOXIPROXY_PKG} failed: {_last_line(res.stderr)}; {_TOXI_HINT}")
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / "toxiproxy-server"
        tmp = dest_dir / f".toxiproxy-server.{os.getpid()}"
        shutil.copy2(built, tmp)
        tmp.chmod(0o755)
        tmp.replace(dest)  # atomic: a running server keeps its old inode
    log(f"provision: installed {dest}")
    return dest


def ensure(*, install: bool = True, log: Callable[[str], None] = print) -> dict[str, str]:
    """Make sure both components are present (installing them if `install`); idempotent and quick
    when present. Returns paths and versions; raises ProvisionError (one line) when it cannot."""
    rabbit = find_rabbitmq()
    if rabbit is None:
        if not install:
            raise ProvisionError(f"RabbitMQ scripts ({RABBITMQ_BIN}) or epmd not found: {_RABBIT_HINT}")
        _install_rabbitmq(log)
        rabbit = find_rabbitmq()
        if rabbit is None:
            raise ProvisionError(f"rabbitmq-server installed but {RABBITMQ_BIN} or epmd still missing: {_RABBIT_HINT}")

    override = os.environ.get(TOXIPROXY_ENV)
    toxi = find_toxiproxy()
    if toxi is None and override:
        raise ProvisionError(f"{TOXIPROXY_ENV}={override} is not an executable file: fix it or unset it")
    if toxi is None:
        if not install:
            raise ProvisionError(f"toxiproxy-server not found: {_TOXI_HINT}")
        toxi = _install_toxiproxy(log)

    faketime = str(LIBFAKETIME) if LIBFAKETIME.exists() else "missing"
    if faketime == "missing" and install:
        try:   # only the clock-skew fault needs it: a machine without it runs everything else
            _apt_install("faketime", "libfaketime", _FAKETIME_HINT, log)
            faketime = str(LIBFAKETIME) if LIBFAKETIME.exists() else "missing"
        except ProvisionError as exc:
            log(f"provision: warning: {exc}")

    iptables = shutil.which("iptables") or shutil.which("iptables", path="/usr/sbin:/sbin") or "missing"
    if iptables == "missing" and install and os.geteuid() == 0:
        try:   # only the network faults need it
            _apt_install("iptables", "iptables", _IPTABLES_HINT, log)
            iptables = shutil.which("iptables", path="/usr/sbin:/sbin") or "missing"
        except ProvisionError as exc:
            log(f"provision: warning: {exc}")

    return {
        "rabbitmq": str(rabbit),
        "rabbitmq_version": rabbitmq_version(rabbit),
        "toxiproxy": str(toxi),
        "toxiproxy_version": toxiproxy_version(toxi),
        "faketime": faketime,
        "iptables": iptables,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 when both components are ready, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m harness.infra.provision", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only look; never install")
    args = parser.parse_args(argv)
    try:
        info = ensure(install=not args.check, log=lambda msg: print(msg, file=sys.stderr))
    except ProvisionError as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return 1
    print(f"rabbitmq: {info['rabbitmq_version']} ({info['rabbitmq']})")
    print(f"toxiproxy: {info['toxiproxy_version']} ({info['toxiproxy']})")
    print(f"faketime: {info['faketime']}" + ("" if info["faketime"] != "missing" else f" (clock-skew needs it: {_FAKETIME_HINT})"))
    print(f"iptables: {info['iptables']}" + ("" if info["iptables"] != "missing" else f" (network faults need it: {_IPTABLES_HINT})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
