"""Endpoints for checks: deploy through the emulator, invoke through its runtime API, delete.

Shared by the serving and multi-model checks (and the pytest plugin's endpoint factory).
Every call goes through the emulator's own APIs; the only direct line to a container is the
health check, made with the emulator's own ``ping`` on the container's published port,
as the platform makes it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from emulator.contract.engine import containers_labelled
from emulator.contract.observations import InvokeResult
from emulator.contract.serving_rules import EndpointStart
from emulator.contract.session import EmulatorTarget, log_tail, wait_for

log = logging.getLogger(__name__)

ENDPOINT_KIND = "endpoint"


@dataclass
class Deployment:
    """The model, configuration and endpoint a check created (all removed by :func:`remove`)."""

    name: str
    model: str
    config: str


def deploy(target: EmulatorTarget, name: str, model: dict[str, Any], instance_type: str,
           timeout: float, startup_timeout: float | None = None) -> tuple[Deployment, EndpointStart]:
    """CreateModel (``model``: PrimaryContainer or Containers...), config and endpoint; wait for the end state."""
    sm = target.client("sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn=target.role_arn(), **model)
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
                               "InstanceType": instance_type}
    if startup_timeout is not None:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = int(startup_timeout)
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    deployment = Deployment(name, name, name)
    started = time.monotonic()
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    try:
        record = wait_for(f"endpoint {name} to come up", lambda: _settled(sm, name), timeout, interval=0.5)
    except TimeoutError:
        record = sm.describe_endpoint(EndpointName=name)
    return deployment, EndpointStart(
        name=name, status=str(record["EndpointStatus"]), seconds=time.monotonic() - started,
        failure_reason=record.get("FailureReason"),
        log_tail=log_tail(target, f"/aws/sagemaker/Endpoints/{name}", ""),
        deadline=startup_timeout if startup_timeout is not None else target.endpoint_startup_timeout)


def _settled(sm: Any, name: str) -> dict[str, Any] | None:
    record: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
    return record if record["EndpointStatus"] in ("InService", "Failed") else None


def invoke(runtime: Any, endpoint: str, body: bytes, content_type: str, **extra: Any) -> InvokeResult:
    """One InvokeEndpoint; failures come back as data (status, error code, container's status)."""
    started = time.monotonic()
    try:
        answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type, **extra)
        data = answer["Body"].read()
    except runtime.exceptions.ClientError as exc:
        response = exc.response
        error = response.get("Error", {})
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        original = response.get("OriginalStatusCode")
        return InvokeResult(False, status, f"{error.get('Code')}: {error.get('Message')}",
                            time.monotonic() - started, int(original) if original is not None else None)
    except Exception as exc:  # noqa: BLE001 - a dropped connection is a result too
        return InvokeResult(False, 0, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    return InvokeResult(True, 200, f"200 {answer.get('ContentType')} ({len(data)} bytes)", time.monotonic() - started)


def serving_container(docker: Any, endpoint: str, hostname: str | None = None) -> Any | None:
    """The running container of ``endpoint`` (the one named ``hostname`` in a multi-container model)."""
    labels = {"smemu.kind": ENDPOINT_KIND, "smemu.name": endpoint}
    if hostname:
        labels["smemu.container"] = hostname
    found = containers_labelled(docker, labels)
    return found[0] if found else None


def published(container: Any, port: int) -> tuple[str, int] | None:
    """(host, port) where the container's ``port`` is published, None when it is not."""
    container.reload()
    bindings = (container.attrs.get("NetworkSettings") or {}).get("Ports", {}).get(f"{port}/tcp") or []
    if not bindings:
        return None
    host = bindings[0].get("HostIp") or "127.0.0.1"
    return ("127.0.0.1" if host in ("0.0.0.0", "") else host), int(bindings[0]["HostPort"])


def delete(target: EmulatorTarget, deployment: Deployment, wait: float) -> bool:
    """DeleteEndpoint, -Config and Model; True once the endpoint is gone within ``wait`` seconds."""
    sm = target.client("sagemaker")
    gone = False
    try:
        sm.delete_endpoint(EndpointName=deployment.name)
        gone = bool(wait_for(f"endpoint {deployment.name} to be deleted", lambda: _gone(sm, deployment.name), wait,
                             interval=0.5))
    except TimeoutError:
        log.warning("endpoint %s was not deleted within %s s", deployment.name, wait)
    except sm.exceptions.ClientError as exc:
        log.warning("deleting endpoint %s: %s", deployment.name, exc)
    for call, key, value in ((sm.delete_endpoint_config, "EndpointConfigName", deployment.config),
                             (sm.delete_model, "ModelName", deployment.model)):
        try:
            call(**{key: value})
        except sm.exceptions.ClientError as exc:
            log.debug("cleanup %s: %s", value, exc)
    return gone


def _gone(sm: Any, name: str) -> bool:
    try:
        sm.describe_endpoint(EndpointName=name)
    except sm.exceptions.ClientError:
        return True
    return False
