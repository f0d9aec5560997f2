"""The status hold (gateway/hold.py): a quick resource is settled at the caller's first describe,
while everyone else still sees AWS's status sequence, and the record's times stay true.

The session emulator runs with the hold off (conftest); these tests turn it on for themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import unique_name
from tests.integration.test_training_helpers import job_request, s3_channel, wait_secondary

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]


@pytest.fixture()
def hold(emulator: Any) -> Iterator[Any]:
    """The session emulator's hold, on for one test (bound set by the test), off again afterwards."""
    control_hold = emulator.app.control.hold
    previous = control_hold.bound_seconds
    try:
        yield control_hold
    finally:
        control_hold.bound_seconds = previous


@pytest.mark.one_store
def test_a_quick_training_job_is_complete_at_the_first_describe(
        hold: Any, sagemaker_client: Any, s3_client: Any, bucket: str, role_arn: str, training_image: str) -> None:
    hold.bound_seconds = 60
    s3_client.put_object(Bucket=bucket, Key="train/a.csv", Body=b"1,2\n")
    name = unique_name("held")
    request = job_request(name, training_image, role_arn, bucket,
                          InputDataConfig=[s3_channel("train", f"s3://{bucket}/train/")])
    seen_by_others: list[str] = []
    created = threading.Event()

    def watch() -> None:  # another client polling meanwhile sees the real sequence
        while not created.is_set():
            try:
                job = sagemaker_client.describe_training_job(TrainingJobName=name)
            except ClientError:
                continue
            seen_by_others.append(job["SecondaryStatus"])
            created.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        sagemaker_client.create_training_job(**request)
    finally:
        created.set()
        watcher.join()

    job = sagemaker_client.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    assert "Training" in seen_by_others
    transitions = job["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    starts = [t["StartTime"] for t in transitions]
    assert job["CreationTime"] <= starts[0] and starts == sorted(starts) and starts[-1] <= job["TrainingEndTime"]


@pytest.mark.one_store
def test_a_long_job_is_answered_at_the_bound_and_a_stop_waits_for_stopped(
        hold: Any, sagemaker_client: Any, bucket: str, role_arn: str, training_image: str) -> None:
    hold.bound_seconds = 1
    name = unique_name("held-long")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, HyperParameters={"epochs": "1", "sleep_seconds": "300"}))
    assert sagemaker_client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    wait_secondary(sagemaker_client, name, "Training")

    hold.bound_seconds = 60
    sagemaker_client.stop_training_job(TrainingJobName=name)  # the sample trainer exits on SIGTERM
    assert sagemaker_client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopped"


@pytest.mark.one_store
def test_an_endpoint_is_in_service_at_the_first_describe_and_gone_after_delete(
        hold: Any, sagemaker_client: Any, role_arn: str) -> None:
    from tests.integration.sample_images import build_sample_image

    hold.bound_seconds = 60
    name = unique_name("held-ep")
    sagemaker_client.create_model(ModelName=name, ExecutionRoleArn=role_arn,
                                  PrimaryContainer={"Image": build_sample_image("serving")})
    sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sagemaker_client.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert sagemaker_client.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"

    sagemaker_client.delete_endpoint(EndpointName=name)
    with pytest.raises(ClientError) as raised:
        sagemaker_client.describe_endpoint(EndpointName=name)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    sagemaker_client.delete_endpoint_config(EndpointConfigName=name)
    sagemaker_client.delete_model(ModelName=name)
