"""Shared helpers for the endpoint integration tests (no tests here).

``Endpoints`` creates models, configurations and endpoints through boto3 and, on exit,
deletes every endpoint it made, waits with botocore's ``endpoint_deleted`` waiter and
asserts that nothing labelled ``smemu.name=<endpoint>`` is left on the engine (or the cluster).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

import docker.errors
import pytest
from botocore.exceptions import ClientError

import docker
from tests.conftest import unique_name

T = TypeVar("T")


TUNED_DEADLINES = {
    "invocation_timeout_seconds": 2.0,
    "endpoint_startup_timeout_seconds": 6.0,
    "serverless_idle_seconds": 2.0,
    "container_stop_grace_seconds": 5.0,
}
"""Short deadlines so failure tests take seconds instead of SageMaker's minutes."""


def docker_client() -> docker.DockerClient:
    """The local engine, or skip the module naming the fix."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers ({exc}); run scripts/install-docker")
    return client


def poll(
    condition: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """``condition()``'s first truthy value, polled until ``timeout`` (never a blind sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)


def model_archive(name: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A model.tar.gz whose model.json names the model (the sample container echoes it)."""
    files = {"model.json": json.dumps({"name": name}).encode(), **(extra or {})}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def containers_of(client: docker.DockerClient, endpoint: str) -> list[Any]:
    """Containers (running or not) labelled as belonging to an endpoint."""
    return list(client.containers.list(all=True, filters={"label": f"smemu.name={endpoint}"}))


class Endpoints:
    """Makes models, configurations and endpoints, and removes the endpoints on exit."""

    def __init__(
        self,
        sagemaker: Any,
        s3: Any,
        bucket: str,
        image: str,
        engine: docker.DockerClient | None,
        role_arn: str,
        leftovers: Callable[[str], list[Any]] | None = None,
    ) -> None:
        self.sm, self.s3, self.bucket, self.image, self.engine = sagemaker, s3, bucket, image, engine
        self.role_arn = role_arn
        self.made: list[str] = []
        self.leftovers = leftovers or (lambda name: containers_of(engine, name))  # type: ignore[arg-type]
        """What is left of an endpoint once deleted (the engine's containers, or a Runtime's leftovers)."""

    def __enter__(self) -> Endpoints:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.made:
            self.delete(name)

    def model(
        self,
        label: str | None = None,
        env: dict[str, str] | None = None,
        data: bytes | None = None,
        **definition: Any,
    ) -> str:
        """A model of the sample serving image; ``label`` goes into its model.json."""
        name = unique_name("model")
        container: dict[str, Any] = {"Image": self.image, "Environment": env or {}, **definition}
        if label is not None or data is not None:
            key = f"models/{name}/model.tar.gz"
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=data if data is not None else model_archive(label or name)
            )
            container["ModelDataUrl"] = f"s3://{self.bucket}/{key}"
        self.sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=self.role_arn)
        return name

    def config(self, *variants: tuple[str, str, float, int], **extra: Any) -> str:
        """An endpoint configuration of ``(variant, model, weight, instance count)`` tuples."""
        name = unique_name("config")
        self.sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": v,
                    "ModelName": m,
                    "InitialVariantWeight": w,
                    "InitialInstanceCount": n,
                    "InstanceType": "ml.m5.large",
                }
                for v, m, w, n in variants
            ],
            **extra,
        )
        return name

    def endpoint(self, config: str, wait: bool = True) -> str:
        """An endpoint of ``config``, InService (botocore's waiter, 1 s delay) when ``wait``."""
        name = unique_name("ep")
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        self.made.append(name)
        if wait:
            self.sm.get_waiter("endpoint_in_service").wait(
                EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 90}
            )
        return name

    def status(self, name: str, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
        """DescribeEndpoint once the status is one of ``statuses``."""

        def reached() -> dict[str, Any] | None:
            record = self.sm.describe_endpoint(EndpointName=name)
            return record if record["EndpointStatus"] in statuses else None

        return poll(reached, timeout, what=f"endpoint {name} in {statuses}")

    def delete(self, name: str) -> None:
        """DeleteEndpoint, wait until it is gone, and check no container is left behind."""
        try:
            self.sm.delete_endpoint(EndpointName=name)
        except ClientError as exc:
            if "Could not find" not in str(exc):
                raise
        self.sm.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 90}
        )
        assert self.leftovers(name) == []
