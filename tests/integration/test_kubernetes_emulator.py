"""The emulator with SMEMU_RUNTIME=kubernetes, on the project's local cluster: the same boto3 calls.

A training job: two hosts that reach each other by name, ShardedByS3Key data, the model tar
in S3, logs in CloudWatch, and no pod left afterwards. An endpoint of two instances: each
instance a pod, invocations answered through the emulator, no pod left once it is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.config import Settings
from tests.conftest import create_sagemaker_role, free_port, make_client, unique_name
from tests.integration.sample_images import build_sample_image, wait_until
from tests.integration.test_endpoints_support import model_archive
from tests.integration.test_training_helpers import (
    job_request,
    log_messages,
    s3_channel,
    tar_members,
    wait_terminal,
)

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(2400)]  # the first may build the cluster
pytest_plugins = ["tests.integration.kube_cluster"]


@pytest.fixture(scope="module")
def kube_emulator(kube_settings: Settings) -> Iterator[str]:
    """An emulator of its own whose containers run on the cluster; its edge URL."""
    from emulator.server import EmulatorServer

    server = EmulatorServer(kube_settings.with_overrides(port=free_port(), host="127.0.0.1"))
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_two_hosts_train_on_the_cluster_with_sharded_data(kube_emulator: str, kube_backend: Any) -> None:
    sagemaker, s3, logs = (make_client(s, kube_emulator) for s in ("sagemaker", "s3", "logs"))
    role = create_sagemaker_role(kube_emulator)
    bucket = unique_name("bucket")
    s3.create_bucket(Bucket=bucket)
    for number in range(5):
        s3.put_object(Bucket=bucket, Key=f"shards/part-{number}.txt", Body=f"part {number}\n".encode())
    name = unique_name("kube-2hosts")
    sagemaker.create_training_job(**job_request(
        name, build_sample_image("training"), role, bucket,
        HyperParameters={"peer_check": "1", "peer_timeout_seconds": "60"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 300},
        InputDataConfig=[s3_channel("train", f"s3://{bucket}/shards/",
                                    source={"S3DataDistributionType": "ShardedByS3Key"})]))
    job = wait_terminal(sagemaker, name, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/output/{name}/output/model.tar.gz"

    members = tar_members(s3, bucket, f"output/{name}/output/model.tar.gz")
    reports = {k.split("/")[1][: -len(".json")]: json.loads(v) for k, v in members.items() if k.startswith("hosts/")}
    assert sorted(reports) == ["algo-1", "algo-2"]
    for host, report in reports.items():
        assert report["hostname"] == host
        assert report["resource_config"]["hosts"] == ["algo-1", "algo-2"]
        assert report["peer_check"]["ok"], report["peer_check"]
    assert reports["algo-1"]["peer_check"]["answered"] == {"algo-2": "algo-2"}
    shards = {h: sorted(f["path"] for f in r["channels"]["train"]["files"]) for h, r in reports.items()}
    assert shards == {"algo-1": ["part-0.txt", "part-2.txt", "part-4.txt"], "algo-2": ["part-1.txt", "part-3.txt"]}

    assert sorted(s.split("/")[1].rsplit("-", 1)[0] for s in log_messages(logs, name)) == ["algo-1", "algo-2"]
    assert kube_backend.find({"smemu.name": name}) == []  # every pod removed


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
