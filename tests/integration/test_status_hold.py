"""The status hold (gateway/hold.py): the first describe after a Create finds a quick resource
settled, while every other describe sees AWS's status sequence, and the record's times stay true.

The session emulator runs with the hold off (conftest); these tests turn it on for themselves.
"""

from __future__ import annotations

import threading
import time
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


def _until(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.01)


@pytest.mark.one_store
def test_the_first_describe_finds_a_quick_job_complete_and_others_see_every_status(
        hold: Any, sagemaker_client: Any, s3_client: Any, bucket: str, role_arn: str, training_image: str) -> None:
    hold.bound_seconds = 60
    s3_client.put_object(Bucket=bucket, Key="train/a.csv", Body=b"1,2\n")
    name = unique_name("held")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, InputDataConfig=[s3_channel("train", f"s3://{bucket}/train/")],
        HyperParameters={"epochs": "3", "epoch_seconds": "0.5"}))
    first: dict[str, Any] = {}
    held = threading.Thread(target=lambda: first.update(sagemaker_client.describe_training_job(TrainingJobName=name)))
    held.start()
    try:
        _until(lambda: not hold.pending("DescribeTrainingJob", name), "the first describe")
        seen: list[str] = []  # everyone else meanwhile: answered at once, with the real sequence
        while not first:
            seen.append(sagemaker_client.describe_training_job(TrainingJobName=name)["SecondaryStatus"])
            time.sleep(0.02)
    finally:
        held.join()

    assert first["TrainingJobStatus"] == "Completed"
    assert "Training" in seen
    transitions = first["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    starts = [t["StartTime"] for t in transitions]
    assert first["CreationTime"] <= starts[0] and starts == sorted(starts) and starts[-1] <= first["TrainingEndTime"]


@pytest.mark.one_store
def test_a_long_job_is_described_at_the_bound_and_the_describe_after_a_stop_waits_for_stopped(
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
def test_a_waiter_finds_the_endpoint_in_service_at_its_first_call_and_gone_after_delete(
        hold: Any, sagemaker_client: Any, role_arn: str) -> None:
    from tests.integration.sample_images import build_sample_image

    hold.bound_seconds = 60
    name = unique_name("held-ep")
    sagemaker_client.create_model(ModelName=name, ExecutionRoleArn=role_arn,
                                  PrimaryContainer={"Image": build_sample_image("serving")})
    sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sagemaker_client.create_endpoint(EndpointName=name, EndpointConfigName=name)
    # one attempt: the waiter's first DescribeEndpoint must already find it InService
    sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName=name,
                                                            WaiterConfig={"Delay": 1, "MaxAttempts": 1})
    assert sagemaker_client.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"

    sagemaker_client.delete_endpoint(EndpointName=name)
    with pytest.raises(ClientError) as raised:
        sagemaker_client.describe_endpoint(EndpointName=name)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    sagemaker_client.delete_endpoint_config(EndpointConfigName=name)
    sagemaker_client.delete_model(ModelName=name)
