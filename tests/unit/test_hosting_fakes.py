"""In-process stand-ins for the runtime backend, S3 and the platform, for hosting unit tests.

``FakeBackend`` runs each "container" as a tiny HTTP server thread on a loopback port that
follows the serving contract (``/ping``, ``/invocations``, ``/invocations-response-stream``),
so the hosting service's real deployer, routing and invoke code run end to end without
Docker. Behaviour switches come from the container environment (``FAKE_EXIT``,
``FAKE_PING_FAIL``, ``FAKE_NAME``, ``SMEMU_SAMPLE_TRANSFORM``) and the request body
(``{"status": 500}``, ``{"sleep": 1}``), like the sample serving container.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from emulator.config import Settings
from emulator.polling import poll_until
from emulator.runtime.spec import ContainerExit, ContainerInfo, ContainerSpec, ImageNotFound, RuntimeError_
from emulator.store import Store
from tests.unit.runtime_fakes import FakeBackendBase


def _handler(spec: ContainerSpec, log: list[tuple[float, str]]) -> type[BaseHTTPRequestHandler]:
    env = spec.environment
    model_dir = spec.folders[0].source if spec.folders else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.append((time.time(), format % args))

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "application/json",
            extra: dict[str, str] | None = None,
        ) -> None:
            head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            for key, value in (extra or {}).items():
                head += f"{key}: {value}\r\n"
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wfile.write(head.encode() + b"\r\n" + body)

        def do_GET(self) -> None:
            healthy = env.get("FAKE_PING_FAIL") != "1"  # the environment dict may change while it runs
            self._send(200 if healthy else 503, b"{}")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            switches: dict[str, Any] = {}
            if body.startswith(b"{"):
                try:
                    switches = json.loads(body)
                except ValueError:
                    pass
            if "sleep" in switches:
                time.sleep(float(switches["sleep"]))
            attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
            extra = {"X-Amzn-SageMaker-Custom-Attributes": attributes} if attributes else {}
            if int(switches.get("status", 200)) != 200:
                self._send(int(switches["status"]), b'{"error": "asked to fail"}', extra=extra)
                return
            transform = env.get("SMEMU_SAMPLE_TRANSFORM")
            if self.path == "/invocations-response-stream":
                if env.get("FAKE_NO_STREAM_PATH") == "1":
                    self._send(404, b"no")
                    return
                head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                self.wfile.write(head.encode())
                for part in (b"one ", b"two ", b"three"):
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.flush()
                    time.sleep(0.01)
                self.wfile.write(b"0\r\n\r\n")
                return
            if transform == "upper":
                self._send(200, body.upper(), "text/upper", extra)
                return
            if transform == "reverse":
                self._send(200, body[::-1], self.headers.get("Accept") or "text/reversed", extra)
                return
            answer = {
                "name": env.get("FAKE_NAME"),
                "container": spec.labels.get("smemu.container"),
                "instance": spec.labels.get("smemu.instance"),
                "content_type": self.headers.get("Content-Type"),
                "accept": self.headers.get("Accept"),
                "custom_attributes": attributes,
                "inference_id": self.headers.get("X-Amzn-SageMaker-Inference-Id"),
                "model_files": sorted(p.name for p in model_dir.rglob("*") if p.is_file())
                if model_dir
                else [],
                "body": body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(answer).encode(), extra=extra)

    return Handler


@dataclass
class FakeContainer:
    """One fake container: an HTTP server thread, or an exit code."""

    id: str
    spec: ContainerSpec
    server: ThreadingHTTPServer | None = None
    running: bool = True
    exit_code: int | None = None
    log: list[tuple[float, str]] = field(default_factory=list)


class FakeBackend(FakeBackendBase):
    """A RuntimeBackend whose containers are threads in this process."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.started: list[ContainerSpec] = []
        self.refuse_starts = False
        """Set: start() fails as an engine that cannot create containers does."""
        self.networks: dict[str, dict[str, str]] = {}
        self.copied_in: list[tuple[str, str, Path | None]] = []
        """``copy_in`` calls: (container id, path, source or None)."""

    def ensure_image(self, image: str) -> str:
        if image.startswith("missing"):
            raise ImageNotFound(f"The image '{image}' does not exist on this machine")
        return image

    def start(self, spec: ContainerSpec) -> str:
        if self.refuse_starts:
            raise RuntimeError_("the engine refused to create the container (test switch)")
        container_id = f"fake{next(self._ids):08d}"
        container = FakeContainer(container_id, spec)
        self.started.append(spec)
        container.log.append((time.time(), f"starting {spec.name}"))
        if spec.environment.get("FAKE_EXIT") == "1":
            container.running, container.exit_code = False, 3
            container.log.append((time.time(), "fatal: asked to exit"))
        else:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(spec, container.log))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            container.server = server
        self.containers[container_id] = container
        return container_id

    def published_port(self, container_id: str, port: int) -> tuple[str, int]:
        server = self.containers[container_id].server
        if server is None:
            raise RuntimeError_(f"container {container_id} does not publish port {port}")
        return "127.0.0.1", int(server.server_address[1])

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerExit | None:
        container = self.containers.get(container_id)
        if container is None or container.running:
            return None
        return ContainerExit(container.exit_code or 0)

    def stop(self, container_id: str, grace_seconds: float) -> None:
        container = self.containers.get(container_id)
        if container is not None and container.server is not None and container.running:
            container.server.shutdown()
            container.server.server_close()
        if container is not None:
            container.running = False

    def kill(self, container_id: str) -> None:
        self.stop(container_id, 0)

    def remove(self, container_id: str) -> None:
        self.stop(container_id, 0)
        self.containers.pop(container_id, None)

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[float, str]]:
        container = self.containers.get(container_id)
        if container is None:
            return
        sent = 0
        while True:
            while sent < len(container.log):
                yield container.log[sent]
                sent += 1
            if not follow or not container.running or container_id not in self.containers:
                return
            time.sleep(0.02)

    def find(self, labels: dict[str, str]) -> list[ContainerInfo]:
        return [
            ContainerInfo(c.id, c.spec.name, dict(c.spec.labels), c.running, c.exit_code)
            for c in self.containers.values()
            if all(c.spec.labels.get(k) == v for k, v in labels.items())
        ]

    def is_running(self, container_id: str) -> bool:
        container = self.containers.get(container_id)
        return container is not None and container.running

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> None:
        self.networks[name] = dict(labels)

    def remove_network(self, name: str) -> None:
        self.networks.pop(name, None)

    def copy_out(self, container_id: str, path: str, dest: Path) -> bool:
        return False  # endpoint containers write nothing the platform reads back

    def remove_labelled(self, labels: dict[str, str]) -> int:
        found = self.find(labels)
        for info in found:
            self.remove(info.id)
        return len(found)

    def copy_in(self, container_id: str, path: str, source: Path | None) -> None:
        """Record the copy (the fake containers read this machine's folders, as bind mounts do)."""
        self.copied_in.append((container_id, path, source))

    def running_for(self, endpoint: str) -> list[FakeContainer]:
        """The fake containers of an endpoint that still run."""
        return [
            c for c in self.containers.values() if c.spec.labels.get("smemu.name") == endpoint and c.running
        ]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            data, self.data = self.data, b""
            return data
        data, self.data = self.data[:size], self.data[size:]
        return data

    def close(self) -> None:
        pass


class FakeS3:
    """The handful of S3 calls hosting makes, over a dict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[(Bucket, Key)] = Body
        return {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "missing"}}, "GetObject")
        return {"Body": _Body(self.objects[(Bucket, Key)])}

    def list_objects_v2(self, Bucket: str, Prefix: str = "", MaxKeys: int = 1000) -> dict[str, Any]:
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))[:MaxKeys]
        return {"KeyCount": len(keys), "Contents": [{"Key": k} for k in keys]}

    def get_paginator(self, _name: str) -> Any:
        s3 = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [s3.list_objects_v2(Bucket, Prefix)]

        return Paginator()


class FakeS3Store:
    """Stands in for emulator.s3.S3Store."""

    def __init__(self, s3: FakeS3) -> None:
        self._s3 = s3

    def client(self) -> FakeS3:
        return self._s3

    def make_durable(self) -> None:
        pass


class FakePlatform:
    """The parts of emulator.platform.Platform that HostingService uses."""

    def __init__(self, home: Path, s3: FakeS3 | None = None, **settings: Any) -> None:
        self.settings = Settings(home=home, port=1, **settings)
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.state_dir / "resources.db")
        self.s3 = FakeS3Store(s3 or FakeS3())
        self.backend: Any = None
        """Set by the harness to the backend the service is given (the image policy's lookup)."""

    def resolve_image(self, image: str) -> str:
        """No image policy: the backend's exact lookup (emulator/images.py is tested on its own)."""
        return str(self.backend.ensure_image(image))

    def check_role(self, role_arn: str | None, operation: str, ctx: Any, source_arn: str | None = None) -> None:
        """Every role is fine (the real check is covered by tests/unit/test_iam.py)."""

    def container_environment(self, role_arn: str | None, region: str | None = None) -> dict[str, str]:
        """No container gateway: containers get no AWS variables."""
        return {}


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition()`` until it returns something truthy, or fail after ``timeout``."""
    value = poll_until(condition, timeout, interval)
    if not value:
        raise AssertionError(f"condition not met within {timeout} s")
    return value
