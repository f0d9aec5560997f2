"""The local image registry: a real Distribution registry on loopback, managed by the emulator.

ECR URIs resolve to images in this registry (DESIGN.md decision 4), and ``smemu ecr push``
pushes into it. It is Debian's ``docker-registry`` (Distribution 2.8; the upstream binary is
called ``registry``) run with **our own config** under ``SMEMU_HOME/registry/``: the packaged
``/etc/docker/registry/config.yml`` turns on htpasswd auth and listens on every interface, so
it is never used. The registry listens on ``127.0.0.1:<SMEMU_REGISTRY_PORT>`` (default 4571)
only; Docker treats 127.0.0.0/8 as insecure by default, so no daemon configuration is needed.

Lifecycle:

* started lazily, the first time something needs it (a push, an ECR image to resolve);
* started in its own session, so it outlives the process that started it, and tracked by a
  pid file (``registry.json``): a restarted emulator, or the ``smemu`` CLI in another process,
  finds it answering on its port and re-uses it instead of starting a second one;
* a registry that already answers on the port (``registry:2`` from docker-compose, or one
  started for another ``SMEMU_HOME``) is used as it is, and never stopped by us;
* :meth:`LocalRegistry.stop` stops only a process this home's pid file names, after checking
  its command line is our ``docker-registry serve <our config>``.

Starts are serialised with a file lock, so the CLI and the server never start two.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.polling import poll_until

log = logging.getLogger(__name__)

DEFAULT_REGISTRY_PORT = 4571
REGISTRY_BINARIES = ("docker-registry", "registry")
"""Debian's package name first, then the upstream binary (as in the registry:2 image)."""
API_VERSION_HEADER = "Docker-Distribution-Api-Version"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
"""What we accept from ``/v2/<repo>/manifests/<ref>``; Docker pushes the first."""

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback traffic must never go through a proxy configured in the environment."""


class RegistryUnavailable(Exception):
    """The registry cannot be started or reached; the message says how to fix it."""


@dataclass(frozen=True)
class Manifest:
    """An image manifest as the registry stores it."""

    repository: str
    reference: str
    """The tag or digest it was asked for."""
    digest: str
    """``sha256:...`` of the manifest bytes: what ECR calls imageDigest."""
    media_type: str
    body: bytes
    """The manifest exactly as stored (its sha256 is ``digest``)."""

    @property
    def size(self) -> int:
        """Compressed size of the image (its layers), what ECR reports as imageSizeInBytes.

        For a manifest list (multi-platform image) ECR reports the largest member; we cannot see
        the members' layers from here without more requests, so the list's own size is used.
        """
        document = json.loads(self.body)
        layers = document.get("layers")
        if isinstance(layers, list):
            return int(sum(int(layer.get("size", 0)) for layer in layers))
        return len(self.body)


def registry_port(settings: Any) -> int:
    """The configured port (``SMEMU_REGISTRY_PORT``; the field may not exist in older settings)."""
    return int(getattr(settings, "registry_port", DEFAULT_REGISTRY_PORT) or DEFAULT_REGISTRY_PORT)


class LocalRegistry:
    """One registry on ``127.0.0.1:<port>`` with its state under ``<home>/registry``."""

    def __init__(self, home: Path, port: int = DEFAULT_REGISTRY_PORT, binary: str | None = None) -> None:
        self.port = port
        self.root = home / "registry"
        self.data_dir = self.root / "data"
        self.config_path = self.root / "config.yml"
        self.state_path = self.root / "registry.json"
        self.log_path = self.root / "registry.log"
        self._binary = binary
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> LocalRegistry:
        """The registry for these settings (``home`` and ``registry_port``)."""
        return cls(Path(settings.home), registry_port(settings))

    @property
    def address(self) -> str:
        """``host:port`` as Docker image references write it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the registry's HTTP API."""
        return f"http://{self.address}"

    # -- lifecycle ----------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Whether a Distribution registry answers ``GET /v2/`` on the port."""
        try:
            with _NO_PROXY.open(f"{self.url}/v2/", timeout=1.0) as response:
                return response.status == 200 and response.headers.get(API_VERSION_HEADER) == "registry/2.0"
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def ensure_running(self, timeout: float = 10.0) -> str:
        """Start the registry unless one answers already; returns its address.

        Raises :class:`RegistryUnavailable` naming the fix (install the package, free the port).
        """
        if self.healthy():
            return self.address
        with self._lock, _file_lock(self.root / "registry.lock"):
            if self.healthy():  # another process started it while we waited for the lock
                return self.address
            if _port_taken(self.port):
                raise RegistryUnavailable(
                    f"127.0.0.1:{self.port} is taken by something that is not an image registry; "
                    f"free it or choose another port with SMEMU_REGISTRY_PORT"
                )
            binary = self.binary()
            self._write_config()
            with self.log_path.open("ab") as log_file:
                child = subprocess.Popen(
                    [binary, "serve", str(self.config_path)],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    start_new_session=True,  # outlives us; a restarted emulator re-uses it
                )
            self._child = child
            self.state_path.write_text(json.dumps({
                "pid": child.pid, "port": self.port, "config": str(self.config_path), "binary": binary,
            }))
            if not poll_until(self.healthy, timeout, 0.02, give_up=lambda: child.poll() is not None):
                self._reap()
                raise RegistryUnavailable(
                    f"the image registry ({binary}) did not start on {self.address}; "
                    f"its log {self.log_path} ends with:\n{_tail(self.log_path)}"
                )
            log.info("image registry started on %s (pid %s, data in %s)", self.address, child.pid, self.data_dir)
        return self.address

    def binary(self) -> str:
        """The registry executable; raises :class:`RegistryUnavailable` with the install line."""
        if self._binary:
            return self._binary
        for name in REGISTRY_BINARIES:
            found = shutil.which(name)
            if found:
                return found
        raise RegistryUnavailable(
            "no image registry is installed: `sudo apt-get install -y docker-registry` (Debian/Ubuntu), "
            f"or run one on 127.0.0.1:{self.port} yourself, e.g. "
            f"`docker run -d -p 127.0.0.1:{self.port}:5000 registry:2`"
        )

    def owned_pid(self) -> int | None:
        """The pid of the registry this home started, if it still runs as ours."""
        try:
            state = json.loads(self.state_path.read_text())
            pid = int(state["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if str(self.config_path).encode() in cmdline and b"serve" in cmdline:
            return pid
        return None

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the registry this home started (never a foreign one); True when one was stopped."""
        with self._lock:
            pid = self.owned_pid()
            if pid is None:
                self._reap()
                return False
            os.kill(pid, signal.SIGTERM)
            poll_until(lambda: not _alive(pid, self._child), timeout)
            if _alive(pid, self._child):
                os.kill(pid, signal.SIGKILL)
            self._reap()
            self.state_path.unlink(missing_ok=True)
            return True

    def _reap(self) -> None:
        """Collect our child's exit status so it does not linger as a zombie."""
        if self._child is not None:
            try:
                self._child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child = None

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no YAML library needed, and paths with odd characters stay quoted.
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.address, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    # -- the registry's HTTP API (read side) -------------------------------------------------------

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest of ``repository:reference`` (a tag or ``sha256:`` digest); None if absent."""
        request = urllib.request.Request(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        try:
            with _NO_PROXY.open(request, timeout=10) as response:
                body = response.read()
                digest = response.headers.get("Docker-Content-Digest") or ""
                media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RegistryUnavailable(f"the registry answered {exc.code} for {repository}:{reference}") from exc
        except (OSError, urllib.error.URLError) as exc:
            raise RegistryUnavailable(f"cannot reach the image registry on {self.address}: {exc}") from exc
        if not digest:
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        media_type = media_type or json.loads(body).get("mediaType", MANIFEST_TYPES[0])
        return Manifest(repository, reference, digest, media_type, body)

    def repositories(self) -> list[str]:
        """Every repository in the registry (``/v2/_catalog``, all pages)."""
        return self._paged("/v2/_catalog?n=1000", "repositories")

    def tags(self, repository: str) -> list[str]:
        """Every tag of a repository; empty when the repository does not exist."""
        return self._paged(f"/v2/{repository}/tags/list?n=1000", "tags")

    def _paged(self, path: str, key: str) -> list[str]:
        found: list[str] = []
        next_path: str | None = path
        while next_path:
            try:
                with _NO_PROXY.open(self.url + next_path, timeout=10) as response:
                    found.extend(json.loads(response.read()).get(key) or [])
                    link = response.headers.get("Link") or ""
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return found
                raise RegistryUnavailable(f"the registry answered {exc.code} for {next_path}") from exc
            except (OSError, urllib.error.URLError) as exc:
                raise RegistryUnavailable(f"cannot reach the image registry on {self.address}: {exc}") from exc
            next_path = link[1:link.index(">")] if link.startswith("<") and ">" in link else None
        return found


_registries: dict[tuple[str, int], LocalRegistry] = {}
_registries_lock = threading.Lock()


def get_registry(settings: Any) -> LocalRegistry:
    """The process's :class:`LocalRegistry` for these settings (one object per home and port)."""
    key = (str(Path(settings.home).resolve()), registry_port(settings))
    with _registries_lock:
        registry = _registries.get(key)
        if registry is None:
            registry = _registries[key] = LocalRegistry.from_settings(settings)
        return registry


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on a file, held across processes for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None and child.pid == pid:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:  # a zombie (exited, not yet reaped by its parent) no longer serves
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return False


def _tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return "(no log)"
