"""boto3 inside a real container gets its role's credentials from the emulator, never the host's.

The session's edge app is wrapped with ``CredentialsMiddleware`` and served for containers by a
``ContainerGateway`` on 169.254.170.2 (a free port, so it cannot clash with the one server.py
starts once wired). The container image is the base image plus boto3, built once per content.
"""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from emulator.config import Settings
from emulator.credentials import (
    CREDENTIALS_PATH,
    ContainerGateway,
    CredentialBroker,
    CredentialsMiddleware,
    container_environment,
)
from tests.conftest import SAGEMAKER_TRUST_POLICY, free_port, make_client, unique_name
from tests.integration.sample_images import DEFAULT_BASE_IMAGE, TEST_LABELS

pytestmark = pytest.mark.docker
BOTO3_DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
RUN pip install --no-cache-dir boto3==1.43.11
"""
PROBE = (  # short enough for a SageMaker Environment value (512 characters)
    "import json,os,boto3\n"
    "s=boto3.session.Session();c=s.get_credentials()\n"
    "l=s.client('s3').list_objects_v2(Bucket=os.environ['PROBE_BUCKET'])\n"
    "print(json.dumps({'method':c.method,'access_key':c.access_key,"
    "'arn':s.client('sts').get_caller_identity()['Arn'],'keys':[i['Key'] for i in l.get('Contents',[])],"
    "'environment':{k:v for k,v in os.environ.items() if k.startswith('AWS_')}}))\n"
)
RUN_PROBE = ["python3", "-c", "import os; exec(os.environ['PROBE_CODE'])"]
HOST_KEY, HOST_SECRET = "AKIAHOSTONLYKEY00000", "host-only-secret-never-in-containers"


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def boto3_image(docker_client: docker.DockerClient) -> str:
    """The base image plus boto3."""
    return build_boto3_image(docker_client)


def build_boto3_image(docker_client: docker.DockerClient) -> str:
    """``smemu-test/boto3:<hash of Dockerfile and base image>``, built only when missing."""
    base = docker_client.images.get(DEFAULT_BASE_IMAGE)
    tag = "smemu-test/boto3:" + hashlib.sha256(f"{base.id}\0{BOTO3_DOCKERFILE}".encode()).hexdigest()[:16]
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        docker_client.images.build(fileobj=io.BytesIO(BOTO3_DOCKERFILE.encode()), tag=tag, network_mode="host",
                                   buildargs={"BASE_IMAGE": DEFAULT_BASE_IMAGE}, labels=TEST_LABELS, pull=False,
                                   rm=True, forcerm=True)
    return tag


@pytest.fixture(scope="module")
def broker(emulator_settings: Settings) -> CredentialBroker:
    return CredentialBroker.from_settings(emulator_settings)


@pytest.fixture(scope="module")
def gateway(emulator: Any, broker: CredentialBroker, docker_client: docker.DockerClient) -> Iterator[ContainerGateway]:
    gateway = ContainerGateway(CredentialsMiddleware(emulator.app, broker), free_port(), docker_client).start()
    yield gateway
    gateway.stop()


def run_probe(client: docker.DockerClient, image: str, environment: dict[str, str], **kwargs: Any) -> tuple[int, str]:
    container = client.containers.run(image, ["python3", "-c", PROBE], environment=environment, detach=True,
                                      labels=TEST_LABELS, **kwargs)
    try:
        code = container.wait(timeout=120)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_boto3_in_a_container_lists_the_bucket_with_the_roles_credentials(
        boto3_image: str, gateway: ContainerGateway, broker: CredentialBroker, emulator_settings: Settings,
        endpoint_url: str, s3_client: Any, bucket: str, docker_client: docker.DockerClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", HOST_KEY), ("AWS_SECRET_ACCESS_KEY", HOST_SECRET),
                        ("AWS_SESSION_TOKEN", HOST_SECRET)):
        monkeypatch.setenv(name, value)  # this machine's credentials: they must not reach the container
    role_name = unique_name("ContainerRole")
    role_arn = make_client("iam", endpoint_url).create_role(
        RoleName=role_name, Path="/service-role/", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
    s3_client.put_object(Bucket=bucket, Key="train/a.csv", Body=b"1\n")
    s3_client.put_object(Bucket=bucket, Key="train/b.csv", Body=b"2\n")
    environment = {**container_environment(role_arn, emulator_settings, broker, gateway_url=gateway.url),
                   "PROBE_BUCKET": bucket}

    job_network = unique_name("smemu-test-net")
    docker_client.networks.create(job_network, driver="bridge", labels=TEST_LABELS)
    try:
        for network in ("bridge", job_network):  # single-host jobs and per-job networks alike
            code, output = run_probe(docker_client, boto3_image, environment, network=network)
            assert code == 0, output
            answer = json.loads(output.strip().splitlines()[-1])
            assert answer["method"] == "container-role"
            assert answer["access_key"].startswith("ASIA")
            assert answer["arn"] == f"arn:aws:sts::{emulator_settings.account_id}:assumed-role/{role_name}/SageMaker"
            assert answer["keys"] == ["train/a.csv", "train/b.csv"]
            assert HOST_KEY not in output and HOST_SECRET not in output
            assert answer["environment"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == gateway.url + CREDENTIALS_PATH
    finally:
        docker_client.networks.get(job_network).remove()

    # Network isolation: no network, so no credentials either (as on SageMaker).
    code, output = run_probe(docker_client, boto3_image, environment, network_mode="none")
    assert code != 0


def test_credentials_endpoint_needs_a_token_it_issued(gateway: ContainerGateway, broker: CredentialBroker,
                                                      role_arn: str) -> None:
    def get(token: str | None) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(gateway.url + CREDENTIALS_PATH, headers={"Authorization": token} if token
                                         else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    token = broker.issue(role_arn)
    status, document = get(token)
    assert status == 200
    assert set(document) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert get(None)[0] == 401
    status, document = get(token[:-4] + "AAAA")
    assert status == 403 and document["code"] == "AccessDenied"
