"""MinIO and the emulator as containers or processes, for test sessions (no pytest here).

testcontainers runs MinIO (``smemu/minio``, built by scripts/build-minio) and the emulator's
own image (the repository's Dockerfile) from **local** images; nothing is pulled. Ryuk, the
testcontainers reaper, needs an image that cannot be pulled without a registry, so unless the
user chose (``TESTCONTAINERS_RYUK_DISABLED``) it is disabled when its image is not local, and
containers carry ``smemu.pytest.owner=<host>:<pid>`` so a later session removes those of a
crashed one. :class:`MinioProcess` runs the MinIO binary as a plain process instead.
The fixtures that use all this are in ``emulator/pytest_plugin.py``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.objectstore.minio import answers_ok
from emulator.polling import poll_until

log = logging.getLogger(__name__)

MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
"""The MinIO release (Go module version) scripts/build-minio and docker-compose.yml pin."""
DEFAULT_MINIO_IMAGE = f"smemu/minio:{MINIO_VERSION}"
DEFAULT_EMULATOR_IMAGE = "smemu/emulator:latest"
DEFAULT_BASE_IMAGE = "smemu-base/python:3.11"
DEFAULT_ACCESS_KEY = "minioadmin"
DEFAULT_SECRET_KEY = "minioadmin"
OWNER_LABEL = "smemu.pytest.owner"
KIND_LABEL = "smemu.kind"
START_TIMEOUT = float(os.environ.get("SMEMU_PYTEST_START_TIMEOUT", "120"))

# -- testcontainers configuration ------------------------------------------------------------


def _local_engine() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith(("unix://", "npipe://"))


def testcontainers_environment_defaults() -> None:
    """Env defaults for testcontainers, set before it is imported (it reads some at import)."""
    if _local_engine():
        os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
        os.environ.setdefault("TC_HOST", "127.0.0.1")


def owner_id() -> str:
    """``<host>:<pid>`` of this test process, the value of :data:`OWNER_LABEL`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def docker_client() -> Any:
    """A docker-py client (emulator/runtime/docker_client.py: the one module that makes them)."""
    from emulator.runtime.docker_client import docker_client as make_client

    return make_client()


def image_present(client: Any, image: str) -> bool:
    from emulator.runtime.docker_client import docker_errors

    try:
        client.images.get(image)
        return True
    except docker_errors.ImageNotFound:
        return False


def configure_testcontainers(client: Any | None = None) -> None:
    """Settle the reaper and the connection mode on testcontainers' configuration object.

    Ryuk stays on only when the user asked for it or its image is present locally (it cannot
    be pulled here); otherwise it is disabled and this plugin's finalizers and owner sweep do
    its job.
    """
    from testcontainers.core.config import ConnectionMode
    from testcontainers.core.config import testcontainers_config as config

    if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ and "ryuk.disabled" not in config.tc_properties:
        from emulator.runtime.docker_client import docker_errors

        try:
            present = image_present(client or docker_client(), config.ryuk_image)
        except docker_errors.DockerException:  # no engine: starting anything will fail anyway
            present = False
        if not present:
            config.ryuk_disabled = True
    if _local_engine():
        if config.connection_mode_override is None:
            config.connection_mode_override = ConnectionMode(os.environ["TESTCONTAINERS_CONNECTION_MODE"])
        if not config.tc_host_override:
            config.tc_host_override = os.environ["TC_HOST"]


def reap_orphans(client: Any) -> int:
    """Remove containers this plugin started in test processes on this host that are gone."""
    from emulator.runtime.docker_client import docker_errors

    host = socket.gethostname()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            container.remove(force=True, v=True)
            removed += 1
        except docker_errors.APIError as exc:  # pragma: no cover - raced with another reaper
            log.debug("could not remove orphan %s: %s", container.short_id, exc)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- locating and building images ------------------------------------------------------------


def project_root(rootpath: Path) -> Path | None:
    """The root of a sagemaker-emulator checkout when ``rootpath`` (pytest's) is one, else None."""
    root = Path(rootpath)
    if (root / "emulator" / "pytest_plugin.py").is_file() and (root / "Dockerfile").is_file():
        return root
    return None


def ensure_minio_image(client: Any, image: str, root: Path | None) -> str | None:
    """The MinIO image, built with ``scripts/build-minio`` in a checkout; None with the reason logged."""
    if image_present(client, image):
        return image
    script = root / "scripts" / "build-minio" if root else None
    if script is None or not script.is_file():
        return None
    env = dict(os.environ)
    if image != DEFAULT_MINIO_IMAGE:
        env["SMEMU_MINIO_IMAGE"] = image
    subprocess.run([str(script)], check=False, env=env, stdin=subprocess.DEVNULL)
    return image if image_present(client, image) else None


def build_emulator_image(client: Any, image: str, root: Path, base_image: str | None = None) -> None:
    """Build the repository's Dockerfile as ``image`` (cached layers make a rebuild seconds).

    The base is ``python:3.11-slim`` where it is present locally, else the offline base image
    (nothing is pulled); ``--network host`` lets pip reach PyPI through the host's proxy.
    """
    if base_image is None:
        offline = os.environ.get("SMEMU_BASE_IMAGE", DEFAULT_BASE_IMAGE)
        base_image = "python:3.11-slim" if image_present(client, "python:3.11-slim") else offline
    if not image_present(client, base_image):
        raise RuntimeError(f"base image {base_image} is missing (scripts/install-docker builds it offline)")
    client.images.build(path=str(root), tag=image, buildargs={"BASE_IMAGE": base_image},
                        network_mode="host", rm=True, forcerm=True, pull=False)


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Endpoint:
    """An S3 store: where it is and how to sign for it."""

    url: str
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    region: str = "us-east-1"

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for the store (path-style addressing, as MinIO expects)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(  # type: ignore[call-overload,no-any-return]
            "s3", endpoint_url=self.url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def emulator_environment(self) -> dict[str, str]:
        """The ``SMEMU_*`` variables that make an emulator use this store."""
        return {"SMEMU_S3_ENDPOINT": self.url, "SMEMU_S3_ACCESS_KEY": self.access_key,
                "SMEMU_S3_SECRET_KEY": self.secret_key}


@dataclass
class EmulatorContainer:
    """The emulator running in a container on the host network."""

    url: str
    port: int
    home: Path
    container_id: str
    environment: dict[str, str] = field(default_factory=dict)

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client for ``service`` against the emulator (S3 goes to the external store when set)."""
        import boto3
        from botocore.config import Config

        endpoint = self.url
        key = secret = "test"
        if service == "s3" and self.environment.get("SMEMU_S3_ENDPOINT"):
            endpoint = self.environment["SMEMU_S3_ENDPOINT"]
            key = self.environment.get("SMEMU_S3_ACCESS_KEY", DEFAULT_ACCESS_KEY)
            secret = self.environment.get("SMEMU_S3_SECRET_KEY", DEFAULT_SECRET_KEY)
        return boto3.session.Session().client(  # type: ignore[call-overload]
            service, endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=key, aws_secret_access_key=secret, config=Config(**config),
        )

    def logs(self) -> str:
        """The container's output so far (for failure messages)."""
        return str(docker_client().containers.get(self.container_id).logs(tail=200).decode(errors="replace"))


# -- starting containers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _labels(kind: str) -> dict[str, str]:
    return {KIND_LABEL: kind, OWNER_LABEL: owner_id()}


def start_minio(image: str, access_key: str = DEFAULT_ACCESS_KEY,
                secret_key: str = DEFAULT_SECRET_KEY) -> tuple[Any, S3Endpoint]:
    """Start MinIO with testcontainers' MinioContainer from a local ``image``; returns (container, endpoint).

    The caller stops the container (``container.stop()``).
    """
    try:
        from testcontainers.community.minio import MinioContainer
    except ImportError as exc:  # the minio SDK (testcontainers[minio]) is missing
        raise RuntimeError(f"testcontainers' MinIO module cannot be imported ({exc}); "
                           "pip install 'testcontainers[minio]'") from exc
    container = MinioContainer(image=image, access_key=access_key, secret_key=secret_key)
    # The MINIO_ACCESS_KEY pair the module sets is deprecated in MinIO; set the current one too.
    container.with_env("MINIO_ROOT_USER", access_key).with_env("MINIO_ROOT_PASSWORD", secret_key)
    container.ports[str(container.port)] = ("127.0.0.1", None)  # type: ignore[assignment]  # loopback only
    container.with_kwargs(labels=_labels("minio"))
    try:
        container.start()
    except BaseException:
        stop_quietly(container)
        raise
    host = container.get_container_host_ip()
    port = container.get_exposed_port(container.port)
    return container, S3Endpoint(f"http://{host}:{port}", access_key, secret_key)


def minio_binary() -> Path | None:
    """A MinIO server binary on this machine: ``SMEMU_MINIO_BINARY``, scripts/build-minio's cache, or PATH."""
    candidates = [os.environ.get("SMEMU_MINIO_BINARY"),
                  str(Path(os.environ.get("SMEMU_CACHE", Path.home() / ".cache" / "smemu")) / "minio" / "minio"),
                  shutil.which("minio")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return Path(candidate)
    return None


class MinioProcess:
    """MinIO as a plain process on 127.0.0.1 (no Docker needed): ``with MinioProcess(binary) as s3: ...``."""

    def __init__(self, binary: Path, data_dir: Path | None = None, port: int | None = None,
                 access_key: str = DEFAULT_ACCESS_KEY, secret_key: str = DEFAULT_SECRET_KEY) -> None:
        self.binary = binary
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="smemu-minio-"))
        self.port = port or free_port()
        self.endpoint = S3Endpoint(f"http://127.0.0.1:{self.port}", access_key, secret_key)
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, timeout: float = 60.0) -> S3Endpoint:
        """Start the server and return once ``/minio/health/live`` answers 200."""
        env = {**os.environ, "MINIO_ROOT_USER": self.endpoint.access_key,
               "MINIO_ROOT_PASSWORD": self.endpoint.secret_key,
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off", "MINIO_CI_CD": "1"}
        console = free_port()
        with open(self._log, "wb") as log_file:
            self._process = subprocess.Popen(
                [str(self.binary), "server", str(self.data_dir), "--quiet",
                 "--address", f"127.0.0.1:{self.port}", "--console-address", f"127.0.0.1:{console}"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)
        process = self._process
        deadline = time.monotonic() + timeout
        if answers_ok(f"{self.endpoint.url}/minio/health/live",
                      lambda: process.poll() is not None or time.monotonic() > deadline, interval=0.1):
            return self.endpoint
        output = self._log.read_text(errors="replace")[-4000:]
        self.stop()
        raise RuntimeError(f"MinIO ({self.binary}) did not answer on {self.endpoint.url}:\n{output}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its data when it was ours."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._log.unlink(missing_ok=True)

    def __enter__(self) -> S3Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_quietly(container: Any) -> None:
    from emulator.runtime.docker_client import docker_errors

    try:
        container.stop()
    except docker_errors.DockerException as exc:
        log.debug("stopping %s: %s", getattr(container, "image", container), exc)


def _home_ids(home: Path) -> set[str]:
    """The ``smemu.home`` label values the emulator gives its containers for ``home``."""
    text = str(home.resolve()).encode()
    return {hashlib.sha1(text).hexdigest()[:12], hashlib.sha256(text).hexdigest()[:12]}


def remove_emulator_leftovers(client: Any, home: Path) -> int:
    """Remove what an emulator with this home left on the engine (endpoints, job networks)."""
    from emulator.runtime.docker_client import docker_errors

    removed = 0
    for home_id in _home_ids(home):
        selector = {"label": f"smemu.home={home_id}"}
        for container in client.containers.list(all=True, filters=selector):
            container.remove(force=True, v=True)
            removed += 1
        for network in client.networks.list(filters=selector):
            try:
                network.remove()
                removed += 1
            except docker_errors.APIError as exc:  # still in use by a container another fixture owns
                log.debug("network %s: %s", network.name, exc)
    return removed


def start_emulator(image: str, home: Path, environment: dict[str, str] | None = None,
                   port: int | None = None) -> tuple[Any, EmulatorContainer]:
    """Start the emulator image on the host network with the Docker socket mounted.

    ``home`` is mounted at the same path inside, so the folders the emulator stages are valid
    bind-mount sources for the host's engine. Returns (testcontainers container, handle) once
    the edge port answers; the caller stops the container.
    """
    from testcontainers.core.container import DockerContainer

    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {"SMEMU_HOME": str(home), "SMEMU_PORT": str(port), **(environment or {})}
    if "SMEMU_S3_ENDPOINT" not in env and "SMEMU_S3_STORE" not in env:
        env["SMEMU_S3_STORE"] = "memory"  # the image carries no MinIO binary; a test session needs no durable S3
    socket_path = os.environ.get("SMEMU_DOCKER_SOCKET", "/var/run/docker.sock")
    container = DockerContainer(image).with_command(["--host", "127.0.0.1", "--port", str(port)])
    for key, value in env.items():
        container.with_env(key, value)
    container.with_volume_mapping(socket_path, "/var/run/docker.sock", "rw")
    container.with_volume_mapping(str(home), str(home), "rw")
    # Host network: the emulator reaches the containers it starts at their 127.0.0.1 ports.
    container.with_kwargs(network_mode="host", network=None, labels=_labels("emulator"))
    try:
        container.start()
        url = f"http://127.0.0.1:{port}"
        _wait_for_http(url, container, START_TIMEOUT)
    except BaseException:
        stop_quietly(container)
        raise
    return container, EmulatorContainer(url, port, home, container.get_container_id(), env)


def _wait_for_http(url: str, container: Any, timeout: float) -> None:
    """Poll ``url`` until any HTTP answer; fail with the container's log after ``timeout``."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    wrapped = container.get_wrapped_container()

    def answered() -> bool:
        try:
            opener.open(url, timeout=2).close()
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            return False
        return True

    def ended() -> bool:
        wrapped.reload()
        return wrapped.status in ("exited", "dead")

    if not poll_until(answered, timeout, 0.1, give_up=ended):
        logs = wrapped.logs(tail=100).decode(errors="replace")
        raise RuntimeError(f"{url} did not answer within {timeout} s (container {wrapped.status}):\n{logs}")
