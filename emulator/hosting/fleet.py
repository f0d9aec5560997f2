"""Variant instances as containers: start them through the runtime backend, wait for /ping
with SageMaker's deadlines, find them again after a restart, stop them.

Every container carries labels naming the endpoint, deployment, variant, instance and
container, plus the emulator home it belongs to, so a restarted emulator re-adopts its own
endpoints (and only its own) without any record of container ids.
"""

from __future__ import annotations

import http.client
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event
from typing import Any

from emulator.gpus import GpuPolicy
from emulator.hosting.addresses import Reachability
from emulator.hosting.multi_model import MODELS_PATH, instance_models_dir
from emulator.hosting.plan import ContainerPlan, VariantPlan
from emulator.hosting.validation import SINGLE
from emulator.polling import poll_until
from emulator.runtime.naming import home_id
from emulator.runtime.spec import ContainerSpec, ImageNotFound, RuntimeBackend, RuntimeError_, StagedFolder

log = logging.getLogger(__name__)

KIND = "endpoint"
PING_TIMEOUT = 2.0
"""SageMaker gives each GET /ping 2 seconds."""
FAILURE_REASON_MAX = 1024
STOP_GRACE_SECONDS = 30.0
"""SIGTERM, then SIGKILL 30 s later, as SageMaker stops hosting containers."""
LAUNCH_FAILURE_GRACE = 1.0
HEALTH_POLL_FIRST = 0.01
HEALTH_POLL_MAX = 0.1
"""A container is asked for /ping every 10 ms at first, backing off to every 100 ms: a fast
container is InService within a few ms of its readiness, a slow one costs little."""
"""Containers of a fleet that failed (or was cancelled) while starting get 1 s, not 30 s."""


def home_label(home: Path) -> str:
    """A short id of the emulator home, so two emulators on one engine never adopt each other's containers."""
    return home_id(home)


def new_instance_id() -> str:
    """An EC2-style instance id, as SageMaker shows in log stream names."""
    return "i-" + secrets.token_hex(9)[:17]


class LaunchFailed(Exception):
    """Instances could not be brought up; the message is the endpoint's FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason[:FAILURE_REASON_MAX])
        self.reason = reason[:FAILURE_REASON_MAX]


class Cancelled(Exception):
    """The endpoint was deleted while its instances were being brought up."""


@dataclass
class RunningContainer:
    """One started container, where its serving port is published and where the emulator
    reaches it (its own network address when this process can, see :mod:`.addresses`)."""

    container_id: str
    hostname: str
    port: int
    host: str = "127.0.0.1"
    published_port: int = 0
    address: tuple[str, int] | None = None

    @property
    def reach(self) -> tuple[str, int]:
        """The address invocations and health checks use."""
        return self.address or (self.host, self.published_port)


@dataclass
class RunningInstance:
    """One instance of a variant (its containers share the instance's lifetime)."""

    variant: str
    instance_id: str
    deployment_id: str
    containers: list[RunningContainer] = field(default_factory=list)


@dataclass
class _Pending:
    instance: RunningInstance
    container: RunningContainer
    who: str
    last: str = "no answer yet"


class Fleet:
    """Starts and stops the instances of endpoint variants on a runtime backend."""

    def __init__(
        self, backend: RuntimeBackend, home: Path, resource_limits: bool = True, stop_grace: float = STOP_GRACE_SECONDS,
        *, resolve_image: Callable[[str], str] | None = None, gpu_policy: GpuPolicy | None = None,
        aws_environment: Callable[[str | None], dict[str, str]] | None = None,
    ) -> None:
        self.backend = backend
        self.home_id = home_label(home)
        self.resource_limits = resource_limits
        self.stop_grace = stop_grace
        self.addresses = Reachability()
        self.resolve_image: Callable[[str], str] = resolve_image or backend.ensure_image
        """The platform's image policy (emulator/images.py), then the backend's exact lookup."""
        self.gpu_policy = gpu_policy or GpuPolicy()
        """SMEMU_GPUS / SMEMU_GPU_FALLBACK (emulator.gpus)."""
        self.aws_environment: Callable[[str | None], dict[str, str]] = aws_environment or (lambda _role: {})
        """Credentials endpoint and AWS endpoints for a container running as a role."""

    # -- launching ---------------------------------------------------------------------

    def labels(self, endpoint: str, deployment_id: str | None = None) -> dict[str, str]:
        """The labels every container of an endpoint (and deployment) carries."""
        labels = {"smemu.kind": KIND, "smemu.name": endpoint, "smemu.home": self.home_id}
        if deployment_id is not None:
            labels["smemu.deployment"] = deployment_id
        return labels

    def resolve_images(self, variant: VariantPlan) -> dict[str, str]:
        """Image reference to run for each image of the variant; raises LaunchFailed naming a missing one."""
        resolved = {}
        for container in variant.containers:
            try:
                resolved[container.image] = self.resolve_image(container.image)
            except ImageNotFound as exc:
                raise LaunchFailed(exc.reason("hosting", variant=variant.name)) from exc
            except RuntimeError_ as exc:
                raise LaunchFailed(str(exc)) from exc
        return resolved

    def _environment(self, variant: VariantPlan, container: ContainerPlan) -> dict[str, str]:
        """The model's own variables over the role's AWS variables (none when network-isolated)."""
        aws = {} if variant.network_isolation else self.aws_environment(variant.execution_role_arn)
        return {**aws, **container.environment}

    def _spec(
        self,
        endpoint: str,
        deployment_id: str,
        variant: VariantPlan,
        instance_id: str,
        container: ContainerPlan,
        image: str,
        model_dir: Path,
        gpu_device_ids: list[str] | None = None,
    ) -> ContainerSpec:
        memory, cpus = variant.memory_bytes, None
        if variant.instance_type and self.resource_limits:
            from emulator.instances import instance_resources

            try:
                vcpus, memory, _gpus = instance_resources(variant.instance_type)
                cpus = float(vcpus)
            except ValueError:
                memory, cpus = None, None
        labels = self.labels(endpoint, deployment_id)
        labels.update(
            {
                "smemu.variant": variant.name,
                "smemu.instance": instance_id,
                "smemu.container": container.hostname,
                "smemu.port": str(container.port),
            }
        )
        if variant.network_isolation:
            log.warning(
                "endpoint %s: EnableNetworkIsolation is not enforced for endpoint containers yet "
                "(the emulator must reach the container's port)",
                endpoint,
            )
        folders = [StagedFolder(model_dir, "/opt/ml/model", read_only=True)]
        if container.multi_model is not None:  # this instance's own folder of on-demand models
            models_dir = instance_models_dir(model_dir, instance_id)
            models_dir.mkdir(parents=True, exist_ok=True)
            folders.append(StagedFolder(models_dir, MODELS_PATH, read_only=True))
        return ContainerSpec(
            name=f"smemu-ep-{endpoint}-{variant.name}-{instance_id}-{container.hostname}"[:200],
            image=image,
            command=["serve"],
            environment=self._environment(variant, container),
            hostname=None if variant.mode == SINGLE else container.hostname,
            folders=folders,
            memory_bytes=memory if self.resource_limits or variant.is_serverless else None,
            cpus=cpus,
            expose_ports=[container.port],
            labels=labels,
            gpu_device_ids=gpu_device_ids or None,
        )

    def gpu_plan(self, variant: VariantPlan, count: int, endpoint: str) -> list[list[str]]:
        """GPU device ids of each of ``count`` new instances (emulator.gpus); raises GpuUnavailable."""
        from emulator.gpus import assign
        from emulator.instances import instance_type

        if not variant.instance_type or variant.is_serverless or not instance_type(variant.instance_type).accelerators:
            return [[] for _ in range(count)]
        return assign([variant.instance_type] * count, self.backend.gpu_devices(), self.gpu_policy,
                      what=f"endpoint {endpoint} variant {variant.name}")

    def check_gpus(self, config: dict[str, Any], endpoint: str) -> str | None:
        """CreateEndpoint's ResourceLimitExceeded message when a variant's GPUs are not here, else None."""
        from emulator.gpus import USAGE_ENDPOINT, GpuUnavailable
        from emulator.instances import instance_type

        for variant in config.get("ProductionVariants") or []:
            name = variant.get("InstanceType")
            if not name or variant.get("ServerlessConfig") or not instance_type(name).accelerators:
                continue
            plan = VariantPlan(name=variant["VariantName"], model_name=variant.get("ModelName", ""), weight=1.0,
                               instance_count=int(variant.get("InitialInstanceCount") or 1), instance_type=name,
                               mode=SINGLE, containers=())
            try:
                self.gpu_plan(plan, plan.instance_count, endpoint)
            except GpuUnavailable as exc:
                return exc.limit_message(USAGE_ENDPOINT)
            except RuntimeError_:
                return None  # no engine now: the launch reports it
        return None

    def launch(
        self,
        endpoint: str,
        deployment_id: str,
        variant: VariantPlan,
        count: int,
        model_dirs: dict[int, Path],
        images: dict[str, str],
        cancel: Event | None = None,
        on_started: Any = None,
    ) -> list[RunningInstance]:
        """Start ``count`` instances of a variant and wait until every container answers /ping.

        ``model_dirs`` maps container index to its staged model folder. ``on_started`` is
        called with each instance as soon as its containers exist (to start following their
        logs, so a failing container's output reaches CloudWatch). On failure every started
        container is removed and :class:`LaunchFailed` carries SageMaker's FailureReason.
        """
        from emulator.gpus import GpuUnavailable

        instances: list[RunningInstance] = []
        try:
            try:
                gpu_ids = self.gpu_plan(variant, count, endpoint)
            except GpuUnavailable as exc:
                raise LaunchFailed(exc.capacity_reason().removeprefix("CapacityError: ")) from exc
            for number in range(count):
                instance = RunningInstance(variant.name, new_instance_id(), deployment_id)
                instances.append(instance)
                for container in variant.containers:
                    spec = self._spec(
                        endpoint,
                        deployment_id,
                        variant,
                        instance.instance_id,
                        container,
                        images[container.image],
                        model_dirs[container.index],
                        gpu_device_ids=gpu_ids[number],
                    )
                    try:
                        container_id = self.backend.start(spec)
                    except RuntimeError_ as exc:
                        raise LaunchFailed(str(exc)) from exc
                    running = RunningContainer(container_id, container.hostname, container.port)
                    instance.containers.append(running)
                    try:
                        (running.host, running.published_port), running.address = self.addresses.address(
                            self.backend, container_id, container.port
                        )
                    except RuntimeError_ as exc:
                        # A container that already exited has no ports; the health check
                        # below reports it with its exit code and logs.
                        if self.backend.is_running(container_id):
                            raise LaunchFailed(str(exc)) from exc
                if on_started is not None:
                    on_started(instance)
            self.wait_healthy(variant, instances, cancel)
        except BaseException:
            self.remove(instances, LAUNCH_FAILURE_GRACE)
            raise
        return instances

    def wait_healthy(
        self, variant: VariantPlan, instances: list[RunningInstance], cancel: Event | None
    ) -> None:
        """Poll /ping on every container until each answers 200, within the startup deadline.

        A container that exits fails at once; one that is still not healthy when
        ContainerStartupHealthCheckTimeoutInSeconds passes fails with its last answer.
        """
        who_of = (lambda c: "primary") if variant.mode == SINGLE else (lambda c: c.hostname)
        lists_models = {c.hostname for c in variant.containers if c.multi_model is not None}
        pending = [_Pending(i, c, who_of(c)) for i in instances for c in i.containers]
        next_liveness = [0.0]

        def all_healthy() -> bool:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            now = time.monotonic()
            check_liveness = now >= next_liveness[0]
            if check_liveness:
                next_liveness[0] = now + 0.5
            for item in list(pending):
                status = ping(*item.container.reach)
                if status == 200 and item.container.hostname in lists_models:
                    # SageMaker also lists a multi-model container's models while bringing it up.
                    status = ping(*item.container.reach, path="/models")
                    if status != 200:
                        status = f"GET /models answered {status}" if isinstance(status, int) else status
                if status == 200:
                    pending.remove(item)
                    continue
                item.last = f"HTTP {status}" if isinstance(status, int) else status
                if check_liveness and not self.backend.is_running(item.container.container_id):
                    exit_code = self.exit_code(item.container.container_id)
                    raise LaunchFailed(
                        self._reason(
                            variant,
                            item,
                            f"The container exited with code {exit_code} before passing the health check.",
                        )
                    )
            return not pending

        if pending and not poll_until(all_healthy, variant.startup_timeout, HEALTH_POLL_FIRST, backoff=1.2,
                                      max_interval=HEALTH_POLL_MAX):
            item = pending[0]
            raise LaunchFailed(
                self._reason(
                    variant,
                    item,
                    f"GET /ping did not answer 200 within ContainerStartupHealthCheckTimeoutInSeconds "
                    f"({variant.startup_timeout:g} s); last answer: {item.last}.",
                )
            )

    def exit_code(self, container_id: str) -> str:
        """The exit code of a stopped container, with "(killed: out of memory)" when it was; "unknown" if unknown."""
        try:
            exited = self.backend.wait(container_id, timeout=2)
        except RuntimeError_:
            return "unknown"
        if exited is None:
            return "unknown"
        return f"{exited.exit_code}" + (" (killed: out of memory)" if exited.oom_killed else "")

    def _reason(self, variant: VariantPlan, item: _Pending, detail: str) -> str:
        tail = self.log_tail(item.container.container_id)
        reason = (
            f"The {item.who} container for production variant {variant.name} did not pass the ping health "
            f"check. Please check CloudWatch logs for this endpoint. {detail}"
        )
        if tail:
            reason += f" Last log lines: {tail}"
        return reason[:FAILURE_REASON_MAX]

    def log_tail(self, container_id: str, lines: int = 8) -> str:
        """The container's last output lines, joined with ' | ' for a one-line FailureReason."""
        try:
            output = [line.rstrip("\n") for _ts, line in self.backend.logs(container_id, follow=False)]
        except Exception:  # noqa: BLE001 - the logs only decorate a failure already being reported
            return ""
        return " | ".join(line for line in output[-lines:] if line)

    # -- finding and stopping -----------------------------------------------------------

    def adopt(self, endpoint: str, deployment_id: str) -> list[RunningInstance] | None:
        """Re-find a deployment's running instances after a restart; None if any of them stopped."""
        found = self.backend.find(self.labels(endpoint, deployment_id))
        if not all(info.running for info in found):
            return None
        instances: dict[str, RunningInstance] = {}
        for info in sorted(found, key=lambda i: i.labels.get("smemu.port", "")):
            labels = info.labels
            instance = instances.setdefault(
                labels["smemu.instance"],
                RunningInstance(labels["smemu.variant"], labels["smemu.instance"], deployment_id),
            )
            port = int(labels["smemu.port"])
            (host, published), address = self.addresses.address(self.backend, info.id, port)
            instance.containers.append(
                RunningContainer(info.id, labels["smemu.container"], port, host, published, address)
            )
        return list(instances.values())

    def remove(self, instances: Iterable[RunningInstance], grace: float | None = None) -> None:
        """Stop (SIGTERM, then SIGKILL after the grace period) and remove containers, in parallel."""
        ids = [c.container_id for i in instances for c in i.containers]
        self.remove_ids(ids, grace)

    def remove_ids(self, container_ids: list[str], grace: float | None = None) -> None:
        """Stop and remove containers by id, in parallel (missing ones are fine)."""
        if not container_ids:
            return
        wait = self.stop_grace if grace is None else grace

        def stop_one(container_id: str) -> None:
            try:
                self.backend.stop(container_id, wait)
            except RuntimeError_:
                pass
            try:
                self.backend.remove(container_id)
            except RuntimeError_:
                log.warning("could not remove container %s", container_id)

        with ThreadPoolExecutor(max_workers=min(8, len(container_ids)), thread_name_prefix="stop") as pool:
            list(pool.map(stop_one, container_ids))

    def remove_endpoint(
        self, endpoint: str, except_deployment: str | None = None, grace: float | None = None
    ) -> None:
        """Remove every container of an endpoint this emulator home made (optionally sparing one deployment)."""
        found = self.backend.find(self.labels(endpoint))
        self.remove_ids(
            [
                i.id
                for i in found
                if except_deployment is None or i.labels.get("smemu.deployment") != except_deployment
            ],
            grace,
        )


def ping(host: str, port: int, timeout: float = PING_TIMEOUT, path: str = "/ping") -> int | str:
    """``GET /ping`` (or ``path``) once: the status code, or a word on why there was none."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return "connection refused"
    except (OSError, http.client.HTTPException) as exc:
        return f"connection failed ({type(exc).__name__})"
    finally:
        conn.close()
