"""Managed spot training: a simulated interruption, then a restart that resumes from checkpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import unique_name
from tests.integration.test_training_helpers import (
    job_request,
    leftovers,
    log_messages,
    model_report,
    wait_log_line,
    wait_secondary,
    wait_terminal,
)

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]


def _spot_request(name: str, image: str, role_arn: str, bucket: str, **overrides: Any) -> dict[str, Any]:
    members: dict[str, Any] = {
        "EnableManagedSpotTraining": True,
        "StoppingCondition": {"MaxRuntimeInSeconds": 300, "MaxWaitTimeInSeconds": 600},
        "CheckpointConfig": {"S3Uri": f"s3://{bucket}/checkpoints/{name}"},
        "HyperParameters": {"checkpoint": "1", "epochs": "14", "epoch_seconds": "0.25"},
    }
    return job_request(name, image, role_arn, bucket, **{**members, **overrides})


def test_interrupted_spot_job_resumes_from_its_checkpoint(sagemaker_client: Any, s3_client: Any,
                                                          logs_client: Any, bucket: str, role_arn: str,
                                                          training_image: str, docker_client: Any) -> None:
    name = unique_name("spot")
    sagemaker_client.create_training_job(**_spot_request(
        name, training_image, role_arn, bucket, Tags=[{"Key": "smemu:spot-interruptions", "Value": "2.5"}]))
    job = wait_terminal(sagemaker_client, name)

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Interrupted", "Starting", "Downloading",
                        "Training", "Uploading", "Completed"]
    report = model_report(s3_client, bucket, name)
    assert 0 < report["resumed_from_epoch"] < 14, "the second attempt must start from the synced checkpoint"
    assert report["epochs_completed"] == 14
    state = json.loads(s3_client.get_object(Bucket=bucket, Key=f"checkpoints/{name}/state.json")["Body"].read())
    assert state["epoch"] == 14
    assert job["EnableManagedSpotTraining"] is True
    assert 1 <= job["BillableTimeInSeconds"] <= job["TrainingTimeInSeconds"]
    lines = [line for lines in log_messages(logs_client, name).values() for line in lines]
    assert any(line.startswith("resuming from checkpoint at epoch") for line in lines)
    assert len(log_messages(logs_client, name)) == 1, "one stream per host, kept across the restart"
    assert leftovers(docker_client, name) == []


def test_interrupt_now_and_max_wait_exceeded(sagemaker_client: Any, logs_client: Any, bucket: str,
                                             role_arn: str, training_image: str, training_service: Any) -> None:
    """interrupt_spot_instance() (for the CLI and side APIs) and MaxWaitTimeInSeconds running out."""
    training_service.restart_delay_seconds = 30.0  # capacity would come back after MaxWait: too late
    name = unique_name("spot-wait")
    sagemaker_client.create_training_job(**_spot_request(
        name, training_image, role_arn, bucket, HyperParameters={"sleep_seconds": "60"},
        StoppingCondition={"MaxRuntimeInSeconds": 2, "MaxWaitTimeInSeconds": 4}))
    wait_log_line(logs_client, name, "heartbeat 1")

    training_service.interrupt_spot_instance(name)
    wait_secondary(sagemaker_client, name, "Interrupted")
    job = wait_terminal(sagemaker_client, name)

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Interrupted", "MaxWaitTimeExceeded"]
