"""The model containers of a transform job: one per instance, started, healthy, asked for parameters.

Each instance runs the model's image with ``serve``, the model at /opt/ml/model (read-only),
port 8080 published on loopback, and the environment SageMaker gives batch containers:
the model's variables, ``SAGEMAKER_BATCH=true``, the job's Environment, and
``SAGEMAKER_MAX_PAYLOAD_IN_MB`` / ``SAGEMAKER_BATCH_STRATEGY`` / ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``
when the request sets them. Once ``GET /ping`` answers 200 the platform asks
``GET /execution-parameters`` (optional); the request's values win over the container's,
which win over the defaults (1 concurrent request, MultiRecord, 6 MB).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.hosting.container_http import ConnectionPool, ContainerUnreachable
from emulator.hosting.fleet import new_instance_id, ping
from emulator.hosting.plan import DEFAULT_PORT, ContainerPlan
from emulator.instances import instance_resources
from emulator.polling import poll_until
from emulator.runtime.spec import ContainerSpec, RuntimeBackend, StagedFolder

KIND = "transform-job"
_STRATEGIES = {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord", "MultiRecord": "MultiRecord",
               "SingleRecord": "SingleRecord"}
_ENV_STRATEGY = {"MultiRecord": "MULTI_RECORD", "SingleRecord": "SINGLE_RECORD"}


class InstanceFailed(Exception):
    """An instance could not be brought up; the message is the job's FailureReason."""


@dataclass
class Instance:
    """One running model container."""

    number: int
    instance_id: str
    container_id: str
    pool: ConnectionPool | None = None


@dataclass(frozen=True)
class BatchSettings:
    """How requests are made, once request, container and defaults are weighed."""

    max_concurrent: int
    strategy: str
    max_payload_mb: int
    offered: str = ""
    """What the container answered to GET /execution-parameters (``404``, ``200 {...}``, ``no answer``)."""

    def log_line(self) -> str:
        """The platform's line in the job's log stream: the settings and where they came from."""
        return (f"Batch settings: MaxConcurrentTransforms={self.max_concurrent}, BatchStrategy={self.strategy}, "
                f"MaxPayloadInMB={self.max_payload_mb} (GET /execution-parameters answered {self.offered})")


EXECUTION_PARAMETERS_ANSWER = re.compile(r"^Batch settings: .*\(GET /execution-parameters answered (?P<answer>.*)\)$")
"""Finds the container's answer in :meth:`BatchSettings.log_line` (contract checks read it back)."""


def labels(job_name: str, home_id: str) -> dict[str, str]:
    """Labels on every container of a transform job."""
    return {"smemu.kind": KIND, "smemu.name": job_name, "smemu.home": home_id}


def environment(record: dict[str, Any], plan: ContainerPlan, platform_env: dict[str, str]) -> dict[str, str]:
    """The batch container's environment."""
    env = {**platform_env, **plan.environment, "SAGEMAKER_BATCH": "true"}
    if record.get("MaxPayloadInMB") is not None:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(record["MaxPayloadInMB"])
    if record.get("BatchStrategy"):
        env["SAGEMAKER_BATCH_STRATEGY"] = _ENV_STRATEGY[record["BatchStrategy"]]
    if record.get("MaxConcurrentTransforms"):
        env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(record["MaxConcurrentTransforms"])
    env.update({str(k): str(v) for k, v in (record.get("Environment") or {}).items()})
    return env


def start_instance(backend: RuntimeBackend, record: dict[str, Any], number: int, image: str, model_dir: Path,
                   env: dict[str, str], home_id: str, resource_limits: bool) -> Instance:
    """Create and start instance ``number``'s container."""
    instance_id = new_instance_id()
    instance_type = record["TransformResources"]["InstanceType"]
    vcpus, memory, _gpus = instance_resources(instance_type)
    name = record["TransformJobName"]
    spec = ContainerSpec(
        name=f"smemu-transform-{name}-{number}", image=image, command=["serve"], environment=env,
        folders=[StagedFolder(model_dir, "/opt/ml/model", read_only=True)], expose_ports=[DEFAULT_PORT],
        memory_bytes=memory if resource_limits else None, cpus=float(vcpus) if resource_limits else None,
        labels={**labels(name, home_id), "smemu.instance": instance_id},
    )
    return Instance(number, instance_id, backend.start(spec))


def wait_healthy(backend: RuntimeBackend, instance: Instance, deadline_seconds: float,
                 cancelled: Any) -> None:
    """Poll /ping until 200; raises InstanceFailed when the container exits or the deadline passes."""
    host, port = backend.published_port(instance.container_id, DEFAULT_PORT)
    last: list[int | str] = ["no answer yet"]

    def healthy() -> bool:
        if cancelled():
            return False
        last[0] = ping(host, port)
        if last[0] == 200:
            return True
        if not backend.is_running(instance.container_id):
            raise InstanceFailed(f"ClientError: The model container of instance {instance.instance_id} exited "
                                 "before passing the ping health check. See the job's logs.")
        return False

    if poll_until(healthy, deadline_seconds, 0.05, backoff=1.5, max_interval=0.5, give_up=cancelled):
        instance.pool = ConnectionPool(host, port)
    elif not cancelled():
        raise InstanceFailed(f"ClientError: The model container of instance {instance.instance_id} did not answer "
                             f"GET /ping with 200 within {deadline_seconds:g} s; last answer: {last[0]}.")


def batch_settings(record: dict[str, Any], instance: Instance) -> BatchSettings:
    """Request values, else the container's /execution-parameters, else SageMaker's defaults."""
    offered: dict[str, Any] = {}
    said = "nothing"
    assert instance.pool is not None
    try:
        answer = instance.pool.request("GET", "/execution-parameters", b"", {}, timeout=5.0)
        said = f"{answer.status}: {answer.body[:500].decode('utf-8', 'replace')}" if answer.body else str(answer.status)
        if answer.status == 200:
            parsed = json.loads(answer.body or b"{}")
            offered = parsed if isinstance(parsed, dict) else {}
    except (ContainerUnreachable, TimeoutError) as exc:
        said = f"nothing ({type(exc).__name__})"
    except ValueError:
        offered = {}
    strategy = record.get("BatchStrategy") or _STRATEGIES.get(str(offered.get("BatchStrategy")), "MultiRecord")
    concurrent = record.get("MaxConcurrentTransforms") or _positive(offered.get("MaxConcurrentTransforms")) or 1
    payload = record.get("MaxPayloadInMB")
    if payload is None:
        payload = _positive(offered.get("MaxPayloadInMB")) or 6
    return BatchSettings(int(concurrent), strategy, int(payload), " ".join(said.split()))


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
