"""An external S3 (``SMEMU_S3_ENDPOINT``), checked end to end against a real MinIO.

The emulator configured with ``SMEMU_S3_ENDPOINT`` = MinIO: a training job reads its channel
from and writes its artifacts to MinIO, an endpoint serves a model from it, the edge port shows
the same objects, and a job whose output bucket is missing is not given one. (The S3 surface
itself, through the edge port, is tests/integration/test_s3_stores.py, for every store.)

MinIO is the pinned server scripts/build-minio builds from its Go module, run as a plain
process on 127.0.0.1 (no image needed). The tests skip, loudly, only when it cannot be built.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from emulator.config import Settings
from emulator.pytest_plugin import MinioProcess, S3Endpoint, minio_binary
from tests.conftest import make_client, unique_name
from tests.integration.sample_images import build_sample_image

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


# -- MinIO -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minio() -> Iterator[S3Endpoint]:
    """A MinIO server for this module, from the cached binary (built once per machine)."""
    binary = minio_binary()
    if binary is None:
        build = subprocess.run([str(REPO / "scripts" / "build-minio"), "--binary-only"],
                               capture_output=True, text=True, check=False)
        binary = minio_binary()
        if binary is None:
            pytest.skip("MinIO UNAVAILABLE: scripts/build-minio could not build the pinned server "
                        f"(exit {build.returncode}):\n{build.stderr[-2000:]}")
    with MinioProcess(binary) as endpoint:
        yield endpoint


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response["Error"]["Code"])


# -- the emulator on MinIO, end to end --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def minio_emulator(minio: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second emulator, in this process, whose S3 is the MinIO server."""
    from emulator.server import EmulatorServer

    settings = Settings(host="127.0.0.1", port=_free_port(), home=tmp_path_factory.mktemp("smemu-minio-home"),
                        s3_endpoint=minio.url, s3_access_key=minio.access_key, s3_secret_key=minio.secret_key)
    server = EmulatorServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def on_minio(minio_emulator: Any, minio: S3Endpoint) -> dict[str, Any]:
    url = f"http://127.0.0.1:{minio_emulator.port}"
    iam = make_client("iam", url)
    role = iam.create_role(RoleName=unique_name("MinioRole"), AssumeRolePolicyDocument=(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": '
        '{"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'))["Role"]["Arn"]
    return {"sm": make_client("sagemaker", url), "runtime": make_client("sagemaker-runtime", url, read_timeout=60),
            "embedded_s3": make_client("s3", url), "s3": minio.client(), "role": role}


def _wait_training(sm: Any, name: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return dict(described)
        assert time.monotonic() < deadline, f"{name} still {described['TrainingJobStatus']} after {timeout} s"
        time.sleep(0.2)


def _training_request(name: str, image: str, role: str, bucket: str, output_bucket: str | None = None) -> dict[str, Any]:
    return {
        "TrainingJobName": name, "RoleArn": role,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{output_bucket or bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        "HyperParameters": {"epochs": "1"},
    }


def test_training_job_reads_and_writes_minio(on_minio: dict[str, Any]) -> None:
    s3, sm = on_minio["s3"], on_minio["sm"]
    bucket = unique_name("minio-train")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2\n3,4\n")
    name = unique_name("minio-job")
    sm.create_training_job(**_training_request(name, build_sample_image("training"), on_minio["role"], bucket))
    described = _wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{bucket}/output/{name}/output/model.tar.gz"
    body = s3.get_object(Bucket=bucket, Key=artifact.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        report = json.load(archive.extractfile("model.json"))  # type: ignore[arg-type]
    assert report["hyperparameters"]["epochs"] == "1"
    assert report["channels"]["train"]["lines"] == 2
    # One endpoint: the edge port shows the same bucket (it relays S3 to MinIO).
    assert bucket in [b["Name"] for b in on_minio["embedded_s3"].list_buckets()["Buckets"]]


def test_missing_output_bucket_fails_the_job_and_is_not_created(on_minio: dict[str, Any]) -> None:
    s3, sm = on_minio["s3"], on_minio["sm"]
    bucket, missing = unique_name("minio-in"), unique_name("minio-nobucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1\n")
    name = unique_name("minio-nobucket-job")
    try:
        sm.create_training_job(**_training_request(name, build_sample_image("training"), on_minio["role"],
                                                   bucket, output_bucket=missing))
    except botocore.exceptions.ClientError as rejected:  # validated up front: as good as failing later
        assert _code(rejected) == "ValidationException"
    else:
        described = _wait_training(sm, name)
        assert described["TrainingJobStatus"] == "Failed"
        assert missing in described["FailureReason"]
    assert missing not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_endpoint_serves_a_model_from_minio(on_minio: dict[str, Any]) -> None:
    s3, sm = on_minio["s3"], on_minio["sm"]
    bucket = unique_name("minio-model")
    s3.create_bucket(Bucket=bucket)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = json.dumps({"name": "from-minio"}).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=bucket, Key="models/model.tar.gz", Body=archive.getvalue())
    model, config, endpoint = unique_name("m"), unique_name("c"), unique_name("e")
    sm.create_model(ModelName=model, ExecutionRoleArn=on_minio["role"], PrimaryContainer={
        "Image": build_sample_image("serving"), "ModelDataUrl": f"s3://{bucket}/models/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    try:
        deadline = time.monotonic() + 90
        while (status := sm.describe_endpoint(EndpointName=endpoint))["EndpointStatus"] == "Creating":
            assert time.monotonic() < deadline, "endpoint still Creating after 90 s"
            time.sleep(0.2)
        assert status["EndpointStatus"] == "InService", status.get("FailureReason")
        answer = on_minio["runtime"].invoke_endpoint(EndpointName=endpoint, Body=b'{"x": 1}',
                                                     ContentType="application/json")
        assert json.loads(answer["Body"].read())["model"] == "from-minio"
    finally:
        sm.delete_endpoint(EndpointName=endpoint)
