"""Each way in that issue 12 found, tried for real and refused.

* a plain container (``docker run``, not started by the emulator) on the default bridge and on
  the emulator's own network: SageMaker, IAM, S3 and ``/moto-api/reset`` calls, unsigned, with
  made-up keys, with an issued key and a wrong secret or token;
* a network namespace routed to the gateway address (a neighbour on the link);
* a web page: a foreign-Origin preflight, a simple POST to ``/moto-api/reset``, a foreign Host
  header (DNS rebinding);
* ``file:///var/run``, ``file:///root`` and a link out of an allowed folder as channels;
* 100,000 instances, JSON nested 1000 deep, a 50 MB name.

Every refusal is checked for what a client sees (status and AWS error code), and the state
the attack aimed at is checked to be intact.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emulator.credentials import CredentialBroker
from emulator.runtime.gateway_network import NETWORK_NAME
from tests.conftest import make_client, unique_name
from tests.integration.sample_images import TEST_LABELS
from tests.integration.test_container_credentials import build_boto3_image
from tests.integration.test_processing_jobs import job_request as processing_request
from tests.integration.test_training_helpers import job_request, s3_channel
from tests.integration.test_transform_jobs import request as transform_request

pytestmark = pytest.mark.docker

ATTACK = r"""
import json, os, sys, urllib.request, urllib.error
import boto3
from botocore import UNSIGNED
from botocore.config import Config
url = os.environ["GATEWAY"]
found = {}
def call(label, service, method, creds, **kwargs):
    config = Config(retries={"max_attempts": 1}, signature_version=UNSIGNED) if creds is None else \
        Config(retries={"max_attempts": 1})
    extra = {} if creds is None else dict(zip(("aws_access_key_id", "aws_secret_access_key", "aws_session_token"), creds))
    client = boto3.session.Session().client(service, endpoint_url=url, region_name="us-east-1", config=config, **extra)
    try:
        getattr(client, method)(**kwargs)
        found[label] = [200, "OK"]
    except client.exceptions.ClientError as exc:
        found[label] = [exc.response["ResponseMetadata"]["HTTPStatusCode"],
                        exc.response.get("Error", {}).get("Code", "Unknown")]
    except Exception as exc:
        found[label] = [0, type(exc).__name__]
made_up = ("AKIAMADEUPKEY0000000", "made-up-secret", None)
stolen = json.loads(os.environ.get("STOLEN", "null"))
for label, creds in (("unsigned", None), ("made-up", made_up)) + (
        (("wrong-secret", (stolen[0], "wrong", stolen[2])), ("wrong-token", (stolen[0], stolen[1], "wrong")))
        if stolen else ()):
    call(f"sagemaker/{label}", "sagemaker", "list_training_jobs", creds)
    call(f"iam/{label}", "iam", "list_roles", creds)
    call(f"s3/{label}", "s3", "list_buckets", creds)
    call(f"sts/{label}", "sts", "get_caller_identity", creds)
try:
    request = urllib.request.Request(url + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        found["moto-reset"] = [answer.status, "OK"]
except urllib.error.HTTPError as exc:
    found["moto-reset"] = [exc.code, exc.read()[:300].decode(errors="replace")]
print(json.dumps(found))
"""

REFUSED_BY_SIGNATURE = {
    "sagemaker/unsigned": [403, "MissingAuthenticationTokenException"],
    "iam/unsigned": [403, "MissingAuthenticationToken"],
    "s3/unsigned": [403, "AccessDenied"],
    "sts/unsigned": [403, "MissingAuthenticationToken"],
    "sagemaker/made-up": [403, "UnrecognizedClientException"],
    "iam/made-up": [403, "InvalidClientTokenId"],
    "s3/made-up": [403, "InvalidAccessKeyId"],
    "sts/made-up": [403, "InvalidClientTokenId"],
    "sagemaker/wrong-secret": [403, "InvalidSignatureException"],
    "iam/wrong-secret": [403, "SignatureDoesNotMatch"],
    "s3/wrong-secret": [403, "SignatureDoesNotMatch"],
    "sts/wrong-secret": [403, "SignatureDoesNotMatch"],
    "sagemaker/wrong-token": [403, "UnrecognizedClientException"],
    "iam/wrong-token": [403, "InvalidClientTokenId"],
    "s3/wrong-token": [400, "InvalidToken"],
    "sts/wrong-token": [403, "InvalidClientTokenId"],
}


@pytest.fixture(scope="module")
def witness_role(endpoint_url: str) -> str:
    """A role that must survive every attack (a moto reset would delete it)."""
    return str(make_client("iam", endpoint_url).create_role(
        RoleName=unique_name("Witness"), AssumeRolePolicyDocument="{}")["Role"]["RoleName"])


def _attack(client: docker.DockerClient, network: str, gateway_url: str, stolen: list[str] | None) -> dict[str, Any]:
    environment = {"GATEWAY": gateway_url, "STOLEN": json.dumps(stolen)}
    container = client.containers.run(build_boto3_image(client), ["python3", "-c", ATTACK], environment=environment,
                                      network=network, detach=True, labels=TEST_LABELS)
    try:
        assert container.wait(timeout=180)["StatusCode"] == 0, container.logs().decode()
        return dict(json.loads(container.logs().decode().strip().splitlines()[-1]))
    finally:
        container.remove(force=True)


def _role_exists(endpoint_url: str, name: str) -> bool:
    try:
        make_client("iam", endpoint_url).get_role(RoleName=name)
    except ClientError:
        return False
    return True


def test_a_plain_container_on_the_default_bridge_gets_nothing(
        docker_client: docker.DockerClient, gateway_url: str, endpoint_url: str, witness_role: str) -> None:
    found = _attack(docker_client, "bridge", gateway_url, None)
    assert set(found) == {*(k for k in REFUSED_BY_SIGNATURE if k.split("/")[1] in ("unsigned", "made-up")),
                          "moto-reset"}
    for label, (status, code) in found.items():
        assert status == 403, (label, status, code)
    # Refused at accept, before a byte of the request is read (S3's shape: the one body every client shows).
    assert "answers only containers on the emulator's networks" in found["moto-reset"][1]
    assert found["s3/made-up"][1] == "AccessDenied"
    assert _role_exists(endpoint_url, witness_role)


def test_a_plain_container_on_the_emulators_network_needs_issued_credentials(
        docker_client: docker.DockerClient, gateway_url: str, endpoint_url: str, witness_role: str,
        emulator: Any, role_arn: str) -> None:
    broker: CredentialBroker = emulator.platform.credentials
    issued = broker.credentials(broker.issue(role_arn))  # as if a job's secret leaked, in part
    stolen = [issued["AccessKeyId"], issued["SecretAccessKey"], issued["Token"]]
    found = _attack(docker_client, NETWORK_NAME, gateway_url, stolen)
    assert {k: found[k] for k in REFUSED_BY_SIGNATURE} == REFUSED_BY_SIGNATURE
    assert found["moto-reset"][0] == 403 and "MissingAuthenticationToken" in found["moto-reset"][1]
    assert _role_exists(endpoint_url, witness_role)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                    reason="making a network namespace needs root and iproute2")
def test_a_neighbour_routed_to_the_gateway_address_is_refused(gateway_url: str) -> None:
    """Linux accepts packets for a local address on any interface: the peer check must not."""
    suffix = uuid.uuid4().hex[:6]
    namespace, host_end, far_end = f"smemu-nbr-{suffix}", f"smnh{suffix}", f"smnf{suffix}"
    octet = 16 + int(suffix[:2], 16) % 200
    commands = [
        ["ip", "netns", "add", namespace],
        ["ip", "link", "add", host_end, "type", "veth", "peer", "name", far_end],
        ["ip", "link", "set", far_end, "netns", namespace],
        ["ip", "addr", "add", f"10.251.{octet}.1/30", "dev", host_end],
        ["ip", "link", "set", host_end, "up"],
        ["ip", "netns", "exec", namespace, "ip", "addr", "add", f"10.251.{octet}.2/30", "dev", far_end],
        ["ip", "netns", "exec", namespace, "ip", "link", "set", far_end, "up"],
        ["ip", "netns", "exec", namespace, "ip", "route", "add", "169.254.170.0/24", "via", f"10.251.{octet}.1"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        probe = ("import sys,urllib.request,urllib.error\n"
                 "try:\n  urllib.request.urlopen(sys.argv[1] + '/_smemu/credentials', timeout=10)\n  print('200')\n"
                 "except urllib.error.HTTPError as e: print(e.code, e.read().decode())\n")
        done = subprocess.run(["ip", "netns", "exec", namespace, "python3", "-c", probe, gateway_url],
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
    assert done.stdout.startswith("403 "), (done.stdout, done.stderr)
    assert "answers only containers on the emulator's networks" in done.stdout


def _raw(endpoint_url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"",
         send_body: bool = True) -> tuple[int, dict[str, str], bytes]:
    host, port = endpoint_url.split("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body if send_body else None)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def test_a_web_page_cannot_reset_or_read_the_emulator(endpoint_url: str, witness_role: str) -> None:
    own_host = endpoint_url.split("//", 1)[1]
    evil = "http://evil.example"
    status, headers, _ = _raw(endpoint_url, "OPTIONS", "/", {
        "Host": own_host, "Origin": evil, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-amz-target,authorization,content-type"})
    assert status == 403 and "access-control-allow-origin" not in headers
    # A form post needs no preflight: refused all the same, and nothing is reset.
    status, headers, body = _raw(endpoint_url, "POST", "/moto-api/reset", {
        "Host": own_host, "Origin": evil, "Content-Type": "text/plain", "Content-Length": "0"})
    assert status == 403 and b"SMEMU_ALLOWED_ORIGINS" in body
    status, _, body = _raw(endpoint_url, "POST", "/moto-api/reset", {"Host": own_host, "Content-Length": "0"})
    assert status == 404 and b"SMEMU_MOTO_API=1" in body
    # DNS rebinding: the page's own name, now resolving to 127.0.0.1.
    status, headers, body = _raw(endpoint_url, "POST", "/", {
        "Host": "evil.example:4570", "X-Amz-Target": "SageMaker.ListTrainingJobs",
        "Content-Type": "application/x-amz-json-1.1", "Content-Length": "2"}, b"{}")
    assert status == 403 and json.loads(body)["__type"] == "AccessDeniedException"
    assert "DNS rebinding" in json.loads(body)["message"]
    assert _role_exists(endpoint_url, witness_role)
    # The emulator's own pages (same origin) and tools (no Origin) are served.
    for extra in ({"Origin": f"http://{own_host}"}, {}):
        status, _, body = _raw(endpoint_url, "POST", "/", {
            "Host": own_host, "X-Amz-Target": "SageMaker.ListTrainingJobs",
            "Content-Type": "application/x-amz-json-1.1", "Content-Length": "2", **extra}, b"{}")
        assert status == 200 and "TrainingJobSummaries" in json.loads(body)


def test_host_folders_outside_the_allowed_roots_are_refused_at_create(
        sagemaker_client: Any, role_arn: str, bucket: str, tmp_path: Path) -> None:
    (tmp_path / "escape").symlink_to("/root")
    for uri in ("file:///var/run", "file:///root", f"file://{tmp_path}/escape", "file:///usr/share"):
        name = unique_name("host-folder")
        with pytest.raises(ClientError) as refused:
            sagemaker_client.create_training_job(**job_request(
                name, "smemu-base/python:3.11", role_arn, bucket, InputDataConfig=[s3_channel("train", uri)]))
        error = refused.value.response["Error"]
        assert error["Code"] == "ValidationException" and "SMEMU_HOST_FOLDERS" in error["Message"], uri
        with pytest.raises(ClientError):
            sagemaker_client.describe_training_job(TrainingJobName=name)
    # Processing and transform inputs go through the same check.
    with pytest.raises(ClientError) as refused:
        sagemaker_client.create_processing_job(**processing_request(
            unique_name("host-folder"), "smemu-base/python:3.11", role_arn, ProcessingInputs=[{
                "InputName": "root", "S3Input": {"S3Uri": "file:///root", "LocalPath": "/opt/ml/processing/input",
                                                 "S3DataType": "S3Prefix", "S3InputMode": "File"}}]))
    assert "SMEMU_HOST_FOLDERS" in refused.value.response["Error"]["Message"]
    model = unique_name("host-folder-model")
    sagemaker_client.create_model(ModelName=model, ExecutionRoleArn=role_arn,
                                  PrimaryContainer={"Image": "smemu-base/python:3.11"})
    with pytest.raises(ClientError) as refused:
        sagemaker_client.create_transform_job(**transform_request(unique_name("host-folder"), model,
                                                                  "file:///var/run", f"s3://{bucket}/out"))
    assert "SMEMU_HOST_FOLDERS" in refused.value.response["Error"]["Message"]


def test_a_hundred_thousand_instances_is_a_prompt_quota_error(sagemaker_client: Any, role_arn: str,
                                                              bucket: str) -> None:
    name = unique_name("huge")
    with pytest.raises(ClientError) as refused:
        sagemaker_client.create_training_job(**job_request(name, "smemu-base/python:3.11", role_arn, bucket,
                                                           ResourceConfig={"InstanceType": "ml.m5.large",
                                                                           "InstanceCount": 100_000,
                                                                           "VolumeSizeInGB": 1}))
    error = refused.value.response["Error"]
    assert error["Code"] == "ResourceLimitExceeded"
    assert "'ml.m5.large for training job usage' is 20 Instances" in error["Message"]
    model, config = unique_name("huge-model"), unique_name("huge-config")
    sagemaker_client.create_model(ModelName=model, ExecutionRoleArn=role_arn,
                                  PrimaryContainer={"Image": "smemu-base/python:3.11"})
    sagemaker_client.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 100_000}])
    with pytest.raises(ClientError) as refused:
        sagemaker_client.create_endpoint(EndpointName=unique_name("huge-ep"), EndpointConfigName=config)
    assert refused.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert "for endpoint usage" in refused.value.response["Error"]["Message"]


def test_deep_json_and_huge_names_are_client_errors(endpoint_url: str) -> None:
    own_host = endpoint_url.split("//", 1)[1]
    deep = b'{"TrainingJobName": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    for target, content_type in (("SageMaker.DescribeTrainingJob", "application/x-amz-json-1.1"),
                                 ("Logs_20140328.DescribeLogGroups", "application/x-amz-json-1.1")):
        authorization = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/"
                         f"{'logs' if target.startswith('Logs') else 'sagemaker'}/aws4_request, "
                         "SignedHeaders=host, Signature=" + "0" * 64)
        status, _, body = _raw(endpoint_url, "POST", "/", {
            "Host": own_host, "X-Amz-Target": target, "Content-Type": content_type,
            "Authorization": authorization, "Content-Length": str(len(deep))}, deep)
        assert status == 400 and json.loads(body)["__type"] == "SerializationException", (target, status, body)
    # 50 MB announced: refused from the headers, before a byte of the body is read.
    status, _, body = _raw(endpoint_url, "POST", "/", {
        "Host": own_host, "X-Amz-Target": "SageMaker.DescribeTrainingJob",
        "Content-Type": "application/x-amz-json-1.1", "Content-Length": str(50 * 1024 * 1024)}, send_body=False)
    assert status == 413 and json.loads(body)["__type"] == "RequestEntityTooLargeException"
    # A long name is echoed, cut: the error stays small.
    name = "x" * 200_000
    body_in = json.dumps({"TrainingJobName": name}).encode()
    status, _, body = _raw(endpoint_url, "POST", "/", {
        "Host": own_host, "X-Amz-Target": "SageMaker.DescribeTrainingJob",
        "Content-Type": "application/x-amz-json-1.1", "Content-Length": str(len(body_in))}, body_in)
    assert status == 400 and json.loads(body)["__type"] == "ValidationException"
    assert len(body) < 2000 and "(200000 characters)" in json.loads(body)["message"]
