"""The images of the Docker runtime: their names, how each is built, and the build cache.

Names, each overridable by an environment variable:
  * ``CHAOSCAFE_RABBITMQ_IMAGE``  (``rabbitmq:3-management``) the broker;
  * ``CHAOSCAFE_TOXIPROXY_IMAGE`` (``ghcr.io/shopify/toxiproxy``) the proxy server;
  * ``CHAOSCAFE_BASE_IMAGE``      (``python:3.11-slim``) the base of the shop images (python3 with venv).

Shop images are built by the harness from ``systems/<kind>/Dockerfile`` (BASE_IMAGE is a build
argument; pip there trusts the host's CA bundle) and tagged ``chaoscafe/shop-<kind>:<hash>``; the
hash covers ``cafe/``, ``systems/`` (Dockerfiles included) and the base image's id, so an image is
built only when that tag is missing (older tags of that shop are then removed).

Where no registry is reachable, `build_local_images()` makes the three named images from what is
installed: a debootstrapped Debian bookworm base (``docker import``), Debian's rabbitmq-server
installed into it (dockerfiles/rabbitmq/Dockerfile) and the host's toxiproxy-server binary copied into it
(dockerfiles/toxiproxy/Dockerfile). Each carries the label ``chaoscafe.hash`` and is rebuilt only when
its inputs change; an image of the configured name without that label (a pulled official image) is
never replaced.

Every build context is a temporary directory removed when the build ends, and builds use the host
network (no Docker bridge network is ever created).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ImageError

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "dockerfiles"
HASH_LABEL = "chaoscafe.hash"
# a shop image per folder of systems/ with a Dockerfile (every registered shop has one; the infrastructure,
# a layer below harness.shops, does not read the registry)
SHOP_KINDS = tuple(sorted(p.parent.name for p in (REPO_ROOT / "systems").glob("*/Dockerfile")))
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv")
LOCAL_BASE = "chaoscafe/base:bookworm"   # the debootstrapped base's name unless CHAOSCAFE_BASE_IMAGE says otherwise
_SKIP = ("__pycache__", ".pyc", ".pyo", ".mypy_cache", ".pytest_cache")


@dataclass(frozen=True)
class ImageNames:
    """The configured image names (see the module docstring)."""

    rabbitmq: str = "rabbitmq:3-management"
    toxiproxy: str = "ghcr.io/shopify/toxiproxy"
    base: str = "python:3.11-slim"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ImageNames:
        env = os.environ if env is None else env
        d = cls()
        return cls(rabbitmq=env.get("CHAOSCAFE_RABBITMQ_IMAGE") or d.rabbitmq,
                   toxiproxy=env.get("CHAOSCAFE_TOXIPROXY_IMAGE") or d.toxiproxy,
                   base=env.get("CHAOSCAFE_BASE_IMAGE") or d.base)

    def runtime_images(self) -> tuple[str, str, str]:
        """The images a Docker run needs before it starts (the shop images are built from base)."""
        return (self.rabbitmq, self.toxiproxy, self.base)


# ------------------------------------------------------------------ hashing (pure)


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.endswith(_SKIP) for part in path.parts):
            yield path


def content_hash(parts: Iterable[tuple[str, bytes]]) -> str:
    """A short, stable hash of named byte strings (order matters)."""
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()[:16]


def tree_parts(root: Path, prefix: str) -> list[tuple[str, bytes]]:
    """(prefix/relative path, content) of every file under `root`, sorted, caches skipped."""
    return [(f"{prefix}/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in _files(root)]


def shop_tag(kind: str, base_id: str, repo: Path = REPO_ROOT) -> str:
    """``chaoscafe/shop-<kind>:<hash>`` for the current sources and base image id."""
    if kind not in SHOP_KINDS:
        raise ImageError(f"no shop kind {kind!r} (one of {', '.join(SHOP_KINDS)})")
    parts = [("kind", kind.encode()), ("base", base_id.encode()), *tree_parts(repo / "cafe", "cafe"),
             *tree_parts(repo / "systems", "systems")]
    return f"chaoscafe/shop-{kind}:{content_hash(parts)}"


# ------------------------------------------------------------------ engine helpers


def has_image(client: Any, name: str) -> bool:
    """True if the engine holds an image called `name`."""
    import docker.errors

    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def _label(client: Any, name: str) -> str | None:
    """The image's chaoscafe.hash label; None if absent; "" if the image is missing."""
    import docker.errors

    try:
        labels = client.images.get(name).labels or {}
    except docker.errors.ImageNotFound:
        return ""
    return labels.get(HASH_LABEL)


@contextmanager
def _context() -> Iterator[Path]:
    """A temporary build context, always removed."""
    path = Path(tempfile.mkdtemp(prefix="chaoscafe-build-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def build(client: Any, context: Path, tag: str, *, buildargs: Mapping[str, str] | None = None,
          labels: Mapping[str, str] | None = None, log: Path | None = None) -> str:
    """Build `context` (its Dockerfile) on the host network as `tag`; returns the image id.
    ImageError with the tail of the build output on failure (also written to `log`, if given)."""
    import docker.errors

    lines: list[str] = []
    image_id: str | None = None
    try:
        for chunk in client.api.build(path=str(context), tag=tag, buildargs=dict(buildargs or {}),
                                      labels=dict(labels or {}), network_mode="host", rm=True,
                                      forcerm=True, decode=True):
            if "stream" in chunk:
                lines.append(str(chunk["stream"]))
            if "error" in chunk:
                lines.append(f"ERROR: {chunk['error']}\n")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
    except docker.errors.APIError as exc:
        lines.append(f"ERROR: {exc}\n")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(lines))
    if image_id is None or any(line.startswith("ERROR: ") for line in lines):
        tail = "".join(lines[-15:])
        raise ImageError(f"building {tag} failed:\n{tail}")
    return image_id


# ------------------------------------------------------------------ shop images


def pip_ca_bundle(env: Mapping[str, str] | None = None) -> Path:
    """The CA bundle the host's pip trusts ($PIP_CERT, $REQUESTS_CA_BUNDLE, $SSL_CERT_FILE, the
    system default, certifi's), handed to pip in the image build."""
    env = os.environ if env is None else env
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if (value := env.get(var)) and Path(value).is_file():
            return Path(value)
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and Path(cafile).is_file():
        return Path(cafile)
    import certifi

    return Path(certifi.where())


def shop_image(client: Any, kind: str, names: ImageNames | None = None, *, log: Path | None = None,
               repo: Path = REPO_ROOT) -> str:
    """The tag of the shop image for `kind`, building it from systems/<kind>/Dockerfile on top
    of the configured base when that tag is missing. ImageError if the base is absent."""
    names = names or ImageNames.from_env()
    import docker.errors

    try:
        base_id = str(client.images.get(names.base).id)
    except docker.errors.ImageNotFound:
        raise ImageError(f"base image {names.base!r} not found: `docker pull {names.base}` (or build the "
                         "local images: python -m harness.infra.images)") from None
    tag = shop_tag(kind, base_id, repo)
    if has_image(client, tag):
        return tag
    with _context() as ctx:
        shutil.copytree(repo / "cafe", ctx / "cafe", ignore=shutil.ignore_patterns(*(f"*{s}" for s in _SKIP)))
        shutil.copytree(repo / "systems", ctx / "systems", ignore=shutil.ignore_patterns(*(f"*{s}" for s in _SKIP)))
        shutil.copy(repo / "systems" / kind / "Dockerfile", ctx / "Dockerfile")
        shutil.copy(pip_ca_bundle(), ctx / "pip-ca.pem")
        build(client, ctx, tag, buildargs={"BASE_IMAGE": names.base},
              labels={HASH_LABEL: tag.rpartition(":")[2], "chaoscafe.image": f"shop-{kind}"}, log=log)
    _drop_older(client, tag)
    return tag


def _drop_older(client: Any, tag: str) -> None:
    """Remove the other tags of `tag`'s repository (older sources), so the cache stays one image
    per shop; an image still used by a container is kept."""
    import docker.errors

    repository = tag.rpartition(":")[0]
    for image in client.images.list(name=repository):
        for other in image.tags:
            if other != tag and other.rpartition(":")[0] == repository:
                try:
                    client.images.remove(other)
                except docker.errors.APIError:
                    pass


# ------------------------------------------------------------------ local images (no registry)


def base_hash() -> str:
    return content_hash([("suite", DEBIAN_SUITE.encode()), ("packages", " ".join(BASE_PACKAGES).encode())])


def build_local_base(client: Any, name: str, *, log: Path | None = None) -> bool:
    """debootstrap Debian bookworm (minbase + python3, python3-venv) and `docker import` it as
    `name`; False (nothing done) when an image of that name already exists. Needs root and
    debootstrap. ImageError on failure."""
    if _label(client, name) != "":
        return False
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap not found: apt-get install debootstrap")
    with _context() as ctx:
        root = ctx / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", DEBIAN_SUITE,
               str(root), DEBIAN_MIRROR]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            raise ImageError(f"debootstrap failed ({res.returncode}): {(res.stdout + res.stderr)[-2000:]}")
        tar = ctx / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-c", "-f", str(tar), "."], check=True)
        repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        changes = [f'LABEL {HASH_LABEL}="{base_hash()}"', 'CMD ["python3"]']
        out = client.api.import_image(src=str(tar), repository=repository, tag=tag, changes=changes)
        if not has_image(client, name):
            raise ImageError(f"docker import of {name} failed: {out}")
    return True


def _build_from_docker_dir(client: Any, which: str, name: str, base: str, extra: Mapping[str, Path],
                           log: Path | None) -> bool:
    """Build dockerfiles/<which>/Dockerfile (plus `extra` files copied into the context) as `name`,
    unless an image of that name exists: rebuilt only if it carries a different chaoscafe.hash."""
    src = DOCKER_DIR / which / "Dockerfile"
    base_id = str(client.images.get(base).id)
    digest = content_hash([("dockerfile", src.read_bytes()), ("base", base_id.encode()),
                           *((k, p.read_bytes()) for k, p in sorted(extra.items()))])
    current = _label(client, name)
    if current == digest or current is None:   # up to date, or not ours (a pulled image)
        return False
    with _context() as ctx:
        shutil.copy(src, ctx / "Dockerfile")
        for dest, path in extra.items():
            shutil.copy(path, ctx / dest)
        build(client, ctx, name, buildargs={"BASE_IMAGE": base},
              labels={HASH_LABEL: digest, "chaoscafe.image": which}, log=log)
    return True


def build_local_images(client: Any, names: ImageNames | None = None, *, log_dir: Path | None = None,
                       toxiproxy_binary: Path | None = None) -> dict[str, float]:
    """Make the configured base, RabbitMQ and Toxiproxy images locally (see the module docstring)
    and return the seconds each build took (0.0 when cached). ImageError on failure."""
    names = names or ImageNames.from_env()
    if toxiproxy_binary is None:
        from harness.infra.provision import find_toxiproxy

        toxiproxy_binary = find_toxiproxy()
    if toxiproxy_binary is None:
        raise ImageError("toxiproxy-server not found: python -m harness.infra.provision")
    logs = (lambda n: log_dir / f"build-{n}.log") if log_dir is not None else (lambda n: None)
    took: dict[str, float] = {}
    t = time.monotonic()
    took["base"] = time.monotonic() - t if build_local_base(client, names.base, log=logs("base")) else 0.0
    t = time.monotonic()
    built = _build_from_docker_dir(client, "rabbitmq", names.rabbitmq, names.base, {}, logs("rabbitmq"))
    took["rabbitmq"] = time.monotonic() - t if built else 0.0
    t = time.monotonic()
    built = _build_from_docker_dir(client, "toxiproxy", names.toxiproxy, names.base,
                                   {"toxiproxy": Path(toxiproxy_binary)}, logs("toxiproxy"))
    took["toxiproxy"] = time.monotonic() - t if built else 0.0
    return took


def main() -> int:
    """`python -m harness.infra.images`: build the local images (the base as $CHAOSCAFE_BASE_IMAGE,
    default chaoscafe/base:bookworm) and the shop images; print the seconds each took."""
    from harness.infra.engine import connect

    client = connect()
    names = ImageNames.from_env({**os.environ, "CHAOSCAFE_BASE_IMAGE": os.environ.get("CHAOSCAFE_BASE_IMAGE")
                                 or LOCAL_BASE})
    print(f"base image: {names.base} (runs need CHAOSCAFE_BASE_IMAGE={names.base})")
    took = build_local_images(client, names)
    for kind in SHOP_KINDS:
        t = time.monotonic()
        tag = shop_image(client, kind, names)
        took[tag] = round(time.monotonic() - t, 1)
    print(json.dumps({k: round(v, 1) for k, v in took.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
