"""Containers on Docker: :class:`DockerBackend` implements ``RuntimeBackend`` and ``LocalEngine``.

Rules this module keeps (STYLE.md principles 8, 9, 11):

* ``containers.create()`` then ``start()``, never ``run()``: ``run()`` silently pulls a
  missing image, which would hide the "unknown image" failure SageMaker reports, and no
  registry is reachable from here anyway. :meth:`DockerBackend.ensure_image` never pulls.
* Every container, network and volume carries the caller's ``smemu.*`` labels, so it can be
  found again after a restart (:meth:`find`, :meth:`remove_labelled`).
* Ports are published on 127.0.0.1 only; the Docker socket is never mounted into a container.
* ``docker.errors`` and connection errors are translated (runtime/docker_translate.py), most
  specific first, into the runtime's own errors (``raise ... from``), whose messages can go to
  FailureReason as they are.
* This machine's images and registry pushes (the rest of ``LocalEngine``) are in
  runtime/docker_images.py.

Folders: read-only :class:`StagedFolder` s are bind mounts (fast, nothing is copied).
``private`` folders are anonymous volumes, seeded through the archive API and read back with
:meth:`copy_out`, so a container running as root never writes into this machine's folders:
every file the emulator leaves belongs to the emulator's own user, and removing the container
(``v=True``) removes its volumes.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import docker.utils
from docker.models.containers import _create_container_args
from docker.types import DeviceRequest, Mount

from emulator.runtime.docker_images import DockerImages
from emulator.runtime.docker_translate import CONNECTION_ERRORS as _CONNECTION_ERRORS
from emulator.runtime.docker_translate import translated as _translated
from emulator.runtime.gateway_network import GatewayNetwork, GatewayNetworkError
from emulator.runtime.naming import HOME_LABEL, default_home, scoped_name, with_home
from emulator.runtime.paths import host_path_mapper
from emulator.runtime.spec import (
    ContainerExit,
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    EngineUnavailable,
    GpuRequestFailed,
    ImageNotFound,
    RuntimeError_,
    StagedFolder,
)
from emulator.runtime.tarballs import extract_folder, tar_of_folder
from emulator.runtime.volume_copy import copy_volume_folder

log = logging.getLogger(__name__)

def _parse_docker_time(text: str) -> float:
    """Epoch seconds of a Docker RFC 3339 timestamp with nanoseconds (``...:02.334403364Z``)."""
    text = text.rstrip("Z")
    whole, _, fraction = text.partition(".")
    stamp = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp()
    return stamp + (float(f"0.{fraction}") if fraction else 0.0)


class DockerBackend(DockerImages):
    """``RuntimeBackend`` and ``LocalEngine`` over one Docker engine (docker-py); images and pushes: docker_images.py."""

    def __init__(self, client: docker.DockerClient | None = None, gpu_runtime: str | None = None) -> None:
        with _translated("connecting to the Docker engine"):
            self.client = client or docker.from_env(max_pool_size=64)
            # A second low-level client without a read timeout for long-lived streams (logs
            # --follow, wait): a quiet trainer must not break its log stream after 60 s.
            self._streams = docker.APIClient(
                **docker.utils.kwargs_from_env(), timeout=None, max_pool_size=64  # type: ignore[arg-type]
            )
            info = self.client.info()
        self.host_cpus: int = int(info.get("NCPU") or os.cpu_count() or 1)
        runtimes = info.get("Runtimes") or {}
        self.gpu_runtime: str | None = gpu_runtime or _gpu_runtime
        """Runtime GPU containers are created with (SMEMU_GPU_RUNTIME); None: the engine's default."""
        if self.gpu_runtime == "default":
            self.gpu_runtime = None
            self._gpus = True  # the user says the engine's default runtime handles --gpus
        else:
            self._gpus = self.gpu_runtime in runtimes
        # An engine whose default runtime is NVIDIA's gives GPUs to any container whose image
        # says NVIDIA_VISIBLE_DEVICES=all (every CUDA image does): CPU containers must say void.
        self._nvidia_capable = self._gpus or "nvidia" in runtimes or info.get("DefaultRuntime") == "nvidia"
        self._gpu_devices: list[str] | None = None
        self._gpu_devices_known = False
        self.gateway_network = GatewayNetwork(self.client)
        """The shared network containers without a network of their own join (gateway_network.py)."""
        self._gateway_network_ready = False
        self._job_subnets: dict[str, tuple[str, str]] = {}
        """Network name -> (home id, subnet) of the (non-internal) networks this backend made."""

    # -- images and networks ----------------------------------------------------------------

    def ensure_image(self, image: str) -> str:
        """``image`` itself when the engine has an image of exactly that name; never pulls.

        Policy (an ECR URI served from the emulator's registry, ...) belongs to
        ``emulator.images``, which the platform applies before it gets here.
        """
        try:
            with _translated(f"looking up image {image}"):
                self.client.images.get(image)
        except (ImageNotFound, ContainerNotFound) as exc:
            raise ImageNotFound(
                f"The image '{image}' does not exist on this machine; the emulator never pulls images. "
                f"Build or tag it first, e.g. `docker build -t {image} .`"
            ) from exc
        return image

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> None:
        """A user-defined bridge (embedded DNS resolves container host names and aliases).

        The name gets the home id (runtime/naming.py). ``internal`` (network isolation): no
        route out, and no address of this machine on the bridge either, so the containers reach
        each other and nothing else: not the host's services, not the container gateway.
        """
        labels = with_home(labels)
        name = scoped_name(name, labels[HOME_LABEL])
        self._remove_network(name)
        options = {"com.docker.network.bridge.inhibit_ipv4": "true"} if internal else None
        with _translated(f"creating network {name}"):
            made = self.client.api.create_network(name, driver="bridge", labels=labels, internal=internal,
                                                  options=options)
        if not internal:  # its containers reach the container gateway from this subnet
            with _translated(f"inspecting network {name}"):
                config = (self.client.api.inspect_network(made["Id"]).get("IPAM") or {}).get("Config") or []
            for subnet in (c.get("Subnet") for c in config if c.get("Subnet")):
                self._job_subnets[name] = (labels[HOME_LABEL], str(subnet))

    def remove_network(self, name: str) -> None:
        """Remove a network of this emulator's home (the name as given to :meth:`create_network`)."""
        self._remove_network(scoped_name(name, default_home()))

    def _remove_network(self, name_or_id: str) -> None:
        try:
            with _translated(f"removing network {name_or_id}"):
                self.client.api.remove_network(name_or_id)
        except ContainerNotFound:
            pass
        self._job_subnets.pop(name_or_id, None)

    def watch_gateway_network(self) -> Callable[[], None]:
        """Recreate the shared network as soon as it is removed (runtime/gateway_network.py); returns stop()."""
        with _translated("watching Docker's network events"):
            return self.gateway_network.watch(self._streams)

    def container_subnets(self, home: str) -> list[str]:
        """Subnets from which this home's containers reach the gateway: the shared one, and job networks'."""
        return [self.gateway_network.subnet, *(subnet for owner, subnet in list(self._job_subnets.values())
                                               if owner == home)]

    def ensure_gateway_network(self) -> None:
        """Create the shared container network unless it exists (runtime/gateway_network.py)."""
        try:
            with _translated(f"checking network {self.gateway_network.name}"):
                self.gateway_network.ensure()
        except GatewayNetworkError as exc:
            raise RuntimeError_(str(exc)) from exc
        self._gateway_network_ready = True


    # -- containers -------------------------------------------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        """Create the container (replacing this home's one of the same name), seed private folders, start it.

        Names carry the home id and the ``smemu.home`` label (runtime/naming.py). A container
        without a network of its own (single-host jobs, endpoints) joins the shared gateway
        network, recreated first if it went missing (runtime/gateway_network.py). Hosts of a
        multi-host job stay on their job network only: on Docker every network registers a
        container's hostname, so on a shared network ``algo-1`` would also name other jobs' hosts.
        """
        labels = with_home(spec.labels)
        home = labels[HOME_LABEL]
        spec = replace(spec, name=scoped_name(spec.name, home), labels=labels,
                       network=scoped_name(spec.network, home) if spec.network else None)
        gateway = not spec.network_isolated and not spec.network
        for attempt in range(2):
            if gateway and (attempt or not self._gateway_network_ready):
                self.ensure_gateway_network()
            try:
                container_id = self._create(spec, self._create_arguments(spec, gateway))
            except ContainerNotFound as exc:  # newer engines check networks at create
                if attempt or not gateway or "network" not in str(exc):
                    raise
                continue
            try:
                for folder in spec.folders:
                    if folder.private and folder.source is not None and any(folder.source.iterdir()):
                        with _translated(f"copying {folder.source} into {spec.name}:{folder.target}"), \
                                tar_of_folder(folder.source) as archive:
                            self.client.api.put_archive(container_id, folder.target, archive)
                with _gpu_errors(spec), _translated(f"starting container {spec.name}"):
                    self.client.api.start(container_id)
                return container_id
            except ContainerNotFound as exc:  # the engine checks networks at start: recreate and retry once
                self.remove(container_id)
                if attempt or not gateway or "network" not in str(exc):
                    raise
            except BaseException:
                self.remove(container_id)
                raise
        raise RuntimeError_(f"starting container {spec.name}: the gateway network kept disappearing")

    def _create(self, spec: ContainerSpec, kwargs: dict[str, Any]) -> str:
        """The new container's id, replacing a leftover of the same name that belongs to this home.

        docker-py's ``containers.create`` inspects every container it creates to build its model
        object; the low-level call skips that engine round trip (only the id is needed), after
        the same translation of arguments.
        """
        arguments = _create_container_args(
            {**kwargs, "image": spec.image, "command": spec.command, "version": self.client.api._version})
        with _gpu_errors(spec), _translated(f"creating container {spec.name} from {spec.image}"):
            try:
                return str(self.client.api.create_container(**arguments)["Id"])
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                self._replace_namesake(spec.name, spec.labels[HOME_LABEL])
                return str(self.client.api.create_container(**arguments)["Id"])

    def _replace_namesake(self, name: str, home: str) -> None:
        """Remove a leftover container of the same name, but only one of this emulator's home."""
        existing = self.client.api.inspect_container(name)
        owner = (existing.get("Config", {}).get("Labels") or {}).get(HOME_LABEL)
        if owner != home:
            raise RuntimeError_(f"a container named {name} exists and does not belong to this emulator "
                                f"(home id {home}); it is left alone")
        self.client.api.remove_container(name, force=True, v=True)

    def _create_arguments(self, spec: ContainerSpec, gateway: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": spec.entrypoint,
            "environment": dict(spec.environment),
            "labels": dict(spec.labels),
            "hostname": spec.hostname,
            "mounts": [self._mount(folder, spec.labels, spec.name) for folder in spec.folders],
            "detach": True,
        }
        if spec.network_isolated:
            kwargs["network_mode"] = "none"
        elif spec.network or gateway:
            network = spec.network or self.gateway_network.name
            aliases = [spec.hostname] if spec.hostname and spec.network else None  # algo-N on the job network
            kwargs["network"] = network
            kwargs["networking_config"] = {network: self.client.api.create_endpoint_config(aliases=aliases)}
        if spec.expose_ports and not spec.network_isolated:
            kwargs["ports"] = {f"{port}/tcp": ("127.0.0.1", None) for port in spec.expose_ports}
        if spec.memory_bytes:
            kwargs["mem_limit"] = spec.memory_bytes
            kwargs["memswap_limit"] = spec.memory_bytes  # no swap: exceeding it is an OOM kill
        if spec.cpus:
            kwargs["nano_cpus"] = int(min(spec.cpus, self.host_cpus) * 1e9)
        if spec.gpu_device_ids:
            # The device request is what `docker run --gpus` sends; the NVIDIA runtime (in CDI or
            # legacy mode) reads NVIDIA_VISIBLE_DEVICES, set here too so that it wins over an
            # image's own ENV NVIDIA_VISIBLE_DEVICES=all.
            if spec.gpu_device_ids == ["all"]:
                request = DeviceRequest(count=-1, capabilities=[["gpu"]])
            else:
                request = DeviceRequest(device_ids=list(spec.gpu_device_ids), capabilities=[["gpu"]])
            kwargs["device_requests"] = [request]
            kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] = ",".join(spec.gpu_device_ids)
            if self.gpu_runtime:
                kwargs["runtime"] = self.gpu_runtime
        elif self._nvidia_capable:
            kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] = "void"
        if spec.user:
            kwargs["user"] = spec.user
        if spec.shm_size_bytes:
            kwargs["shm_size"] = spec.shm_size_bytes
        return kwargs

    @staticmethod
    def _mount(folder: StagedFolder, labels: dict[str, str], container_name: str) -> Mount:
        if folder.private:  # a fresh volume named after its container (so carrying the home id)
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.target).strip("-") or "root"
            name = f"{container_name}-{slug}-{secrets.token_hex(3)}"
            return Mount(target=folder.target, source=name, type="volume",
                         labels={**labels, "smemu.volume-of": container_name})
        if folder.source is None:
            raise ValueError(f"folder for {folder.target} has no source and is not private")
        return Mount(target=folder.target, source=_host_path(folder.source), type="bind",
                     read_only=folder.read_only)

    def published_port(self, container_id: str, port: int) -> tuple[str, int]:
        """Where ``port`` of the container is reachable on loopback."""
        with _translated(f"reading ports of container {container_id[:12]}"):
            bindings = self.client.api.port(container_id, port)
        if not bindings:
            raise RuntimeError_(f"container {container_id[:12]} does not publish port {port}")
        return bindings[0]["HostIp"] or "127.0.0.1", int(bindings[0]["HostPort"])

    def network_address(self, container_id: str, port: int) -> tuple[str, int] | None:
        """The container's own address for ``port`` (on its first network with one), or None.

        Reaching it skips the engine's userland proxy of the published port; whether this
        machine can reach it is for the caller to find out (emulator/hosting/addresses.py).
        """
        with _translated(f"inspecting container {container_id[:12]}"):
            networks = self.client.api.inspect_container(container_id)["NetworkSettings"].get("Networks") or {}
        for network in networks.values():
            if network.get("IPAddress"):
                return str(network["IPAddress"]), port
        return None

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerExit | None:
        """Block until the container exits (None after ``timeout`` seconds)."""
        try:
            with _translated(f"waiting for container {container_id[:12]}"):
                result = self._streams.wait(container_id, timeout=timeout)  # type: ignore[arg-type]
        except EngineUnavailable:
            if timeout is not None and self.is_running(container_id):
                return None  # the read timed out while the container still runs
            raise
        if result.get("StatusCode") == 0:  # a clean exit: no need to ask whether it was an OOM kill
            return ContainerExit(exit_code=0, oom_killed=False)
        with _translated(f"inspecting container {container_id[:12]}"):
            state = self.client.api.inspect_container(container_id)["State"]
        return ContainerExit(exit_code=int(result.get("StatusCode", state.get("ExitCode", -1))),
                             oom_killed=bool(state.get("OOMKilled")))

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM (the image's stop signal), SIGKILL after ``grace_seconds``."""
        try:
            with _translated(f"stopping container {container_id[:12]}"):
                self.client.api.stop(container_id, timeout=max(0, math.ceil(grace_seconds)))
        except ContainerNotFound:
            pass

    def kill(self, container_id: str) -> None:
        """SIGKILL now; a missing or already exited container is fine."""
        try:
            with _translated(f"killing container {container_id[:12]}"):
                self.client.api.kill(container_id)
        except (ContainerNotFound, RuntimeError_) as exc:
            if isinstance(exc, EngineUnavailable):
                raise
            log.debug("kill %s: %s", container_id[:12], exc)

    def remove(self, container_id: str) -> None:
        """Remove the container and the volumes made for it; a missing one is fine."""
        try:
            with _translated(f"removing container {container_id[:12]}"):
                mounts = self.client.api.inspect_container(container_id).get("Mounts") or []
                self.client.api.remove_container(container_id, force=True, v=True)
        except ContainerNotFound:
            return
        for mount in mounts:
            name = str(mount.get("Name") or "")
            if mount.get("Type") == "volume" and name.startswith("smemu-"):
                try:
                    with _translated(f"removing volume {name}"):
                        self.client.api.remove_volume(name, force=True)
                except ContainerNotFound:
                    pass

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[float, str]]:
        """``(epoch seconds, line)`` of stdout and stderr, interleaved as Docker recorded them."""
        with _translated(f"reading logs of container {container_id[:12]}"):
            frames = self._streams.logs(container_id, stream=True, follow=follow, timestamps=True)
        pending = ""
        try:
            for frame in frames:
                text = frame.decode("utf-8", errors="replace")
                for piece in text.splitlines(keepends=True):
                    stamp_text, _, message = piece.partition(" ")
                    try:
                        stamp = _parse_docker_time(stamp_text)
                    except ValueError:  # a frame that continues a line without a timestamp
                        stamp, message = dt.datetime.now(dt.timezone.utc).timestamp(), piece
                    if not message.endswith("\n"):
                        pending += message  # Docker split a long line into partial frames
                        continue
                    yield stamp, (pending + message).rstrip("\r\n")
                    pending = ""
        except _CONNECTION_ERRORS as exc:
            log.warning("log stream of %s ended early: %s", container_id[:12], exc)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        if pending:
            yield dt.datetime.now(dt.timezone.utc).timestamp(), pending

    def find(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Containers carrying all of ``labels`` (and this home's id when they name none), running or not."""
        filters = {"label": [f"{k}={v}" for k, v in with_home(labels).items()]}
        with _translated("listing containers"):
            found = self.client.api.containers(all=True, filters=filters)
        return [
            ContainerInfo(
                id=item["Id"],
                name=(item.get("Names") or ["/"])[0].lstrip("/"),
                labels=item.get("Labels") or {},
                running=item.get("State") == "running",
                exit_code=None,
            )
            for item in found
        ]

    def is_running(self, container_id: str) -> bool:
        """Whether the container exists and runs."""
        try:
            with _translated(f"inspecting container {container_id[:12]}"):
                state = self.client.api.inspect_container(container_id)["State"]
        except ContainerNotFound:
            return False
        return bool(state.get("Running"))

    def copy_out(self, container_id: str, path: str, dest: Path) -> bool:
        """Extract the folder ``path`` of the container into ``dest`` (owned by our user).

        A volume of a local engine that this process can read is copied from disk
        (runtime/volume_copy.py: milliseconds instead of a tar stream through the engine).
        """
        source = self._local_volume(container_id, path)
        if source is not None:
            if copy_volume_folder(source, dest):
                return True
            shutil.rmtree(dest, ignore_errors=True)
        try:
            with _translated(f"copying {path} out of container {container_id[:12]}"):
                chunks, _stat = self.client.api.get_archive(container_id, path)
        except ContainerNotFound:
            return False
        with _translated(f"copying {path} out of container {container_id[:12]}"):
            extract_folder(chunks, PurePosixPath(path).name, dest)
        return True

    def copy_in(self, container_id: str, path: str, source: Path | None) -> None:
        """Nothing to do: a folder staged from this machine is bind-mounted, so changes show at once."""

    def _local_volume(self, container_id: str, path: str) -> str | None:
        """The folder on this machine holding the volume mounted at ``path``, when the engine is
        local (a Unix socket) and the folder is readable here; None otherwise."""
        if not str(getattr(self.client.api, "base_url", "")).startswith("http+docker://"):
            return None
        try:
            with _translated(f"inspecting container {container_id[:12]}"):
                mounts = self.client.api.inspect_container(container_id).get("Mounts") or []
        except RuntimeError_:
            return None
        for mount in mounts:
            if mount.get("Type") == "volume" and mount.get("Destination") == path:
                source = str(mount.get("Source") or "")
                return source if source and os.access(source, os.R_OK | os.X_OK) else None
        return None

    def remove_labelled(self, labels: dict[str, str]) -> int:
        """Remove containers (with their volumes), then networks, then volumes with ``labels``.

        Only this home's objects: a ``smemu.home`` label is added when ``labels`` name none.
        """
        labels = with_home(labels)
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        removed = 0
        for info in self.find(labels):
            self.remove(info.id)
            removed += 1
        with _translated("listing networks"):
            networks = self.client.api.networks(filters=filters)
        for network in networks:
            self._remove_network(network["Id"])
            removed += 1
        with _translated("listing volumes"):
            volumes = self.client.api.volumes(filters=filters).get("Volumes") or []
        for volume in volumes:
            try:
                with _translated(f"removing volume {volume['Name']}"):
                    self.client.api.remove_volume(volume["Name"], force=True)
                removed += 1
            except ContainerNotFound:
                pass
        return removed

    def gpus_available(self) -> bool:
        """Whether the engine has the GPU runtime (``docker info`` lists SMEMU_GPU_RUNTIME)."""
        return self._gpus

    def gpu_devices(self) -> list[str] | None:
        """GPU indexes of this machine when the engine has the GPU runtime (see RuntimeBackend)."""
        if not self._gpus:
            return None
        if not self._gpu_devices_known:
            self._gpu_devices = _count_local_gpus() if _engine_is_local() else ["all"]
            self._gpu_devices_known = True
            log.info("GPU runtime %s; GPUs: %s", self.gpu_runtime or "(engine default)", self._gpu_devices)
        return list(self._gpu_devices or [])

    def close(self) -> None:
        """Close the engine connections."""
        self._streams.close()
        self.client.close()


@contextmanager
def _gpu_errors(spec: ContainerSpec) -> Iterator[None]:
    """An engine that cannot give GPUs says so in words that name the fix."""
    try:
        yield
    except RuntimeError_ as exc:
        text = str(exc)
        markers = ("could not select device driver", "nvidia-container", "unknown or invalid runtime name",
                   "unknown runtime specified",
                   "CDI device", "NVIDIA_VISIBLE_DEVICES", "nvml", "libnvidia")
        if spec.gpu_device_ids and any(marker.lower() in text.lower() for marker in markers):
            raise GpuRequestFailed(
                f"The Docker engine could not give the container GPUs {','.join(spec.gpu_device_ids)}: {text}. "
                "It needs the NVIDIA Container Toolkit (the runtime named by SMEMU_GPU_RUNTIME registered in "
                "daemon.json, or nvidia-container-runtime-hook on dockerd's PATH for --gpus); see docs/gpu.md."
            ) from exc
        raise


def _engine_is_local() -> bool:
    """Whether the engine runs on this machine (its GPUs are this machine's GPUs)."""
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith("unix://")


def _count_local_gpus() -> list[str]:
    """Indexes of this machine's NVIDIA GPUs: nvidia-smi, else the driver's /proc entries.

    ``["all"]`` when neither answers (the runtime may still reach GPUs this process cannot see).
    """
    smi = shutil.which("nvidia-smi") or next(
        (p for p in ("/usr/local/nvidia/bin/nvidia-smi", "/usr/bin/nvidia-smi") if os.access(p, os.X_OK)), None)
    if smi:
        try:
            done = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                  text=True, timeout=20, check=False)
            if done.returncode == 0:
                return [line.strip() for line in done.stdout.splitlines() if line.strip().isdigit()]
            log.warning("nvidia-smi failed (%s): %s", done.returncode, done.stderr.strip()[:300])
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("nvidia-smi failed: %s", exc)
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return [str(i) for i in range(len(list(proc.iterdir())))]
    return ["all"]


_gpu_runtime = "nvidia"
"""SMEMU_GPU_RUNTIME of the process's backend (configure_gpu_runtime)."""


def configure_gpu_runtime(name: str | None) -> None:
    """The runtime GPU containers are created with ('default': the engine's default runtime)."""
    global _gpu_runtime
    _gpu_runtime = name or "nvidia"


_host_path: Callable[[Any], str] = str
"""Maps a staged folder's path to the engine host's path (identity unless SMEMU_HOST_HOME)."""


def configure_host_paths(home: Path, host_home: Path | None) -> None:
    """Translate bind-mount sources for an emulator that runs in a container (runtime/paths.py)."""
    global _host_path
    _host_path = str if host_home is None else host_path_mapper(home, host_home)


_backend: DockerBackend | None = None
_backend_lock = threading.Lock()


def get_backend() -> DockerBackend:
    """The process's Docker backend, connected on first use.

    A failed connection is not cached: the gateway starts without an engine, jobs fail with
    the reason, and the first job after the engine comes up connects.
    """
    global _backend
    with _backend_lock:
        if _backend is None:
            try:
                _backend = DockerBackend()
            except EngineUnavailable as exc:
                raise EngineUnavailable(
                    f"{exc}. Start Docker (scripts/install-docker, or `dockerd`) or set DOCKER_HOST."
                ) from exc
        return _backend
