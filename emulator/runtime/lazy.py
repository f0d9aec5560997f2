"""A runtime backend that connects on first use, so the emulator starts without an engine.

Services are given a backend when they are built, before anyone knows whether Docker is up.
:class:`LazyBackend` implements the whole :class:`~emulator.runtime.spec.RuntimeBackend`
protocol by asking a factory for the real backend at the first call (and again after a failed
connection), so a job submitted while the engine is down fails with the engine's reason, and
the first job after it comes up connects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from emulator.runtime.spec import ContainerExit, ContainerInfo, ContainerSpec, RuntimeBackend


class LazyBackend:
    """``RuntimeBackend`` over the backend ``factory`` returns, made on first use."""

    def __init__(self, factory: Callable[[], RuntimeBackend]) -> None:
        self._factory = factory
        self._backend: RuntimeBackend | None = None
        self._lock = threading.Lock()

    def _real(self) -> RuntimeBackend:
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = self._factory()
        return self._backend

    def ensure_image(self, image: str) -> str:
        return self._real().ensure_image(image)

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> None:
        self._real().create_network(name, labels, internal)

    def remove_network(self, name: str) -> None:
        self._real().remove_network(name)

    def start(self, spec: ContainerSpec) -> str:
        return self._real().start(spec)

    def published_port(self, container_id: str, port: int) -> tuple[str, int]:
        return self._real().published_port(container_id, port)

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerExit | None:
        return self._real().wait(container_id, timeout)

    def stop(self, container_id: str, grace_seconds: float) -> None:
        self._real().stop(container_id, grace_seconds)

    def kill(self, container_id: str) -> None:
        self._real().kill(container_id)

    def remove(self, container_id: str) -> None:
        self._real().remove(container_id)

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[float, str]]:
        return self._real().logs(container_id, follow)

    def find(self, labels: dict[str, str]) -> list[ContainerInfo]:
        return self._real().find(labels)

    def is_running(self, container_id: str) -> bool:
        return self._real().is_running(container_id)

    def copy_out(self, container_id: str, path: str, dest: Path) -> bool:
        return self._real().copy_out(container_id, path, dest)

    def remove_labelled(self, labels: dict[str, str]) -> int:
        return self._real().remove_labelled(labels)

    def gpus_available(self) -> bool:
        return self._real().gpus_available()

    def gpu_devices(self) -> list[str] | None:
        return self._real().gpu_devices()

    def copy_in(self, container_id: str, path: str, source: Path | None) -> None:
        return self._real().copy_in(container_id, path, source)
