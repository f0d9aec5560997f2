"""Endpoint behaviour that depends on deadlines or on the emulator process itself.

These tests run their own emulator (not the session's) with short deadlines
(``TUNED_DEADLINES``: 2 s invocation timeout, 6 s startup health check, 2 s serverless
idle time), so a timeout or a never-healthy container costs seconds rather than minutes,
and the restart test stops one emulator and starts another on the same home.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import docker
from emulator.config import Settings, load_settings
from emulator.server import EmulatorServer
from tests.conftest import create_sagemaker_role, free_port, make_client, unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import (
    TUNED_DEADLINES,
    Endpoints,
    containers_of,
    docker_client,
    poll,
)

_S3_VARIABLES = ("SMEMU_S3_ENDPOINT", "SMEMU_S3_ACCESS_KEY", "SMEMU_S3_SECRET_KEY", "SMEMU_BASE_IMAGE")


def tuned_settings(home: Path, port: int) -> Settings:
    """The environment's S3 settings (as the session emulator has them), short deadlines."""
    base = load_settings({k: v for k, v in os.environ.items() if k in _S3_VARIABLES})
    return dataclasses.replace(base, home=home, port=port, host="127.0.0.1", **TUNED_DEADLINES)


class Emulator:
    """An emulator of our own, with clients pointed at it."""

    def __init__(self, settings: Settings) -> None:
        self.server = EmulatorServer(settings).start()
        self.url = f"http://127.0.0.1:{settings.port}"
        self.sagemaker = make_client("sagemaker", self.url)
        self.runtime = make_client("sagemaker-runtime", self.url, read_timeout=30)
        self.s3 = make_client("s3", self.url) if not settings.s3_endpoint else None
        self.role_arn = create_sagemaker_role(self.url)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    """The Docker engine (the module is skipped when none answers)."""
    return docker_client()


@pytest.fixture(scope="module")
def serving_image(engine: docker.DockerClient) -> str:
    """The sample serving image, built once per content."""
    return build_sample_image("serving", client=engine)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator with short deadlines, for the whole module."""
    emulator = Emulator(tuned_settings(tmp_path_factory.mktemp("tuned-home"), free_port()))
    try:
        yield emulator
    finally:
        emulator.stop()


def _endpoints(emulator: Emulator, image: str, engine: docker.DockerClient) -> Endpoints:
    s3 = emulator.s3 or make_client("s3", emulator.url)
    bucket = unique_name("tuned")
    s3.create_bucket(Bucket=bucket)
    return Endpoints(emulator.sagemaker, s3, bucket, image, engine, emulator.role_arn)


def test_slow_container_times_out_as_model_error(
    tuned: Emulator, serving_image: str, engine: docker.DockerClient
) -> None:
    with _endpoints(tuned, serving_image, engine) as endpoints:
        name = endpoints.endpoint(endpoints.config(("AllTraffic", endpoints.model("slow"), 1.0, 1)))
        started = time.monotonic()
        with pytest.raises(ClientError) as timed_out:
            tuned.runtime.invoke_endpoint(EndpointName=name, Body=b'{"sleep": 6}')
        elapsed = time.monotonic() - started
        response = timed_out.value.response
        assert response["Error"]["Code"] == "ModelError"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
        assert response["OriginalStatusCode"] == 0
        assert (
            "Your invocation timed out while waiting for a response from container primary"
            in (response["Error"]["Message"])
        )
        assert 2.0 <= elapsed < 5.0, elapsed  # the configured 2 s, not the container's 6 s
        answer = tuned.runtime.invoke_endpoint(EndpointName=name, Body=b"{}")
        assert json.loads(answer["Body"].read())["model"] == "slow"


def test_unhealthy_or_exiting_containers_fail_the_endpoint(
    tuned: Emulator, serving_image: str, engine: docker.DockerClient
) -> None:
    with _endpoints(tuned, serving_image, engine) as endpoints:
        sick = endpoints.endpoint(
            endpoints.config(("AllTraffic", endpoints.model(env={"SMEMU_SAMPLE_PING_FAIL": "1"}), 1.0, 1)),
            wait=False,
        )
        crash = endpoints.endpoint(
            endpoints.config(
                ("AllTraffic", endpoints.model(env={"SMEMU_SAMPLE_EXIT_ON_START": "1"}), 1.0, 1)
            ),
            wait=False,
        )
        with pytest.raises(Exception, match="Failed"):
            tuned.sagemaker.get_waiter("endpoint_in_service").wait(
                EndpointName=crash, WaiterConfig={"Delay": 1}
            )
        crashed = tuned.sagemaker.describe_endpoint(EndpointName=crash)
        assert crashed["EndpointStatus"] == "Failed"
        assert crashed["FailureReason"].startswith(
            "The primary container for production variant AllTraffic did not pass the ping health check."
        )
        assert "exited with code 3" in crashed["FailureReason"]
        assert "SMEMU_SAMPLE_EXIT_ON_START=1: exiting with code 3" in crashed["FailureReason"]
        record = endpoints.status(sick, "Failed", timeout=30)
        assert (
            "ContainerStartupHealthCheckTimeoutInSeconds (6 s); last answer: HTTP 503"
            in record["FailureReason"]
        )
        assert containers_of(engine, sick) == [] and containers_of(engine, crash) == []


def test_serverless_variant_idles_out_and_cold_starts(
    tuned: Emulator, serving_image: str, engine: docker.DockerClient
) -> None:
    with _endpoints(tuned, serving_image, engine) as endpoints:
        model = endpoints.model("serverless")
        config = unique_name("config")
        tuned.sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1},
                }
            ],
        )
        name = endpoints.endpoint(config)
        variant = tuned.sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        assert variant["CurrentServerlessConfig"]["MemorySizeInMB"] == 1024
        running = poll(lambda: engine.containers.list(filters={"label": f"smemu.name={name}"}), 10)
        assert running[0].attrs["HostConfig"]["Memory"] == 1024 * 1024 * 1024
        poll(
            lambda: not engine.containers.list(filters={"label": f"smemu.name={name}"}),
            20,
            what="the idle serverless container to stop",
        )
        answer = tuned.runtime.invoke_endpoint(EndpointName=name, Body=b"{}")  # cold start
        assert json.loads(answer["Body"].read())["model"] == "serverless"
        assert len(engine.containers.list(filters={"label": f"smemu.name={name}"})) == 1


def test_emulator_restart_keeps_serving_an_endpoint(
    tmp_path: Path, serving_image: str, engine: docker.DockerClient
) -> None:
    running = [Emulator(tuned_settings(tmp_path, free_port()))]
    name = ""
    try:
        endpoints = _endpoints(running[0], serving_image, engine)
        name = endpoints.endpoint(endpoints.config(("AllTraffic", endpoints.model("survivor"), 1.0, 1)))
        before = {c.id for c in containers_of(engine, name)}
        running.pop().stop()
        assert {c.id for c in engine.containers.list(filters={"label": f"smemu.name={name}"})} == before
        running.append(Emulator(tuned_settings(tmp_path, free_port())))
        second = running[0]
        assert second.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
        answer = second.runtime.invoke_endpoint(EndpointName=name, Body=b"{}")
        assert json.loads(answer["Body"].read())["model"] == "survivor"
        assert {c.id for c in containers_of(engine, name)} == before  # re-adopted, not restarted
        endpoints.sm = second.sagemaker
        endpoints.delete(name)
    finally:
        for emulator in running:
            emulator.stop()
        for container in containers_of(engine, name) if name else []:
            container.remove(force=True)
