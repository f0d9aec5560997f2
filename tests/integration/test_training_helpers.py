"""Shared pieces of the training integration tests (no tests here).

Fixtures are imported by name into the test modules that use them. Every wait is a poll of
DescribeTrainingJob (or Docker) against a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import docker
from tests.conftest import unique_name
from tests.integration.sample_images import build_sample_image

TERMINAL = ("Completed", "Failed", "Stopped")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A docker-py client, to check what the emulator left behind."""
    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def training_image() -> str:
    """The reference training image from sample_containers/training."""
    return build_sample_image("training")


@pytest.fixture()
def training_service(emulator: Any) -> Iterator[Any]:
    """The session emulator's TrainingService, with its timing knobs restored after the test."""
    from emulator.training.service import TrainingService

    service = next(s for s in emulator.platform.services if isinstance(s, TrainingService))
    saved = (service.stop_grace_seconds, service.checkpoint_sync_seconds, service.restart_delay_seconds)
    try:
        yield service
    finally:
        service.stop_grace_seconds, service.checkpoint_sync_seconds, service.restart_delay_seconds = saved


def job_request(name: str, image: str, role_arn: str, bucket: str, **overrides: Any) -> dict[str, Any]:
    """A CreateTrainingJob request for the sample trainer; ``overrides`` replace top-level members."""
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": role_arn,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        "HyperParameters": {"epochs": "1"},
    }
    request.update(overrides)
    return request


def s3_channel(name: str, uri: str, **extra: Any) -> dict[str, Any]:
    """An S3Prefix channel; ``extra`` keys of S3DataSource are given in ``source`` (a dict)."""
    source = {"S3DataType": "S3Prefix", "S3Uri": uri, **extra.pop("source", {})}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, **extra}


def wait_for(sagemaker_client: Any, name: str, accept: Callable[[dict[str, Any]], bool],
             timeout: float = 90.0, what: str = "the expected state") -> dict[str, Any]:
    """Poll DescribeTrainingJob until ``accept(description)``; fail naming the last state seen."""
    deadline = time.monotonic() + timeout
    described: dict[str, Any] = {}
    while time.monotonic() < deadline:
        described = sagemaker_client.describe_training_job(TrainingJobName=name)
        if accept(described):
            return described
        time.sleep(0.1)
    raise AssertionError(
        f"training job {name} did not reach {what} within {timeout} s; last: "
        f"{described.get('TrainingJobStatus')}/{described.get('SecondaryStatus')} "
        f"{described.get('FailureReason', '')}"
    )


def wait_terminal(sagemaker_client: Any, name: str, timeout: float = 90.0) -> dict[str, Any]:
    """The description once the job is Completed, Failed or Stopped."""
    return wait_for(sagemaker_client, name, lambda d: d["TrainingJobStatus"] in TERMINAL, timeout, "a final status")


def wait_secondary(sagemaker_client: Any, name: str, secondary: str, timeout: float = 60.0) -> dict[str, Any]:
    """The description once SecondaryStatus is ``secondary``."""
    return wait_for(sagemaker_client, name, lambda d: d["SecondaryStatus"] == secondary, timeout, secondary)


def leftovers(client: docker.DockerClient, job_name: str) -> list[str]:
    """Containers, networks and volumes still labelled with the job's name."""
    label = {"label": f"smemu.name={job_name}"}
    found = [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
    found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    return found


def tar_members(s3_client: Any, bucket: str, key: str) -> dict[str, bytes]:
    """Every file of a .tar.gz object in S3, by member name."""
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def model_report(s3_client: Any, bucket: str, job_name: str) -> dict[str, Any]:
    """The sample trainer's model.json from the job's model.tar.gz."""
    members = tar_members(s3_client, bucket, f"output/{job_name}/output/model.tar.gz")
    return dict(json.loads(members["model.json"]))


def log_messages(logs_client: Any, job_name: str) -> dict[str, list[str]]:
    """Stream name -> messages, for every stream of the job in /aws/sagemaker/TrainingJobs."""
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs_client.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/",
                                               orderBy="LogStreamName")["logStreams"]
    found = {}
    for stream in streams:
        events = logs_client.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                            startFromHead=True)["events"]
        found[stream["logStreamName"]] = [e["message"] for e in events]
    return found


def wait_log_line(logs_client: Any, job_name: str, text: str, timeout: float = 60.0) -> None:
    """Poll CloudWatch Logs until some line of the job contains ``text`` (e.g. the trainer is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for lines in log_messages(logs_client, job_name).values() for line in lines):
            return
        time.sleep(0.1)
    raise AssertionError(f"no log line of {job_name} contained {text!r} within {timeout} s")


__all__ = ["docker_client", "training_image", "training_service", "unique_name"]
