"""boto3 inside a real container gets its role's credentials from the emulator, never the host's.

The containers here run as the emulator's own do: on the shared network ``smemu-containers``
(which the runtime attaches every container to), talking to the session emulator's real
container gateway on 169.254.170.2. The image is the base image plus boto3, built once per
content.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import docker
import docker.errors
import pytest

from emulator.config import Settings
from emulator.credentials import CREDENTIALS_PATH, CredentialBroker, container_environment
from emulator.runtime.gateway_network import NETWORK_NAME
from tests.conftest import SAGEMAKER_TRUST_POLICY, make_client, unique_name
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
def broker(emulator: Any) -> CredentialBroker:
    """The session emulator's own broker (what its services use)."""
    return emulator.platform.credentials  # type: ignore[no-any-return]


def run_probe(client: docker.DockerClient, image: str, environment: dict[str, str], **kwargs: Any) -> tuple[int, str]:
    container = client.containers.run(image, ["python3", "-c", PROBE], environment=environment, detach=True,
                                      labels=TEST_LABELS, **kwargs)
    try:
        code = container.wait(timeout=120)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_boto3_in_a_container_lists_the_bucket_with_the_roles_credentials(
        boto3_image: str, gateway_url: str, broker: CredentialBroker, emulator_settings: Settings,
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
    environment = {**container_environment(role_arn, emulator_settings, broker, gateway_url=gateway_url),
                   "PROBE_BUCKET": bucket}

    code, output = run_probe(docker_client, boto3_image, environment, network=NETWORK_NAME)
    assert code == 0, output
    answer = json.loads(output.strip().splitlines()[-1])
    assert answer["method"] == "container-role"
    assert answer["access_key"].startswith("ASIA")
    assert answer["arn"] == f"arn:aws:sts::{emulator_settings.account_id}:assumed-role/{role_name}/SageMaker"
    assert answer["keys"] == ["train/a.csv", "train/b.csv"]
    assert HOST_KEY not in output and HOST_SECRET not in output
    assert answer["environment"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == gateway_url + CREDENTIALS_PATH

    # The same container on another bridge is not on the gateway's network: refused, even with a token.
    code, output = run_probe(docker_client, boto3_image, environment, network="bridge")
    assert code != 0 and '"method"' not in output
    assert "answers only containers on the emulator's networks" in output

    # Network isolation: no network, so no credentials either (as on SageMaker).
    code, output = run_probe(docker_client, boto3_image, environment, network_mode="none")
    assert code != 0


FETCH = (
    "import json,sys,urllib.request,urllib.error\n"
    "out=[]\n"
    "for token in sys.argv[2:]:\n"
    "  r=urllib.request.Request(sys.argv[1],headers={'Authorization':token} if token!='-' else {})\n"
    "  try:\n"
    "    with urllib.request.urlopen(r,timeout=10) as a: out.append([a.status,json.loads(a.read())])\n"
    "  except urllib.error.HTTPError as e: out.append([e.code,json.loads(e.read())])\n"
    "print(json.dumps(out))\n"
)


def test_credentials_endpoint_needs_a_token_it_issued(gateway_url: str, broker: CredentialBroker, role_arn: str,
                                                      boto3_image: str, docker_client: docker.DockerClient) -> None:
    token = broker.issue(role_arn)
    container = docker_client.containers.run(
        boto3_image, ["python3", "-c", FETCH, gateway_url + CREDENTIALS_PATH, token, "-", token[:-4] + "AAAA"],
        network=NETWORK_NAME, detach=True, labels=TEST_LABELS)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs().decode()
        (ok, document), (missing, _), (forged, refused) = json.loads(container.logs().decode().strip().splitlines()[-1])
    finally:
        container.remove(force=True)
    assert ok == 200 and set(document) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert missing == 401
    assert forged == 403 and refused["code"] == "AccessDenied"
    issued = broker.lookup(document["AccessKeyId"])
    assert issued is not None and issued.secret_access_key == document["SecretAccessKey"]
