"""In-process stand-ins for the runtime backend, S3 and the platform, for training unit tests.

A :class:`FakeTrainingBackend` "container" is a thread that prints lines, sleeps and exits as
its environment says (the request's ``Environment``), so the real service, runner, attempt,
lifecycle, artifacts and logs code run end to end without Docker::

    FAKE_LINES      lines to print, separated by '|'
    FAKE_SECONDS    how long it runs after printing (default 0)
    FAKE_EXIT       exit code (default 0)
    FAKE_OOM        "1": killed by the OOM killer (exit 137)
    FAKE_FAILURE    text written to /opt/ml/output/failure
    FAKE_IGNORE_TERM "1": SIGTERM is ignored, only SIGKILL after the grace ends it
    FAKE_CHECKPOINT "1": writes /opt/ml/checkpoints/step (counting up across attempts)
"""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from emulator.config import Settings
from emulator.polling import poll_until
from emulator.runtime.spec import (
    ContainerExit,
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    ImageNotFound,
)
from emulator.store import Store
from tests.unit.runtime_fakes import FakeBackendBase


@dataclass
class FakeContainer:
    spec: ContainerSpec
    lines: list[tuple[float, str]] = field(default_factory=list)
    exit: ContainerExit | None = None
    done: threading.Event = field(default_factory=threading.Event)
    term: threading.Event = field(default_factory=threading.Event)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """Container folder -> relative path -> content."""


class FakeTrainingBackend(FakeBackendBase):
    """``RuntimeBackend`` whose containers are threads following FAKE_* switches."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.removed_labels: list[dict[str, str]] = []
        self.stops: list[tuple[str, float]] = []
        self.started: list[ContainerSpec] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def ensure_image(self, image: str) -> str:
        if "missing" in image:
            raise ImageNotFound(f"The image '{image}' does not exist on this machine")
        return image

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> None:
        self.networks[name] = {"labels": labels, "internal": internal}

    def remove_network(self, name: str) -> None:
        self.networks.pop(name, None)

    def start(self, spec: ContainerSpec) -> str:
        container_id = f"fake{next(self._ids)}"
        self.started.append(spec)
        container = FakeContainer(spec)
        for folder in spec.folders:
            if folder.private:
                seeded = {}
                if folder.source is not None:
                    seeded = {p.relative_to(folder.source).as_posix(): p.read_bytes()
                              for p in folder.source.rglob("*") if p.is_file()}
                container.files[folder.target] = seeded
        with self._lock:
            self.containers[container_id] = container
        threading.Thread(target=self._run, args=(container,), daemon=True).start()
        return container_id

    def _run(self, container: FakeContainer) -> None:
        env = container.spec.environment
        for line in filter(None, env.get("FAKE_LINES", "").split("|")):
            container.lines.append((time.time(), line))
        if env.get("FAKE_CHECKPOINT") == "1":
            ckpt = container.files.setdefault("/opt/ml/checkpoints", {})
            ckpt["step"] = str(int(ckpt.get("step", b"0")) + 1).encode()
        container.files.setdefault("/opt/ml/model", {})["model.txt"] = container.spec.hostname.encode() \
            if container.spec.hostname else b"model"
        if env.get("FAKE_FAILURE"):
            container.files.setdefault("/opt/ml/output", {})["failure"] = env["FAKE_FAILURE"].encode()
        if container.term.wait(float(env.get("FAKE_SECONDS", "0"))):
            if env.get("FAKE_IGNORE_TERM") != "1":
                container.files["/opt/ml/model"]["terminated"] = b"yes"
                self._exit(container, 0)
            return
        if env.get("FAKE_OOM") == "1":
            self._exit(container, 137, oom=True)
        else:
            self._exit(container, int(env.get("FAKE_EXIT", "0")))

    @staticmethod
    def _exit(container: FakeContainer, code: int, oom: bool = False) -> None:
        if container.exit is None:
            container.exit = ContainerExit(exit_code=code, oom_killed=oom)
            container.done.set()

    def _get(self, container_id: str) -> FakeContainer:
        with self._lock:
            container = self.containers.get(container_id)
        if container is None:
            raise ContainerNotFound(container_id)
        return container

    def published_port(self, container_id: str, port: int) -> tuple[str, int]:
        raise NotImplementedError

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerExit | None:
        container = self._get(container_id)
        return container.exit if container.done.wait(timeout) else None

    def stop(self, container_id: str, grace_seconds: float) -> None:
        self.stops.append((container_id, grace_seconds))
        container = self._get(container_id)
        container.term.set()
        if not container.done.wait(grace_seconds):
            self._exit(container, 137)

    def kill(self, container_id: str) -> None:
        try:
            container = self._get(container_id)
        except ContainerNotFound:
            return
        container.term.set()
        self._exit(container, 137)

    def remove(self, container_id: str) -> None:
        with self._lock:
            container = self.containers.pop(container_id, None)
        if container is not None:
            self._exit(container, 137)

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[float, str]]:
        container = self._get(container_id)
        sent = 0
        while True:
            while sent < len(container.lines):
                yield container.lines[sent]
                sent += 1
            if (not follow or container.done.wait(0.01)) and sent >= len(container.lines):
                return

    def find(self, labels: dict[str, str]) -> list[ContainerInfo]:
        with self._lock:
            items = list(self.containers.items())
        return [ContainerInfo(cid, c.spec.name, c.spec.labels, c.exit is None) for cid, c in items
                if labels.items() <= c.spec.labels.items()]

    def is_running(self, container_id: str) -> bool:
        try:
            return self._get(container_id).exit is None
        except ContainerNotFound:
            return False

    def copy_out(self, container_id: str, path: str, dest: Path) -> bool:
        try:
            container = self._get(container_id)
        except ContainerNotFound:
            return False
        found = {k: v for folder, files in container.files.items() if folder == path or folder.startswith(path + "/")
                 for k, v in ((f"{folder[len(path):].strip('/')}/{name}".strip("/"), data)
                              for name, data in files.items())}
        if path not in container.files and not found:
            return False
        dest.mkdir(parents=True, exist_ok=True)
        for relative, data in found.items():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            (dest / relative).write_bytes(data)
        return True

    def remove_labelled(self, labels: dict[str, str]) -> int:
        self.removed_labels.append(dict(labels))
        found = self.find(labels)
        for info in found:
            self.remove(info.id)
        for name in [n for n, net in self.networks.items() if labels.items() <= net["labels"].items()]:
            self.networks.pop(name)
        return len(found)

    def copy_in(self, container_id: str, path: str, source: Path | None) -> None:
        """Put ``source``'s files (or nothing) at ``path`` in the fake container's files."""
        container = self._get(container_id)
        for folder in [f for f in container.files if f == path or f.startswith(path + "/")]:
            container.files.pop(folder)
        if source is not None:
            for file in (p for p in sorted(source.rglob("*")) if p.is_file()):
                relative = file.relative_to(source)
                folder = "/".join([path, *relative.parent.parts]) if relative.parent.parts else path
                container.files.setdefault(folder, {})[file.name] = file.read_bytes()


class FakeS3:
    """The few S3 calls the training code makes, over a dict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def upload_file(self, filename: str, bucket: str, key: str, Config: Any = None) -> None:
        self.objects[(bucket, key)] = Path(filename).read_bytes()

    def download_file(self, bucket: str, key: str, filename: str, Config: Any = None) -> None:
        Path(filename).write_bytes(self.objects[(bucket, key)])

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        self.objects[(Bucket, Key)] = Body

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}},
                              "GetObject")
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str = "") -> list[dict[str, Any]]:
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
        return [{"Contents": [{"Key": k, "Size": len(self.objects[(Bucket, k)])} for k in keys]}]


@dataclass
class FakeS3Store:
    fake: FakeS3

    def client(self) -> FakeS3:
        return self.fake

    def make_durable(self) -> None:
        pass


class FakePlatform:
    """What TrainingService reads from the platform."""

    def __init__(self, home: Path, backend: FakeTrainingBackend, store: Store | None = None) -> None:
        self.settings = Settings(home=home, port=1)
        self.store = store or Store(home / "state" / "resources.db")
        self.s3 = FakeS3Store(FakeS3())
        self.backend = backend
        self.roles_checked: list[tuple[str | None, str]] = []

    def check_role(self, role_arn: str | None, operation: str, ctx: Any, source_arn: str | None = None) -> None:
        """Records the check; the real one is covered by tests/unit/test_iam.py."""
        self.roles_checked.append((role_arn, operation))

    def resolve_image(self, image: str) -> str:
        """No image policy: the backend's exact lookup (emulator/images.py is tested on its own)."""
        return self.backend.ensure_image(image)

    def role_s3_client(self, role_arn: str | None, ctx: Any, default: Any) -> Any:
        """Strict mode off: the platform's own client."""
        return default


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``condition`` until truthy; fail after ``timeout`` seconds."""
    value = poll_until(condition, timeout, interval)
    if not value:
        raise AssertionError(f"condition not met within {timeout} s")
    return value
