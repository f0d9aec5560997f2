"""Faults and bad input: each ends in the status and FailureReason a SageMaker user would see,
with no container, network or volume left behind."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import unique_name
from tests.integration.test_training_helpers import (
    job_request,
    leftovers,
    log_messages,
    s3_channel,
    wait_log_line,
    wait_terminal,
)

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]


def _no_model(s3_client: Any, bucket: str, name: str) -> bool:
    try:
        s3_client.head_object(Bucket=bucket, Key=f"output/{name}/output/model.tar.gz")
    except ClientError:
        return True
    return False


def test_failure_file_becomes_failure_reason(sagemaker_client: Any, s3_client: Any, bucket: str, role_arn: str,
                                             training_image: str, docker_client: Any) -> None:
    name = unique_name("fail-file")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket,
        HyperParameters={"fail": "1", "failure_message": "ValueError: the learning rate must be positive"}))
    job = wait_terminal(sagemaker_client, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"] == "AlgorithmError: ValueError: the learning rate must be positive"
    assert job["SecondaryStatusTransitions"][-1]["StatusMessage"] == "Training job failed"
    assert _no_model(s3_client, bucket, name)
    assert leftovers(docker_client, name) == []


def test_exit_code_without_failure_file(sagemaker_client: Any, bucket: str, role_arn: str,
                                        training_image: str, docker_client: Any) -> None:
    name = unique_name("fail-exit")
    sagemaker_client.create_training_job(**job_request(name, training_image, role_arn, bucket,
                                                       HyperParameters={"exit_code": "3"}))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: See job logs for more information (algo-1 exited with code 3)"
    assert leftovers(docker_client, name) == []


def test_unknown_image(sagemaker_client: Any, bucket: str, role_arn: str, docker_client: Any) -> None:
    """A local image name that does not exist (ECR URIs: tests/integration/test_ecr_iam_jobs.py)."""
    name = unique_name("fail-image")
    image = f"smemu-no-such-image/{name}:v9"
    sagemaker_client.create_training_job(**job_request(name, image, role_arn, bucket))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(f"ClientError: The image '{image}' does not exist on this machine")
    assert "never pulls" in job["FailureReason"]
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Failed"]
    assert "TrainingStartTime" not in job
    assert leftovers(docker_client, name) == []


def test_image_without_a_train_program(sagemaker_client: Any, bucket: str, role_arn: str,
                                       docker_client: Any) -> None:
    name = unique_name("fail-notrain")
    sagemaker_client.create_training_job(**job_request(name, "smemu-base/python:3.11", role_arn, bucket))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: Could not start the training container")
    assert '"train": executable file not found' in job["FailureReason"]
    assert leftovers(docker_client, name) == []


def test_channel_prefix_without_objects(sagemaker_client: Any, bucket: str, role_arn: str,
                                        training_image: str, docker_client: Any) -> None:
    name = unique_name("fail-empty")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, InputDataConfig=[s3_channel("train", f"s3://{bucket}/nothing/")]))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        f'ClientError: Data download failed:No S3 objects found under S3 URL "s3://{bucket}/nothing/"')
    assert f'"{role_arn}" has "s3:ListBucket" permissions on bucket "{bucket}"' in job["FailureReason"]
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Downloading", "Failed"]
    assert leftovers(docker_client, name) == []


def test_container_killed_for_exceeding_instance_memory(sagemaker_client: Any, bucket: str, role_arn: str,
                                                        training_image: str, docker_client: Any) -> None:
    """The smemu:instance-memory-mb tag shrinks the instance to 200 MiB: filling 4 GiB here takes 10 s."""
    name = unique_name("fail-oom")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, HyperParameters={"allocate_mb": "400"},
        ResourceConfig={"InstanceType": "ml.t3.medium", "InstanceCount": 1, "VolumeSizeInGB": 1},
        Tags=[{"Key": "smemu:instance-memory-mb", "Value": "200"}]))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("OutOfMemoryError: Please use an instance type with more memory")
    assert "exceeding its 200 MiB limit" in job["FailureReason"]
    assert leftovers(docker_client, name) == []


def test_container_ignoring_sigterm_is_killed_after_the_grace(sagemaker_client: Any, logs_client: Any,
                                                              bucket: str, role_arn: str, training_image: str,
                                                              training_service: Any, docker_client: Any) -> None:
    training_service.stop_grace_seconds = 2  # AWS waits 120 s; the rule is the same
    name = unique_name("stop-stubborn")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, HyperParameters={"sleep_seconds": "120", "ignore_sigterm": "1"}))
    wait_log_line(logs_client, name, "heartbeat 1")

    stopped_at = time.monotonic()
    sagemaker_client.stop_training_job(TrainingJobName=name)
    job = wait_terminal(sagemaker_client, name)
    took = time.monotonic() - stopped_at

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert 2 <= took < 30, f"SIGKILL should follow SIGTERM after the 2 s grace, took {took:.1f} s"
    lines = [line for lines in log_messages(logs_client, name).values() for line in lines]
    assert "heartbeat 2" in lines, "the container kept running through the grace period"
    assert leftovers(docker_client, name) == []
