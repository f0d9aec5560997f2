"""Instance types on a real engine: the catalogue's memory and vCPUs become container limits
(an allocation past the instance's memory is OOM-killed with SageMaker's reason),
``SMEMU_RESOURCE_LIMITS=0`` turns them off, and a GPU type on a machine without the NVIDIA
runtime is refused with AWS's quota wording, or runs on CPU when the user chose that."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.instances import instance_type
from tests.conftest import unique_name
from tests.integration.test_training_helpers import (
    job_request,
    leftovers,
    model_report,
    wait_terminal,
)

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]

GIB = 1024**3


@contextlib.contextmanager
def overridden(emulator: Any, **changes: Any) -> Iterator[None]:
    """The running emulator with some settings changed, as if started with other SMEMU_* values."""
    platform = emulator.platform
    saved = platform.settings
    platform.settings = saved.with_overrides(**changes)
    try:
        yield
    finally:
        platform.settings = saved


@pytest.fixture(scope="module")
def engine_has_gpus(docker_client: Any) -> bool:
    return "nvidia" in (docker_client.info().get("Runtimes") or {})


def _host_config(docker_client: Any, job_name: str, timeout: float = 60.0) -> dict[str, Any]:
    """HostConfig of the job's running container, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = docker_client.containers.list(filters={"label": f"smemu.name={job_name}", "status": "running"})
        if running:
            return dict(running[0].attrs["HostConfig"])
        time.sleep(0.1)
    raise AssertionError(f"no running container of {job_name} within {timeout} s")


def _sleeping_job(sagemaker_client: Any, docker_client: Any, bucket: str, role_arn: str,
                  image: str, instance: str) -> tuple[str, dict[str, Any]]:
    """Start a job that sleeps, read its container's HostConfig, then stop it."""
    name = unique_name("limits")
    sagemaker_client.create_training_job(**job_request(
        name, image, role_arn, bucket, HyperParameters={"sleep_seconds": "60"},
        ResourceConfig={"InstanceType": instance, "InstanceCount": 1, "VolumeSizeInGB": 1}))
    config = _host_config(docker_client, name)
    sagemaker_client.stop_training_job(TrainingJobName=name)
    assert wait_terminal(sagemaker_client, name)["TrainingJobStatus"] == "Stopped"
    return name, config


def test_containers_get_the_catalogue_memory_and_vcpus(sagemaker_client: Any, docker_client: Any,
                                                       bucket: str, role_arn: str, training_image: str,
                                                       training_service: Any) -> None:
    training_service.stop_grace_seconds = 2
    name, config = _sleeping_job(sagemaker_client, docker_client, bucket, role_arn, training_image,
                                 "ml.c5.xlarge")
    spec = instance_type("ml.c5.xlarge")
    assert (spec.vcpus, spec.memory_gib) == (4, 8)
    assert config["Memory"] == 8 * GIB and config["MemorySwap"] == 8 * GIB, "hard limit, no swap"
    cores = docker_client.info()["NCPU"]
    assert config["NanoCpus"] == int(min(4, cores) * 1e9), "the type's vCPUs, clamped to this machine's cores"
    assert not config.get("DeviceRequests")
    assert leftovers(docker_client, name) == []


def test_resource_limits_switch_turns_limits_off(emulator: Any, sagemaker_client: Any,
                                                 docker_client: Any, bucket: str, role_arn: str, training_image: str,
                                                 training_service: Any) -> None:
    training_service.stop_grace_seconds = 2
    with overridden(emulator, resource_limits=False):  # SMEMU_RESOURCE_LIMITS=0
        _name, config = _sleeping_job(sagemaker_client, docker_client, bucket, role_arn, training_image,
                                      "ml.t3.medium")
    assert config["Memory"] == 0 and config["NanoCpus"] == 0


def test_allocating_past_the_instance_memory_is_oom_killed(sagemaker_client: Any, bucket: str, role_arn: str,
                                                           training_image: str, docker_client: Any) -> None:
    """ml.t3.medium has 4 GiB: a trainer that touches 4.3 GiB is killed as it would be on AWS."""
    name = unique_name("oom-real")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, HyperParameters={"allocate_mb": "4400"},
        ResourceConfig={"InstanceType": "ml.t3.medium", "InstanceCount": 1, "VolumeSizeInGB": 1}))
    job = wait_terminal(sagemaker_client, name, timeout=180)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"] == (
        "OutOfMemoryError: Please use an instance type with more memory, or reduce the size of job data processed "
        "on an instance. (algo-1 was killed for exceeding the 4 GiB of ml.t3.medium.)")
    assert leftovers(docker_client, name) == []


def test_gpu_type_without_nvidia_runtime_is_refused_at_create(sagemaker_client: Any, bucket: str, role_arn: str,
                                                              training_image: str, engine_has_gpus: bool) -> None:
    if engine_has_gpus:
        pytest.skip("this engine has the NVIDIA runtime (scripts/gpu-smoke covers GPU runs)")
    name = unique_name("gpu-none")
    with pytest.raises(ClientError) as caught:
        sagemaker_client.create_training_job(**job_request(
            name, training_image, role_arn, bucket,
            ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1}))
    error = caught.value.response["Error"]
    assert error["Code"] == "ResourceLimitExceeded"
    assert error["Message"].startswith(
        "The account-level service limit 'ml.g5.xlarge for training job usage' is 0 Instances, with current "
        "utilization of 0 Instances and a request delta of 1 Instances.")
    assert "no NVIDIA container runtime" in error["Message"] and "SMEMU_GPU_FALLBACK=cpu" in error["Message"]
    with pytest.raises(ClientError) as missing:
        sagemaker_client.describe_training_job(TrainingJobName=name)
    assert missing.value.response["Error"]["Code"] == "ValidationException", "a refused job is not recorded"


def test_gpu_endpoint_without_nvidia_runtime_is_refused_at_create(sagemaker_client: Any, role_arn: str,
                                                                  training_image: str, engine_has_gpus: bool) -> None:
    if engine_has_gpus:
        pytest.skip("this engine has the NVIDIA runtime")
    model, config, endpoint = unique_name("gpu-model"), unique_name("gpu-config"), unique_name("gpu-ep")
    sagemaker_client.create_model(ModelName=model, ExecutionRoleArn=role_arn,
                                  PrimaryContainer={"Image": training_image})
    sagemaker_client.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": 2}])
    try:
        with pytest.raises(ClientError) as caught:
            sagemaker_client.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        error = caught.value.response["Error"]
        assert error["Code"] == "ResourceLimitExceeded"
        assert "'ml.g5.2xlarge for endpoint usage' is 0 Instances" in error["Message"]
        assert "request delta of 2 Instances" in error["Message"]
    finally:
        sagemaker_client.delete_endpoint_config(EndpointConfigName=config)
        sagemaker_client.delete_model(ModelName=model)


def test_cpu_fallback_runs_a_gpu_type_without_gpus(emulator: Any, sagemaker_client: Any, s3_client: Any, bucket: str,
                                                   role_arn: str, training_image: str, docker_client: Any,
                                                   engine_has_gpus: bool) -> None:
    if engine_has_gpus:
        pytest.skip("this engine has the NVIDIA runtime: the job would get a GPU")
    name = unique_name("gpu-cpu")
    with overridden(emulator, gpu_fallback="cpu"):  # SMEMU_GPU_FALLBACK=cpu
        sagemaker_client.create_training_job(**job_request(
            name, training_image, role_arn, bucket,
            ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1}))
        job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    report = model_report(s3_client, bucket, name)
    assert report["resource_config"]["current_instance_type"] == "ml.g5.xlarge"
    assert "NVIDIA_VISIBLE_DEVICES" not in report["env"]
    assert leftovers(docker_client, name) == []
