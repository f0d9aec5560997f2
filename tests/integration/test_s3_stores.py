"""One S3 suite, through the edge port, against every store (DESIGN.md decision 3).

Each store gets the same tests, driven by clients configured with nothing but
``AWS_ENDPOINT_URL`` (and any credentials): boto3, the AWS CLI, presigned URLs, raw aws-chunked
uploads, and boto3 inside a container signing with its role's temporary credentials.

* ``minio``: the default, MinIO run by the emulator (the session emulator when it uses it);
* ``external``: ``SMEMU_S3_ENDPOINT`` pointing at a MinIO process the tests run;
* ``memory``: moto's in-memory S3 (not durable, but the same S3 surface).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import docker
import pytest
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from emulator.objectstore.chunked import encode_for_test
from emulator.objectstore.signing import sign_for_store
from emulator.runtime.gateway_network import NETWORK_NAME
from tests.conftest import SAGEMAKER_TRUST_POLICY, free_port, make_client, unique_name
from tests.integration.sample_images import TEST_LABELS
from tests.integration.test_container_credentials import build_boto3_image

MiB = 1024 * 1024
STORES = ("minio", "external", "memory")


@dataclass
class Edge:
    """An emulator's edge port and the store behind it."""

    store: str
    url: str
    server: Any

    def client(self, service: str = "s3", **config: Any) -> Any:
        """A client configured only by ``AWS_ENDPOINT_URL`` (plus throwaway credentials)."""
        with _environment(AWS_ENDPOINT_URL=self.url):
            return boto3.session.Session(aws_access_key_id="AKIAANYKEY", aws_secret_access_key="any-secret",
                                         region_name="us-east-1").client(service, config=Config(**config))

    def direct(self) -> Any | None:
        """A client of the store itself (None for moto's, which has no other address)."""
        endpoint = self.server.object_store.endpoint
        if endpoint is None:
            return None
        return boto3.session.Session().client("s3", endpoint_url=endpoint.url, region_name="us-east-1",
                                              aws_access_key_id=endpoint.access_key,
                                              aws_secret_access_key=endpoint.secret_key)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module", params=STORES)
def edge(request: pytest.FixtureRequest, emulator: Any, emulator_settings: Any,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """The session emulator when it uses this store, else an emulator of its own on it."""
    store = request.param
    if emulator_settings.s3_kind == store:
        yield Edge(store, f"http://127.0.0.1:{emulator_settings.port}", emulator)
        return
    from emulator.server import EmulatorServer

    settings = emulator_settings.with_overrides(port=free_port(), home=tmp_path_factory.mktemp(f"s3-{store}"),
                                                s3_store=store, s3_endpoint=None)
    if store == "external":
        minio = request.getfixturevalue("minio_server")
        settings = settings.with_overrides(s3_endpoint=minio.url, s3_access_key=minio.access_key,
                                           s3_secret_key=minio.secret_key)
    server = EmulatorServer(settings).start()
    try:
        yield Edge(store, f"http://127.0.0.1:{settings.port}", server)
    finally:
        server.stop()


@pytest.fixture()
def bucket_on(edge: Edge) -> Iterator[str]:
    name = unique_name("stores")
    client = edge.client()
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objects:
            client.delete_objects(Bucket=name, Delete={"Objects": objects})
    client.delete_bucket(Bucket=name)


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response["Error"]["Code"])


def test_bucket_lifecycle_and_recreating_your_own_bucket(edge: Edge) -> None:
    client = edge.client()
    name = unique_name("life")
    client.create_bucket(Bucket=name)
    client.create_bucket(Bucket=name)  # us-east-1 answers 200 to re-creating your own bucket, as AWS does
    client.head_bucket(Bucket=name)
    assert name in [b["Name"] for b in client.list_buckets()["Buckets"]]
    direct = edge.direct()
    if direct is not None:  # the bucket is in the store itself, not in some layer of ours
        assert name in [b["Name"] for b in direct.list_buckets()["Buckets"]]
    client.delete_bucket(Bucket=name)
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        client.head_bucket(Bucket=name)
    assert _code(gone.value) in ("404", "NoSuchBucket")
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        client.put_object(Bucket=name, Key="k", Body=b"x")
    assert _code(missing.value) == "NoSuchBucket"


def test_put_get_metadata_ranges_and_odd_keys(edge: Edge, bucket_on: str) -> None:
    client = edge.client()
    body = bytes(range(256)) * 40
    keys = ["dir/blob.bin", "with space/and+plus=eq&amp.txt", "ünïcødé/ключ.txt", "percent%20literal~tilde"]
    for key in keys:
        client.put_object(Bucket=bucket_on, Key=key, Body=body, ContentType="application/x-test",
                          Metadata={"origin": "suite"})
    assert sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket_on)["Contents"]) == sorted(keys)
    for key in keys:
        got = client.get_object(Bucket=bucket_on, Key=key)
        assert got["Body"].read() == body
        assert got["ContentType"] == "application/x-test" and got["Metadata"] == {"origin": "suite"}
        assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert client.get_object(Bucket=bucket_on, Key=keys[1], Range="bytes=10-19")["Body"].read() == body[10:20]
    assert client.get_object(Bucket=bucket_on, Key=keys[0], Range="bytes=-5")["Body"].read() == body[-5:]
    head = client.head_object(Bucket=bucket_on, Key=keys[2])
    assert head["ContentLength"] == len(body)
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        client.get_object(Bucket=bucket_on, Key="dir/none")
    assert _code(missing.value) == "NoSuchKey"
    empty = client.put_object(Bucket=bucket_on, Key="empty", Body=b"")
    assert empty["ETag"].strip('"') == hashlib.md5(b"").hexdigest()
    assert client.get_object(Bucket=bucket_on, Key="empty")["Body"].read() == b""


def test_list_objects_v2_with_prefix_delimiter_and_pages(edge: Edge, bucket_on: str) -> None:
    client = edge.client()
    keys = [f"train/part-{i:02d}.csv" for i in range(7)] + ["train/sub/a.csv", "test/x.csv"]
    for key in keys:
        client.put_object(Bucket=bucket_on, Key=key, Body=key.encode())
    pages = list(client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket_on, Prefix="train/", PaginationConfig={"PageSize": 3}))
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(k for k in keys if k.startswith("train/"))
    assert len(pages) == 3
    top = client.list_objects_v2(Bucket=bucket_on, Prefix="train/", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["train/sub/"] and len(top["Contents"]) == 7
    roots = client.list_objects_v2(Bucket=bucket_on, Delimiter="/")
    assert sorted(p["Prefix"] for p in roots["CommonPrefixes"]) == ["test/", "train/"]
    after = client.list_objects_v2(Bucket=bucket_on, StartAfter="train/part-05.csv")
    assert [o["Key"] for o in after["Contents"]] == ["train/part-06.csv", "train/sub/a.csv"]


def test_multipart_managed_and_low_level(edge: Edge, bucket_on: str, tmp_path: Path) -> None:
    client = edge.client()
    source = tmp_path / "big.bin"
    block = os.urandom(MiB)
    source.write_bytes(b"".join(block[i:] + block[:i] for i in range(12)))
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    client.upload_file(str(source), bucket_on, "model/big.bin", Config=config)
    head = client.head_object(Bucket=bucket_on, Key="model/big.bin")
    assert head["ContentLength"] == 12 * MiB and head["ETag"].strip('"').endswith("-3")
    target = tmp_path / "back.bin"
    client.download_file(bucket_on, "model/big.bin", str(target), Config=config)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()

    upload = client.create_multipart_upload(Bucket=bucket_on, Key="mp/obj")["UploadId"]
    parts = []
    for number, data in enumerate((b"a" * (5 * MiB), b"tail"), start=1):
        etag = client.upload_part(Bucket=bucket_on, Key="mp/obj", UploadId=upload, PartNumber=number,
                                  Body=data)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    assert [p["PartNumber"] for p in client.list_parts(Bucket=bucket_on, Key="mp/obj", UploadId=upload)["Parts"]] \
        == [1, 2]
    completed = client.complete_multipart_upload(Bucket=bucket_on, Key="mp/obj", UploadId=upload,
                                                 MultipartUpload={"Parts": parts})
    if edge.store != "memory":  # moto names AWS's address; a relayed store's own address never reaches the client
        assert completed["Location"] == f"{edge.url}/{bucket_on}/mp/obj", completed["Location"]
    assert client.get_object(Bucket=bucket_on, Key="mp/obj")["Body"].read() == b"a" * (5 * MiB) + b"tail"
    aborted = client.create_multipart_upload(Bucket=bucket_on, Key="mp/aborted")["UploadId"]
    client.upload_part(Bucket=bucket_on, Key="mp/aborted", UploadId=aborted, PartNumber=1, Body=b"x")
    client.abort_multipart_upload(Bucket=bucket_on, Key="mp/aborted", UploadId=aborted)
    assert aborted not in [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket_on).get("Uploads", [])]


def test_copy_and_batch_delete(edge: Edge, bucket_on: str) -> None:
    client = edge.client()
    client.put_object(Bucket=bucket_on, Key="src/a", Body=b"payload")
    client.copy_object(Bucket=bucket_on, Key="dst/a b", CopySource={"Bucket": bucket_on, "Key": "src/a"})
    assert client.get_object(Bucket=bucket_on, Key="dst/a b")["Body"].read() == b"payload"
    result = client.delete_objects(Bucket=bucket_on, Delete={"Objects": [{"Key": "src/a"}, {"Key": "dst/a b"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["dst/a b", "src/a"]
    assert client.list_objects_v2(Bucket=bucket_on).get("KeyCount") == 0


def test_presigned_urls_get_put_and_expiry(edge: Edge, bucket_on: str) -> None:
    client = edge.client()
    client.put_object(Bucket=bucket_on, Key="shared/a.txt", Body=b"shared body")
    for version in ("s3v4", "s3"):  # SigV4 and SigV2 query signatures
        signer = edge.client(signature_version=version)
        url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket_on, "Key": "shared/a.txt"})
        assert url.startswith(edge.url)
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read() == b"shared body"
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": bucket_on, "Key": "up/b.bin"})
    request = urllib.request.Request(put_url, data=b"uploaded by url", method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert client.get_object(Bucket=bucket_on, Key="up/b.bin")["Body"].read() == b"uploaded by url"
    expired = client.generate_presigned_url("get_object", Params={"Bucket": bucket_on, "Key": "shared/a.txt"},
                                            ExpiresIn=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(expired, timeout=30).close()
        except urllib.error.HTTPError as refused:
            assert refused.code == 403 and b"expired" in refused.read()
            break
        assert time.monotonic() < deadline, "a presigned URL 1 s old is still honoured after 10 s"
        time.sleep(0.5)


def test_checksums_header_and_aws_chunked_trailers(edge: Edge, bucket_on: str) -> None:
    client = edge.client()
    client.put_object(Bucket=bucket_on, Key="sum/header", Body=b"checked", ChecksumAlgorithm="SHA256")
    head = client.head_object(Bucket=bucket_on, Key="sum/header", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"checked").digest()).decode()

    payload = os.urandom(300_000)
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    pool = urllib3.PoolManager()
    for key, content_sha, trailers, signature in (
            ("sum/unsigned-trailer", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", {"x-amz-checksum-crc32": crc}, None),
            ("sum/signed-chunks", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", {}, "0" * 64)):
        body = encode_for_test(payload, trailers, chunk=65536, signature=signature)
        headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(payload)),
                   "content-length": str(len(body))}
        if trailers:
            headers["x-amz-trailer"] = "x-amz-checksum-crc32"
        url = f"{edge.url}/{bucket_on}/{key}"
        signed = sign_for_store("PUT", url, headers, content_sha, "AKIAANYKEY", "any-secret", "us-east-1")
        answer = pool.request("PUT", url, body=body, headers=signed)
        assert answer.status == 200, answer.data
        assert client.get_object(Bucket=bucket_on, Key=key)["Body"].read() == payload
    head = client.head_object(Bucket=bucket_on, Key="sum/unsigned-trailer", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc


def test_versioning(edge: Edge, bucket_on: str) -> None:
    client = edge.client()
    client.put_bucket_versioning(Bucket=bucket_on, VersioningConfiguration={"Status": "Enabled"})
    first = client.put_object(Bucket=bucket_on, Key="v/k", Body=b"one")["VersionId"]
    second = client.put_object(Bucket=bucket_on, Key="v/k", Body=b"two")["VersionId"]
    assert first != second
    versions = client.list_object_versions(Bucket=bucket_on, Prefix="v/")["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted([first, second])
    assert client.get_object(Bucket=bucket_on, Key="v/k", VersionId=first)["Body"].read() == b"one"
    assert client.get_object(Bucket=bucket_on, Key="v/k")["Body"].read() == b"two"


def test_the_aws_cli_with_only_the_endpoint_variable(edge: Edge, bucket_on: str, tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_bytes(b"1,2\n" * 1000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=edge.url, AWS_ACCESS_KEY_ID="AKIAANYKEY", AWS_SECRET_ACCESS_KEY="any-secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    aws = [sys.executable, "-m", "awscli"]
    copied = subprocess.run([*aws, "s3", "cp", str(source), f"s3://{bucket_on}/cli/data.csv"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert copied.returncode == 0, copied.stderr
    listed = subprocess.run([*aws, "s3", "ls", f"s3://{bucket_on}/cli/"], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert listed.returncode == 0 and "data.csv" in listed.stdout, listed.stderr
    assert edge.client().get_object(Bucket=bucket_on, Key="cli/data.csv")["Body"].read() == source.read_bytes()


CONTAINER_PROBE = (
    "import json,os,boto3\n"
    "s3=boto3.client('s3');b=os.environ['PROBE_BUCKET']\n"
    "s3.put_object(Bucket=b,Key='from-container/x.txt',Body=b'written inside')\n"
    "print(json.dumps({'read':s3.get_object(Bucket=b,Key='seed.txt')['Body'].read().decode(),"
    "'keys':[o['Key'] for o in s3.list_objects_v2(Bucket=b)['Contents']],"
    "'method':boto3.session.Session().get_credentials().method}))\n"
)


@pytest.mark.docker
def test_boto3_in_a_container_with_role_credentials(edge: Edge, bucket_on: str) -> None:
    engine = docker.from_env()
    try:
        image = build_boto3_image(engine)
        role = make_client("iam", edge.url).create_role(
            RoleName=unique_name("StoreRole"), AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
        edge.client().put_object(Bucket=bucket_on, Key="seed.txt", Body=b"from the host")
        environment = {**edge.server.platform.container_environment(role), "PROBE_BUCKET": bucket_on}
        assert environment["AWS_ENDPOINT_URL_S3"] == edge.server.platform.gateway_url
        # On the emulator's own container network, as its jobs' containers are (the gateway answers no other).
        container = engine.containers.run(image, ["python3", "-c", CONTAINER_PROBE], environment=environment,
                                          detach=True, labels=TEST_LABELS, network=NETWORK_NAME)
        try:
            code = container.wait(timeout=120)["StatusCode"]
            output = container.logs().decode()
        finally:
            container.remove(force=True)
    finally:
        engine.close()
    assert code == 0, output
    answer = json.loads(output.strip().splitlines()[-1])
    assert answer == {"read": "from the host", "keys": ["from-container/x.txt", "seed.txt"],
                      "method": "container-role"}
    assert edge.client().get_object(Bucket=bucket_on, Key="from-container/x.txt")["Body"].read() == b"written inside"

