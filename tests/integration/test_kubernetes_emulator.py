"""The emulator with SMEMU_RUNTIME=kubernetes, on the project's local cluster: the same boto3 calls.

An endpoint of two instances: each instance a pod, invocations answered through the emulator,
no pod left once it is deleted; an emulator restarted adopts its endpoint's pod. The training,
hosting and multi-model scenarios themselves run on both backends (tests/integration/runtimes.py:
test_training_jobs, test_training_multihost, test_endpoints, test_multi_model_endpoints).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.config import Settings
from tests.conftest import create_sagemaker_role, free_port, make_client, unique_name
from tests.integration.sample_images import build_sample_image, wait_until
from tests.integration.test_endpoints_support import model_archive

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(2400)]  # the first may build the cluster
pytest_plugins = ["tests.integration.kube_cluster"]


@pytest.fixture(scope="module")
def kube_emulator(kube_server: Any) -> str:
    """The session's emulator on the cluster; its edge URL."""
    return f"http://127.0.0.1:{kube_server.port}"


def _endpoint(url: str, count: int) -> str:
    """An InService endpoint of ``count`` instances of the sample serving image; its name."""
    sagemaker, s3 = make_client("sagemaker", url), make_client("s3", url)
    role = create_sagemaker_role(url)
    bucket, model, name = unique_name("bucket"), unique_name("model"), unique_name("kube-ep")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=model_archive("on-kubernetes"))
    sagemaker.create_model(ModelName=model, ExecutionRoleArn=role, PrimaryContainer={
        "Image": build_sample_image("serving"), "ModelDataUrl": f"s3://{bucket}/model.tar.gz"})
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": count,
        "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    described = wait_until(lambda: (d := sagemaker.describe_endpoint(EndpointName=name))["EndpointStatus"]
                           in ("InService", "Failed") and d, 180, "InService")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return name


def _invoke(url: str, name: str) -> dict[str, Any]:
    runtime = make_client("sagemaker-runtime", url, read_timeout=60)
    answer = runtime.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    return dict(json.loads(answer["Body"].read()))


def test_a_two_instance_endpoint_serves_from_pods_and_leaves_none(kube_emulator: str, kube_backend: Any) -> None:
    name = _endpoint(kube_emulator, 2)
    pods = kube_backend.find({"smemu.kind": "endpoint", "smemu.name": name})
    assert len(pods) == 2 and all(pod.running for pod in pods)
    for _ in range(4):
        assert _invoke(kube_emulator, name)["model"] == "on-kubernetes"

    make_client("sagemaker", kube_emulator).delete_endpoint(EndpointName=name)
    wait_until(lambda: kube_backend.find({"smemu.name": name}) == [], 60, "every pod of the endpoint removed")


def test_a_restarted_emulator_adopts_its_endpoints_pods(kube_settings: Settings, kube_backend: Any,
                                                        tmp_path: Any) -> None:
    from emulator.server import EmulatorServer

    settings = kube_settings.with_overrides(port=free_port(), host="127.0.0.1", home=tmp_path / "home")
    url = f"http://127.0.0.1:{settings.port}"
    server = EmulatorServer(settings).start()
    try:
        name = _endpoint(url, 1)
        before = [pod.id for pod in kube_backend.find({"smemu.name": name})]
    finally:
        server.stop()  # endpoints' containers outlive the emulator, to be adopted by the next start
    server = EmulatorServer(settings).start()
    try:
        described = make_client("sagemaker", url).describe_endpoint(EndpointName=name)
        assert described["EndpointStatus"] == "InService"
        assert _invoke(url, name)["model"] == "on-kubernetes"
        assert [pod.id for pod in kube_backend.find({"smemu.name": name})] == before  # the same pod
        make_client("sagemaker", url).delete_endpoint(EndpointName=name)
        wait_until(lambda: kube_backend.find({"smemu.name": name}) == [], 60, "every pod of the endpoint removed")
    finally:
        server.stop()


def test_pipe_mode_is_refused_at_creation_naming_the_runtime(kube_emulator: str) -> None:
    from botocore.exceptions import ClientError

    sagemaker = make_client("sagemaker", kube_emulator)
    role = create_sagemaker_role(kube_emulator)
    name = unique_name("kube-pipe")
    with pytest.raises(ClientError) as training:
        sagemaker.create_training_job(
            TrainingJobName=name, RoleArn=role,
            AlgorithmSpecification={"TrainingImage": build_sample_image("training"), "TrainingInputMode": "Pipe"},
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data/"}}}],
            OutputDataConfig={"S3OutputPath": "s3://bucket/output"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 60})
    error = training.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "Channels train use Pipe input mode" in error["Message"] and "SMEMU_RUNTIME=kubernetes" in error["Message"]
    with pytest.raises(ClientError) as missing:
        sagemaker.describe_training_job(TrainingJobName=name)  # nothing was recorded or started
    assert missing.value.response["Error"]["Code"] == "ValidationException"

    with pytest.raises(ClientError) as processing:
        sagemaker.create_processing_job(
            ProcessingJobName=unique_name("kube-pipe"), RoleArn=role,
            AppSpecification={"ImageUri": build_sample_image("training")},
            ProcessingInputs=[{"InputName": "data", "S3Input": {
                "S3Uri": "s3://bucket/data/", "LocalPath": "/opt/ml/processing/input", "S3DataType": "S3Prefix",
                "S3InputMode": "Pipe"}}],
            ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                   "VolumeSizeInGB": 1}})
    error = processing.value.response["Error"]
    assert error["Code"] == "ValidationException" and "ProcessingInputs data use Pipe input mode" in error["Message"]
