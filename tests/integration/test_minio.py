"""S3 is any S3 endpoint (DESIGN.md decision 3), checked against a real MinIO.

* The store contract the emulator relies on (``emulator.s3.S3Store``: buckets, objects,
  listings, multipart transfers, errors), run against both the embedded store and MinIO.
* The emulator configured with ``SMEMU_S3_ENDPOINT`` = MinIO: a training job reads its
  channel from and writes its artifacts to MinIO, an endpoint serves a model from it, nothing
  goes to the embedded store, and a job whose output bucket is missing is not given one.

MinIO is the pinned server scripts/build-minio builds from its Go module, run as a plain
process on 127.0.0.1 (no image needed). The tests skip, loudly, only when it cannot be built.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig

from emulator.config import Settings
from emulator.pytest_plugin import MinioProcess, S3Endpoint, minio_binary
from emulator.s3 import S3Store
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


@pytest.fixture(params=["embedded", "minio"])
def store(request: pytest.FixtureRequest) -> S3Store:
    """The emulator's own S3 access (``S3Store``) for each kind of store."""
    if request.param == "embedded":
        settings: Settings = request.getfixturevalue("emulator_settings")
        request.getfixturevalue("emulator")
        if settings.s3_endpoint:
            pytest.skip("the session emulator itself uses an external S3")
        return S3Store(settings)
    endpoint: S3Endpoint = request.getfixturevalue("minio")
    return S3Store(Settings(s3_endpoint=endpoint.url, s3_access_key=endpoint.access_key,
                            s3_secret_key=endpoint.secret_key))


@pytest.fixture()
def fresh_bucket(store: S3Store) -> Iterator[str]:
    name = unique_name("contract")
    store.client().create_bucket(Bucket=name)
    yield name
    client = store.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys})
    client.delete_bucket(Bucket=name)


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response["Error"]["Code"])


# -- the store contract ----------------------------------------------------------------------


def test_bucket_lifecycle(store: S3Store) -> None:
    client = store.client()
    name = unique_name("life")
    client.create_bucket(Bucket=name)
    client.head_bucket(Bucket=name)
    assert name in [b["Name"] for b in client.list_buckets()["Buckets"]]
    try:  # us-east-1 answers 200 to re-creating your own bucket (AWS and moto); MinIO says so
        client.create_bucket(Bucket=name)
    except botocore.exceptions.ClientError as exists:
        assert _code(exists) == "BucketAlreadyOwnedByYou"
    client.delete_bucket(Bucket=name)
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        client.head_bucket(Bucket=name)
    assert _code(gone.value) in ("404", "NoSuchBucket")


def test_put_get_with_metadata_and_ranges(store: S3Store, fresh_bucket: str) -> None:
    client = store.client()
    body = bytes(range(256)) * 40
    client.put_object(Bucket=fresh_bucket, Key="dir/blob.bin", Body=body,
                      ContentType="application/x-test", Metadata={"origin": "contract"})
    got = client.get_object(Bucket=fresh_bucket, Key="dir/blob.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"origin": "contract"}
    assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    part = client.get_object(Bucket=fresh_bucket, Key="dir/blob.bin", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert client.head_object(Bucket=fresh_bucket, Key="dir/blob.bin")["ContentLength"] == len(body)
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        client.get_object(Bucket=fresh_bucket, Key="dir/none")
    assert _code(missing.value) == "NoSuchKey"


def test_list_with_prefix_delimiter_and_pages(store: S3Store, fresh_bucket: str) -> None:
    client = store.client()
    keys = [f"train/part-{i:02d}.csv" for i in range(7)] + ["train/sub/a.csv", "test/x.csv"]
    for key in keys:
        client.put_object(Bucket=fresh_bucket, Key=key, Body=key.encode())
    listed = []
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=fresh_bucket, Prefix="train/", PaginationConfig={"PageSize": 3})
    page_count = 0
    for page in pages:
        page_count += 1
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert listed == sorted(k for k in keys if k.startswith("train/"))
    assert page_count == 3
    top = client.list_objects_v2(Bucket=fresh_bucket, Prefix="train/", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["train/sub/"]
    assert len(top["Contents"]) == 7
    roots = client.list_objects_v2(Bucket=fresh_bucket, Delimiter="/")
    assert sorted(p["Prefix"] for p in roots["CommonPrefixes"]) == ["test/", "train/"]


def test_managed_multipart_transfer(store: S3Store, fresh_bucket: str, tmp_path: Path) -> None:
    """What artifacts and channels use: s3transfer's parallel multipart upload and download."""
    source = tmp_path / "big.bin"
    block = os.urandom(MiB)
    with source.open("wb") as handle:
        for i in range(12):
            handle.write(block[i:] + block[:i])
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    client = store.client()
    client.upload_file(str(source), fresh_bucket, "model/big.bin", Config=config)
    head = client.head_object(Bucket=fresh_bucket, Key="model/big.bin")
    assert head["ContentLength"] == 12 * MiB
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # 5 + 5 + 2 MiB parts
    target = tmp_path / "back.bin"
    client.download_file(fresh_bucket, "model/big.bin", str(target), Config=config)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()


def test_low_level_multipart_and_abort(store: S3Store, fresh_bucket: str) -> None:
    client = store.client()
    upload = client.create_multipart_upload(Bucket=fresh_bucket, Key="mp/obj")["UploadId"]
    first, second = b"a" * (5 * MiB), b"tail"
    parts = []
    for number, data in enumerate((first, second), start=1):
        etag = client.upload_part(Bucket=fresh_bucket, Key="mp/obj", UploadId=upload,
                                  PartNumber=number, Body=data)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    listed = client.list_parts(Bucket=fresh_bucket, Key="mp/obj", UploadId=upload)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    client.complete_multipart_upload(Bucket=fresh_bucket, Key="mp/obj", UploadId=upload,
                                     MultipartUpload={"Parts": parts})
    assert client.get_object(Bucket=fresh_bucket, Key="mp/obj")["Body"].read() == first + second

    aborted = client.create_multipart_upload(Bucket=fresh_bucket, Key="mp/aborted")["UploadId"]
    client.upload_part(Bucket=fresh_bucket, Key="mp/aborted", UploadId=aborted, PartNumber=1, Body=b"x")
    client.abort_multipart_upload(Bucket=fresh_bucket, Key="mp/aborted", UploadId=aborted)
    uploads = client.list_multipart_uploads(Bucket=fresh_bucket).get("Uploads", [])
    assert aborted not in [u["UploadId"] for u in uploads]
    with pytest.raises(botocore.exceptions.ClientError):
        client.head_object(Bucket=fresh_bucket, Key="mp/aborted")


def test_copy_and_batch_delete(store: S3Store, fresh_bucket: str) -> None:
    client = store.client()
    client.put_object(Bucket=fresh_bucket, Key="src/a", Body=b"payload")
    client.copy_object(Bucket=fresh_bucket, Key="dst/a", CopySource={"Bucket": fresh_bucket, "Key": "src/a"})
    assert client.get_object(Bucket=fresh_bucket, Key="dst/a")["Body"].read() == b"payload"
    result = client.delete_objects(Bucket=fresh_bucket, Delete={"Objects": [{"Key": "src/a"}, {"Key": "dst/a"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["dst/a", "src/a"]
    assert client.list_objects_v2(Bucket=fresh_bucket).get("KeyCount") == 0


def test_a_missing_bucket_is_an_error_not_created(store: S3Store, tmp_path: Path) -> None:
    """Writes to a bucket that does not exist fail as on AWS; nothing creates it on the way."""
    client = store.client()
    name = unique_name("missing")
    with pytest.raises(botocore.exceptions.ClientError) as put:
        client.put_object(Bucket=name, Key="k", Body=b"x")
    assert _code(put.value) == "NoSuchBucket"
    with pytest.raises(botocore.exceptions.ClientError) as listing:
        client.list_objects_v2(Bucket=name)
    assert _code(listing.value) == "NoSuchBucket"
    small = tmp_path / "f"
    small.write_bytes(b"x")
    with pytest.raises(boto3.exceptions.S3UploadFailedError, match="NoSuchBucket"):
        client.upload_file(str(small), name, "k")
    assert name not in [b["Name"] for b in client.list_buckets()["Buckets"]]


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
    # Nothing went to the embedded store on the edge port.
    assert bucket not in [b["Name"] for b in on_minio["embedded_s3"].list_buckets()["Buckets"]]


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
