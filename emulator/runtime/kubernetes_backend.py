"""``RuntimeBackend`` on a Kubernetes cluster: :class:`KubernetesBackend` (SMEMU_RUNTIME=kubernetes).

Each container the platform starts is a Pod (``kube_objects``: a stager init container, the
main container, a collector beside it); a network is a headless Service; network isolation
is a NetworkPolicy, refused unless the user says the cluster enforces it. Folders go in and
out as tar through the exec API (``kube_exec``), images reach the cluster as ``kube_images``
says. The container id the platform sees is the pod's name.

Where this differs from the Docker backend (docs/kubernetes.md):

* ``stop``: the collector sends the main container's first process SIGTERM in the pod's shared
  process namespace, then SIGKILL to all of its processes after the grace. The main process is
  not PID 1 there, so one without a SIGTERM handler ends at once instead of after the grace.
* ``published_port``: the pod's IP and the container port. The emulator must be able to route
  to pod IPs (the local cluster: its bridge is on this machine).
* ``copy_out`` reads staged folders only (every folder the platform reads back is one).
* A folder is copied into the pod at start; what the platform changes in it later reaches the
  pod only through ``copy_in`` (multi-model endpoints' models, as each is extracted or removed).
  Pipe mode's FIFOs cannot be copied: Pipe-mode jobs are refused on this runtime.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from emulator.polling import poll_until
from emulator.runtime import kube_exec
from emulator.runtime import kube_objects as objects
from emulator.runtime.kube_images import ImageDelivery, choose_mode
from emulator.runtime.spec import (
    ContainerExit,
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    EngineUnavailable,
    ImageNotFound,
    RuntimeError_,
)
from emulator.runtime.tarballs import UnsupportedFile, archive_of_folders, extract_folder

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_IMAGE_FAILURES = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"}
_START_FAILURES = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """The client's errors as the runtime's: 404 is ContainerNotFound, no answer EngineUnavailable."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        if exc.status == 404:
            raise ContainerNotFound(f"{action}: not found") from exc
        if exc.status == 0:
            raise EngineUnavailable(f"{action}: {exc.reason}") from exc
        raise RuntimeError_(f"{action}: {_api_message(exc)}") from exc
    except (HTTPError, ConnectionError, OSError) as exc:
        raise EngineUnavailable(f"{action}: cannot reach the Kubernetes API ({exc})") from exc


def _api_message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return f"{exc.status} {exc.reason}"


def _poll(deadline: float, check: Callable[[], _T | None], interval: float = 0.05) -> _T | None:
    """``check()`` until it returns something other than None, or None once ``deadline`` passed (emulator/polling.py)."""
    found = poll_until(lambda: None if (answer := check()) is None else (answer,),
                       max(0.0, deadline - time.monotonic()), interval, backoff=1.5, max_interval=0.25)
    return found[0] if found else None


def _container_state(pod: Any, name: str, init: bool = False) -> Any:
    statuses = (pod.status.init_container_statuses if init else pod.status.container_statuses) or []
    for status in statuses:
        if status.name == name:
            return status.state
    return None


class KubernetesBackend:
    """``RuntimeBackend`` over the cluster of the standard KUBECONFIG (or the in-cluster account)."""

    def __init__(self, settings: Any, api_client: Any = None) -> None:
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config

        self.settings = settings
        self.options = settings.kubernetes
        self.namespace: str = self.options.namespace
        cluster_name = None
        with _translated("loading the kubeconfig"):
            if api_client is None:
                configuration = k8s.Configuration()
                try:
                    k8s_config.load_kube_config(client_configuration=configuration)
                    _contexts, current = k8s_config.list_kube_config_contexts()
                    cluster_name = (current or {}).get("context", {}).get("cluster")
                except k8s_config.ConfigException as exc:
                    try:
                        k8s_config.load_incluster_config(client_configuration=configuration)
                    except k8s_config.ConfigException:
                        raise EngineUnavailable(f"no Kubernetes cluster configured: {exc}. Set KUBECONFIG "
                                                "(scripts/kube up prints the local cluster's)") from exc
                configuration.connection_pool_maxsize = 64
                api_client = k8s.ApiClient(configuration)
        self.configuration = api_client.configuration
        self.core = k8s.CoreV1Api(api_client)
        self.networking = k8s.NetworkingV1Api(api_client)
        self.images = ImageDelivery(choose_mode(self.options.images, cluster_name), settings)
        with _translated("connecting to the Kubernetes API"):
            self._nodes = self.core.list_node().items
        self._ensure_namespace()
        self._helper: Any = None
        self._helper_lock = threading.Lock()
        self._pod_addresses: dict[str, tuple[float, list[str]]] = {}
        """Home id -> (when looked up, its pods' addresses) for :meth:`container_subnets`."""
        self._staged_folders: dict[str, list[str]] = {}
        """Pod name -> its staged folders' paths (for :meth:`copy_in` and :meth:`copy_out`)."""
        self._pull_policies: dict[str, str] = {}
        """Image reference -> pull policy, for the references :meth:`ensure_image` returned."""
        log.info("Kubernetes backend: namespace %s, images %s", self.namespace, self.images.mode)

    # -- cluster facts ------------------------------------------------------------------------

    def _ensure_namespace(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.read_namespace(self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                return  # no right to read namespaces: assume it exists, pod creation will say if not
            try:
                self.core.create_namespace({"metadata": {"name": self.namespace, "labels": objects.MANAGED_BY}})
            except ApiException as created:
                if created.status != 409:
                    raise RuntimeError_(f"cannot create namespace {self.namespace}: {_api_message(created)}") from created

    def _allocatable(self, resource: str) -> list[float]:
        from kubernetes.utils import parse_quantity

        values = []
        for node in self._nodes:
            quantity = (node.status.allocatable or {}).get(resource)
            if quantity is not None:
                values.append(float(parse_quantity(quantity)))
        return values

    def _plan(self, image: str, pull_policy: str) -> objects.PodPlan:
        helper = self._helper_image()
        cpus, memory = self._allocatable("cpu"), self._allocatable("memory")
        return objects.PodPlan(
            namespace=self.namespace, image=image, pull_policy=pull_policy,
            helper_image=helper.reference, helper_pull_policy=helper.pull_policy,
            request_fraction=self.options.request_fraction,
            max_node_cpus=max(cpus) if cpus else None, max_node_memory=int(max(memory)) if memory else None,
            cluster_has_gpus=any(self._allocatable("nvidia.com/gpu")),
        )

    def _helper_image(self) -> Any:
        with self._helper_lock:
            if self._helper is None:
                self._helper = self.images.deliver_helper(self.options.helper_image)
            return self._helper

    # -- images and networks ------------------------------------------------------------------

    def ensure_image(self, image: str) -> str:
        """The reference pods run for ``image``, delivered to the cluster (SMEMU_KUBE_IMAGES)."""
        delivered = self.images.deliver(image)
        self._pull_policies[delivered.reference] = delivered.pull_policy
        return delivered.reference

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> None:
        """A headless Service for the network's host names; a NetworkPolicy when ``internal``."""
        if internal:
            self._require_network_policy(f"network {name} is internal (network isolation of a multi-host job)")
        self.remove_network(name)
        with _translated(f"creating Service for network {name}"):
            self.core.create_namespaced_service(self.namespace, objects.headless_service(name, self.namespace, labels))
        if internal:
            with _translated(f"creating NetworkPolicy for network {name}"):
                self.networking.create_namespaced_network_policy(
                    self.namespace, objects.network_policy_for_network(name, self.namespace, labels))

    def remove_network(self, name: str) -> None:
        """Remove a network's Service and NetworkPolicy (missing is fine)."""
        service = objects.service_name(name)
        for remove in (self.core.delete_namespaced_service, self.networking.delete_namespaced_network_policy):
            try:
                with _translated(f"removing network {name}"):
                    remove(service, self.namespace)
            except ContainerNotFound:
                pass

    def _require_network_policy(self, what: str) -> None:
        if not self.options.network_policy:
            raise RuntimeError_(
                f"{what}, but this cluster is not known to enforce NetworkPolicy, so the isolation could not be "
                "honoured. Set SMEMU_KUBE_NETWORK_POLICY=1 if its network plugin enforces NetworkPolicy (the "
                "emulator's local cluster does not; docs/kubernetes.md)")

    # -- containers ----------------------------------------------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        """Create the pod (replacing one of the same name), stage its folders, start the main container."""
        policy = self._pull_policies.get(spec.image) or self.images.pull_policy
        manifest = objects.pod_manifest(spec, self._plan(spec.image, policy))
        name = manifest["metadata"]["name"]
        if spec.network_isolated:
            self._require_network_policy(f"container {spec.name} asks for network isolation")
        self.remove(name)
        deadline = time.monotonic() + self.options.start_timeout_seconds
        self._create_pod(manifest, deadline)
        try:
            if spec.network_isolated:
                with _translated(f"creating NetworkPolicy for {name}"):
                    self.networking.create_namespaced_network_policy(
                        self.namespace, objects.network_policy_isolated(name, self.namespace, spec.labels))
            self._wait_for_stager(name, deadline)
            self._stage(name, spec)
            self._wait_for_main(name, spec.image, deadline)
        except BaseException:
            self.remove(name)
            raise
        return name

    def _create_pod(self, manifest: dict[str, Any], deadline: float) -> None:
        from kubernetes.client.exceptions import ApiException

        name = manifest["metadata"]["name"]
        while True:
            try:
                with _translated(f"creating pod {name}"):
                    self.core.create_namespaced_pod(self.namespace, manifest)
                return
            except RuntimeError_ as exc:
                cause = exc.__cause__
                text = _api_message(cause) if isinstance(cause, ApiException) else str(exc)
                # A new namespace's default service account appears a moment after it.
                if "serviceaccount" not in text.lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _read(self, name: str) -> Any:
        with _translated(f"reading pod {name}"):
            return self.core.read_namespaced_pod(name, self.namespace)

    def _wait_for_stager(self, name: str, deadline: float) -> None:
        def stager_running() -> bool | None:
            pod = self._read(name)
            state = _container_state(pod, objects.STAGER, init=True)
            if state is not None and state.running is not None:
                return True
            if state is not None and state.waiting is not None and state.waiting.reason in _IMAGE_FAILURES:
                raise RuntimeError_(f"the helper image {self.options.helper_image} cannot be pulled by the "
                                    f"cluster ({state.waiting.reason}: {state.waiting.message}); set "
                                    "SMEMU_KUBE_HELPER_IMAGE to an image with sh, tar and head that it can pull")
            if pod.status.phase in ("Failed", "Succeeded"):
                raise RuntimeError_(f"pod {name} ended before it started: {pod.status.reason or pod.status.phase}: "
                                    f"{pod.status.message or ''}".rstrip(": "))
            return None

        if _poll(deadline, stager_running) is None:
            raise RuntimeError_(f"pod {name} did not start within {self.options.start_timeout_seconds:g} s: "
                                f"{self._pending_reason(name)}")

    def _pending_reason(self, name: str) -> str:
        pod = self._read(name)
        for condition in pod.status.conditions or []:
            if condition.status != "True" and condition.message:
                return f"{condition.reason}: {condition.message}"
        return pod.status.phase or "Pending"

    def _stage(self, name: str, spec: ContainerSpec) -> None:
        folders = [(folder.source, objects.helper_path(folder.target).lstrip("/"), folder.private or not folder.read_only)
                   for folder in spec.folders if folder.source is not None]
        try:
            archive, size = archive_of_folders(folders)
        except UnsupportedFile as exc:
            raise RuntimeError_(f"cannot stage the folders of {spec.name} into a pod: {exc} (FIFOs of Pipe-mode "
                                "channels need the Docker backend)") from exc
        with archive:
            command = ["sh", "-c", f"head -c {size} | tar -x -f - -C / && touch {objects.STAGED_MARKER}"]
            with _translated(f"staging folders into pod {name}"):
                result = kube_exec.run(self.configuration, self.namespace, name, objects.STAGER, command,
                                       stdin=archive, size=size)
        if result.exit_code != 0:
            raise RuntimeError_(f"staging folders into pod {name} failed ({result.exit_code}): {result.stderr}")

    def _wait_for_main(self, name: str, image: str, deadline: float) -> None:
        def main_started() -> bool | None:
            pod = self._read(name)
            state = _container_state(pod, objects.MAIN)
            if state is not None and (state.running is not None or state.terminated is not None):
                return True
            waiting = state.waiting if state is not None else None
            if waiting is not None and waiting.reason in _IMAGE_FAILURES:
                raise ImageNotFound(f"The image '{image}' cannot be pulled by the cluster ({waiting.reason}): "
                                    f"{waiting.message or ''}".rstrip(": "))
            if waiting is not None and waiting.reason in _START_FAILURES:
                raise RuntimeError_(f"container {name} could not start ({waiting.reason}): {waiting.message}")
            if pod.status.phase in ("Failed", "Succeeded"):
                raise RuntimeError_(f"pod {name} ended before its container started: "
                                    f"{pod.status.reason or pod.status.phase}")
            return None

        if _poll(deadline, main_started) is None:
            raise RuntimeError_(f"container {name} did not start within {self.options.start_timeout_seconds:g} s: "
                                f"{self._pending_reason(name)}")

    def published_port(self, container_id: str, port: int) -> tuple[str, int]:
        """The pod's IP and ``port`` (reachable where pod IPs route, as on the local cluster)."""
        import json

        pod = self._read(container_id)
        ports = json.loads((pod.metadata.annotations or {}).get(objects.PORTS_ANNOTATION) or "[]")
        if port not in ports:
            raise RuntimeError_(f"pod {container_id} does not publish port {port}")
        state = _container_state(pod, objects.MAIN)
        if not pod.status.pod_ip or state is None or state.running is None:
            raise RuntimeError_(f"pod {container_id} has no address: its container does not run")
        return pod.status.pod_ip, port

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerExit | None:
        """Block until the main container has exited (None after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")

        def exited() -> ContainerExit | None:
            pod = self._read(container_id)
            state = _container_state(pod, objects.MAIN)
            if state is not None and state.terminated is not None:
                return ContainerExit(exit_code=int(state.terminated.exit_code),
                                     oom_killed=state.terminated.reason == "OOMKilled")
            if pod.status.phase in ("Failed", "Succeeded"):  # evicted, or never started
                return ContainerExit(exit_code=-1)
            return None

        return _poll(deadline, exited, interval=0.1)

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM to the main container's process, SIGKILL to all of its processes after the grace."""
        if not self._signal(container_id, "TERM", everyone=False):
            return
        if self.wait(container_id, timeout=max(0.0, grace_seconds)) is None:
            self.kill(container_id)

    def kill(self, container_id: str) -> None:
        """SIGKILL to every process of the main container; a missing or exited one is fine."""
        if self._signal(container_id, "KILL", everyone=True):
            self.wait(container_id, timeout=30)

    def _signal(self, container_id: str, signal: str, everyone: bool) -> bool:
        """Send ``signal`` through the collector; False when there is nothing left to signal."""
        try:
            state = _container_state(self._read(container_id), objects.MAIN)
        except ContainerNotFound:
            return False
        if state is None or state.running is None:
            return False
        with _translated(f"signalling pod {container_id}"):
            result = kube_exec.run(self.configuration, self.namespace, container_id, objects.COLLECTOR,
                                   objects.signal_command(signal, everyone))
        if result.exit_code != 0:
            log.warning("SIG%s to pod %s failed: %s", signal, container_id, result.stderr)
        return True

    def remove(self, container_id: str) -> None:
        """Delete the pod at once (and its isolation policy); a missing one is fine."""
        from kubernetes.client import V1DeleteOptions

        self._staged_folders.pop(container_id, None)
        for remove in (self.core.delete_namespaced_pod, self.networking.delete_namespaced_network_policy):
            try:
                with _translated(f"removing pod {container_id}"):
                    remove(container_id, self.namespace, body=V1DeleteOptions(grace_period_seconds=0))
            except ContainerNotFound:
                pass

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[float, str]]:
        """``(epoch seconds, line)`` of the main container's output, with the kubelet's timestamps."""
        with _translated(f"reading logs of pod {container_id}"):
            response = self.core.read_namespaced_pod_log(container_id, self.namespace, container=objects.MAIN,
                                                         follow=follow, timestamps=True, _preload_content=False)
        pending = b""
        try:
            for chunk in response.stream(64 * 1024):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield _log_line(line)
        except (OSError, ValueError) as exc:
            log.warning("log stream of %s ended early: %s", container_id, exc)
        finally:
            response.release_conn()
        if pending:
            yield _log_line(pending)

    def find(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Pods carrying all of ``labels``, running or not."""
        with _translated("listing pods"):
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=objects.selector(labels)).items
        found = []
        for pod in pods:
            exact = objects.labels_of(pod.metadata)
            if any(exact.get(key) != value for key, value in labels.items()):
                continue
            state = _container_state(pod, objects.MAIN)
            terminated = state.terminated if state is not None else None
            found.append(ContainerInfo(
                id=pod.metadata.name,
                name=(pod.metadata.annotations or {}).get(objects.NAME_ANNOTATION, pod.metadata.name),
                labels=exact,
                running=state is not None and state.running is not None,
                exit_code=int(terminated.exit_code) if terminated is not None else None,
            ))
        return found

    def container_subnets(self, home: str) -> list[str]:
        """Where this home's pods reach the container gateway from (emulator/container_gateway.py).

        The nodes' pod networks when the cluster assigns them (``spec.podCIDRs``), else the
        address of each of this home's pods (looked up again at most every half second).
        """
        cidrs = [c for node in self._nodes for c in [*(getattr(node.spec, "pod_cidrs", None) or []),
                                                     getattr(node.spec, "pod_cidr", None)] if c]
        if cidrs:
            return sorted(set(cidrs))
        now = time.monotonic()
        cached = self._pod_addresses.get(home)
        if cached is not None and now - cached[0] < 0.5:
            return cached[1]
        with _translated("listing pods"):
            pods = self.core.list_namespaced_pod(self.namespace,
                                                 label_selector=objects.selector({"smemu.home": home})).items
        addresses = sorted({f"{pod.status.pod_ip}/32" for pod in pods if pod.status and pod.status.pod_ip})
        self._pod_addresses[home] = (now, addresses)
        return addresses

    def is_running(self, container_id: str) -> bool:
        """Whether the pod exists and its main container runs."""
        try:
            state = _container_state(self._read(container_id), objects.MAIN)
        except ContainerNotFound:
            return False
        return state is not None and state.running is not None

    def copy_out(self, container_id: str, path: str, dest: Path) -> bool:
        """Copy a staged folder (or a folder below one) of the pod into ``dest``, through the collector."""
        target = PurePosixPath(path)
        if not any(target == PurePosixPath(f) or PurePosixPath(f) in target.parents for f in self._folders(container_id)):
            raise RuntimeError_(f"only staged folders can be copied out of a pod; {path} is not one")
        command = ["tar", "-c", "-f", "-", "-C", objects.helper_path(str(target.parent)), target.name]
        with _translated(f"copying {path} out of pod {container_id}"):
            session = kube_exec.Exec(self.configuration, self.namespace, container_id, objects.COLLECTOR, command)
        try:
            extract_folder(session.stdout(), target.name, dest)
        except Exception as exc:  # tarfile says "empty file" when tar wrote nothing
            result = session.finish()
            if result.exit_code != 0:
                log.debug("copy of %s out of %s: %s", path, container_id, result.stderr)
                return False
            raise RuntimeError_(f"copying {path} out of pod {container_id} failed: {exc}") from exc
        result = session.finish()
        return result.exit_code == 0

    def copy_in(self, container_id: str, path: str, source: Path | None) -> None:
        """Replace ``path`` (in a staged folder of the pod) with a copy of ``source``; None removes it.

        Through the collector, which has every staged folder mounted writable (``main`` may
        have it read-only): ``rm -rf`` the old copy, then the tar through the exec API.
        """
        target = PurePosixPath(path)
        if not any(PurePosixPath(f) in target.parents for f in self._folders(container_id)):
            raise RuntimeError_(f"only paths in staged folders can be copied into a pod; {path} is not in one")
        place = objects.helper_path(str(target))
        if source is None:
            with _translated(f"removing {path} in pod {container_id}"):
                result = kube_exec.run(self.configuration, self.namespace, container_id, objects.COLLECTOR,
                                       ["rm", "-rf", place])
        else:
            try:
                archive, size = archive_of_folders([(source, place.lstrip("/"), False)])
            except UnsupportedFile as exc:
                raise RuntimeError_(f"cannot copy {source} into pod {container_id}: {exc}") from exc
            with archive, _translated(f"copying {path} into pod {container_id}"):
                result = kube_exec.run(self.configuration, self.namespace, container_id, objects.COLLECTOR,
                                       ["sh", "-c", f'rm -rf "$1" && head -c {size} | tar -x -f - -C /',
                                        "copy-in", place], stdin=archive, size=size)
        if result.exit_code != 0:
            raise RuntimeError_(f"copying {path} into pod {container_id} failed ({result.exit_code}): "
                                f"{result.stderr}")

    def _folders(self, container_id: str) -> list[str]:
        """The staged folders' paths in the pod's main container (a pod's spec never changes)."""
        known = self._staged_folders.get(container_id)
        if known is not None:
            return known
        try:
            pod = self._read(container_id)
        except ContainerNotFound:
            return []
        for container in pod.spec.containers:
            if container.name == objects.MAIN:
                found = [mount.mount_path for mount in container.volume_mounts or [] if mount.name.startswith("f")]
                if len(self._staged_folders) > 4096:
                    self._staged_folders.clear()
                self._staged_folders[container_id] = found
                return found
        return []

    def remove_labelled(self, labels: dict[str, str]) -> int:
        """Delete every pod, Service and NetworkPolicy carrying all of ``labels``."""
        from kubernetes.client import V1DeleteOptions

        removed = 0
        kinds = ((self.core.list_namespaced_pod, self.core.delete_namespaced_pod),
                 (self.core.list_namespaced_service, self.core.delete_namespaced_service),
                 (self.networking.list_namespaced_network_policy, self.networking.delete_namespaced_network_policy))
        for listing, delete in kinds:
            with _translated("listing objects by label"):
                items = listing(self.namespace, label_selector=objects.selector(labels)).items
            for item in items:
                exact = objects.labels_of(item.metadata)
                if any(exact.get(key) != value for key, value in labels.items()):
                    continue
                try:
                    with _translated(f"removing {item.metadata.name}"):
                        delete(item.metadata.name, self.namespace, body=V1DeleteOptions(grace_period_seconds=0))
                    removed += 1
                except ContainerNotFound:
                    pass
        return removed

    def gpus_available(self) -> bool:
        """Whether a node offers ``nvidia.com/gpu`` (the NVIDIA device plugin runs)."""
        return any(self._allocatable("nvidia.com/gpu"))

    def gpu_devices(self) -> list[str] | None:
        """One id per GPU the cluster's nodes offer (the device plugin picks the devices); None: none."""
        total = int(sum(self._allocatable("nvidia.com/gpu")))
        return [str(number) for number in range(total)] if total else None

    def close(self) -> None:
        """Close the API connections."""
        self.core.api_client.close()

    def network_address(self, container_id: str, port: int) -> tuple[str, int] | None:
        """None: the emulator reaches pods through :meth:`published_port` only."""
        return None


def _log_line(raw: bytes) -> tuple[float, str]:
    """``(epoch seconds, text)`` of a kubelet log line ``2024-01-02T03:04:05.123456789Z text``."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    stamp_text, _, message = text.partition(" ")
    try:
        whole, _, fraction = stamp_text.rstrip("Z").partition(".")
        stamp = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp()
        return stamp + (float(f"0.{fraction}") if fraction else 0.0), message
    except ValueError:
        return time.time(), text
