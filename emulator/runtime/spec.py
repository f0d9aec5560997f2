"""What the platform asks a runtime backend to run, in the platform's own terms.

These types carry no Docker concepts beyond what any container runtime has: an image, a
command, environment, folders staged on this machine to appear inside the container, resource
limits, GPU devices, a private network of peers addressed by host name, and ports to expose
on loopback. A Kubernetes backend could implement the same protocol with Pods, init
containers and a headless Service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol


class RuntimeError_(Exception):
    """Base of the runtime's errors; messages are meant for FailureReason as they are."""


class ImageNotFound(RuntimeError_):
    """The image exists neither locally nor in the local registry."""

    def reason(self, kind: str, role_arn: str | None = None, variant: str | None = None) -> str:
        """The text a job's FailureReason or an endpoint's gives for it (``emulator.images.MissingImage``
        words it as SageMaker does; a backend's own refusal says it as it is)."""
        return str(self)


class ContainerNotFound(RuntimeError_):
    """A container the platform knew about is gone (removed by hand, engine reset)."""


class EngineUnavailable(RuntimeError_):
    """The container engine cannot be reached."""


class GpuRequestFailed(RuntimeError_):
    """The engine refused to give a container the GPUs it was asked for (no NVIDIA toolkit, ...)."""


@dataclass(frozen=True)
class StagedFolder:
    """A folder prepared on this machine that appears at ``target`` inside the container."""

    source: Path | None
    """The folder on this machine; None (only with ``private``) starts the folder empty."""
    target: str
    read_only: bool = False
    private: bool = False
    """The container gets its own writable copy of ``source`` instead of this machine's folder.

    What the container writes there never lands on this machine (so never as root-owned
    files in the user's folders); the platform reads it back with
    :meth:`RuntimeBackend.copy_out`. Docker: an anonymous volume seeded through the archive
    API; Kubernetes: an emptyDir filled by an init container.
    """


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a job or endpoint."""

    name: str
    """Unique name, e.g. ``smemu-train-<job>-algo-1``; reused names are replaced."""
    image: str
    command: list[str] | None = None
    """Arguments (``["train"]``, ``["serve"]``) or the request's ContainerArguments."""
    entrypoint: list[str] | None = None
    """The request's ContainerEntrypoint; None keeps the image's own."""
    environment: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None
    """``algo-1`` ... on a job network; also added as a network alias."""
    network: str | None = None
    """Name of a network made with :meth:`RuntimeBackend.create_network`; None: the default bridge."""
    network_isolated: bool = False
    """EnableNetworkIsolation: no network at all, not even the default bridge."""
    folders: list[StagedFolder] = field(default_factory=list)
    memory_bytes: int | None = None
    """Hard memory limit (the instance type's memory); exceeding it OOM-kills the container."""
    cpus: float | None = None
    gpu_device_ids: list[str] | None = None
    """GPU device ids to pass through the NVIDIA runtime (``["all"]``: every GPU); None or empty:
    no GPU, and a CUDA image's own ``NVIDIA_VISIBLE_DEVICES=all`` is overridden so it gets none."""
    expose_ports: list[int] = field(default_factory=list)
    """Container ports to publish on 127.0.0.1 at a free host port."""
    labels: dict[str, str] = field(default_factory=dict)
    """Must include ``smemu.kind`` and ``smemu.name`` so the platform can find it after a restart."""
    user: str | None = None
    """Run as this uid:gid (None: the image's user)."""
    shm_size_bytes: int | None = None


@dataclass(frozen=True)
class ContainerExit:
    """How a container ended."""

    exit_code: int
    oom_killed: bool = False


@dataclass(frozen=True)
class ContainerInfo:
    """A container found by label (for re-adoption and pruning)."""

    id: str
    name: str
    labels: dict[str, str]
    running: bool
    exit_code: int | None = None


class RuntimeBackend(Protocol):
    """How containers are run. All calls block; callers use threads for concurrency.

    The platform's services are given one (``Platform.backend``) and never look past it:
    every backend (Docker, Kubernetes, the lazy one, the unit tests' fakes) implements every
    method (tests/unit/test_runtime_protocol.py checks it).
    """

    def ensure_image(self, image: str) -> str:
        """Resolve an image reference to one runnable here (never pulls from the internet).

        Returns the reference to run; raises :class:`ImageNotFound` naming the image.
        """

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> None:
        """A private network on which containers reach each other by host name.

        ``internal``: the containers reach each other and nothing else (network isolation of
        a multi-host job).
        """

    def remove_network(self, name: str) -> None:
        """Remove a network (missing is fine)."""

    def start(self, spec: ContainerSpec) -> str:
        """Create and start a container; returns its id."""

    def published_port(self, container_id: str, port: int) -> tuple[str, int]:
        """Host address and port where a container port was published."""

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerExit | None:
        """Block until the container exits; None when ``timeout`` passed first."""

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_seconds`` if still running."""

    def kill(self, container_id: str) -> None:
        """SIGKILL at once (missing is fine)."""

    def remove(self, container_id: str) -> None:
        """Remove the container (missing is fine)."""

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[float, str]]:
        """``(epoch seconds, line)`` of the container's stdout and stderr, in order."""

    def find(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Containers carrying all of these labels, running or not."""

    def is_running(self, container_id: str) -> bool:
        """Whether the container exists and runs."""

    def copy_out(self, container_id: str, path: str, dest: Path) -> bool:
        """Copy the folder ``path`` of a (running or exited) container into ``dest``.

        ``dest`` is created; the files belong to the emulator's user. False when the container
        has no such path.
        """

    def remove_labelled(self, labels: dict[str, str]) -> int:
        """Remove every container, network and volume carrying all of these labels.

        Returns how many objects were removed; used to clean up after a crash or restart.
        """

    def gpus_available(self) -> bool:
        """Whether containers can be given GPUs here (an NVIDIA runtime is installed)."""

    def gpu_devices(self) -> list[str] | None:
        """Ids of the GPUs containers can be given here (``"0"``, ``"1"``, ...).

        None: no GPU runtime; ``["all"]``: a GPU runtime whose devices cannot be counted from
        here; ``[]``: a GPU runtime and no GPU. ``emulator.gpus`` splits them between hosts.
        """

    def network_address(self, container_id: str, port: int) -> tuple[str, int] | None:
        """The container's own address for ``port`` when this machine might reach it directly
        (skipping a published port's proxy), else None: use :meth:`published_port`.

        Whether it is reachable is for the caller to find out (emulator/hosting/addresses.py).
        """

    def container_subnets(self, home: str) -> list[str]:
        """Where this home's containers reach the container gateway from (CIDRs it admits)."""

    def close(self) -> None:
        """Close the connections to the engine or cluster."""

    def copy_in(self, container_id: str, path: str, source: Path | None) -> None:
        """Make ``path`` in a running container hold what ``source`` on this machine holds now.

        For folders that change after the container started: ``path`` lies in a folder staged
        from this machine (not ``private``) and ``source`` is the same place under that
        folder's source, which the platform has just changed (a multi-model endpoint's model
        extracted or removed). ``None``: the platform removed it; ``path`` goes too. Docker:
        nothing to do, the folder is bind-mounted. A backend that copies folders into its
        containers (Kubernetes) copies it again, before the platform tells the container.
        """


class LocalEngine(RuntimeBackend, Protocol):
    """The container engine of this machine: a runtime backend, plus what only it has.

    The user's images live here (built with ``docker build``), pushes to the emulator's
    registry leave from here, and the container gateway's network is one of its networks,
    whichever backend runs the containers (SMEMU_RUNTIME). Implemented by
    :class:`~emulator.runtime.docker_backend.DockerBackend`; ``emulator.images``, ``emulator.ecr``,
    the doctor and the server reach the engine only through it.
    """

    def image_id(self, image: str) -> str | None:
        """The id of the local image of exactly this name; None when there is none (or the name is malformed)."""

    def pull_image(self, reference: str) -> None:
        """Pull ``reference`` from a registry on this machine (the emulator's); RuntimeError_ saying why not."""

    def push_image(self, local_image: str, target: str, tag: str,
                   progress: Callable[[str], None] | None = None) -> str:
        """Tag ``local_image`` as ``target:tag`` and push it; returns the pushed digest ("" when unreported).

        Raises :class:`ImageNotFound` when there is no such local image, RuntimeError_ with the
        engine's message when the push fails. ``progress`` gets one line per layer event.
        """

    def login(self, registry: str, username: str, password: str) -> str:
        """Store credentials for ``registry`` with the engine; returns its status line."""

    def engine_version(self) -> str:
        """The engine's version in words (``Docker 27.1 API 1.46``); EngineUnavailable when it does not answer."""

    def ensure_gateway_network(self) -> None:
        """Create the shared network that puts the container gateway on-link, unless it exists."""

    def watch_gateway_network(self) -> Callable[[], None]:
        """Recreate the shared network as soon as it is removed; returns a function that stops watching."""
