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

from emulator.runtime.spec import ContainerExit, ContainerInfo, ContainerSpec, LocalEngine, RuntimeBackend


class LazyBackend:
    """``RuntimeBackend`` over the backend ``factory`` returns, made on first use."""

    def __init__(self, factory: Callable[[], RuntimeBackend]) -> None:
        self._factory = factory
        self._backend: RuntimeBackend | None = None
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        """Whether the real backend was made (closing an unconnected one connects nothing)."""
        return self._backend is not None

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

    def network_address(self, container_id: str, port: int) -> tuple[str, int] | None:
        return self._real().network_address(container_id, port)

    def container_subnets(self, home: str) -> list[str]:
        return self._real().container_subnets(home)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()

    def copy_in(self, container_id: str, path: str, source: Path | None) -> None:
        return self._real().copy_in(container_id, path, source)


class LazyEngine(LazyBackend):
    """``LocalEngine`` over the engine ``factory`` returns, made on first use."""

    def __init__(self, factory: Callable[[], LocalEngine]) -> None:
        super().__init__(factory)

    def _engine(self) -> LocalEngine:
        return self._real()  # type: ignore[return-value]  # made by a LocalEngine factory

    def image_id(self, image: str) -> str | None:
        return self._engine().image_id(image)

    def pull_image(self, reference: str) -> None:
        self._engine().pull_image(reference)

    def push_image(self, local_image: str, target: str, tag: str,
                   progress: Callable[[str], None] | None = None) -> str:
        return self._engine().push_image(local_image, target, tag, progress)

    def login(self, registry: str, username: str, password: str) -> str:
        return self._engine().login(registry, username, password)

    def engine_version(self) -> str:
        return self._engine().engine_version()

    def ensure_gateway_network(self) -> None:
        self._engine().ensure_gateway_network()

    def watch_gateway_network(self) -> Callable[[], None]:
        return self._engine().watch_gateway_network()
