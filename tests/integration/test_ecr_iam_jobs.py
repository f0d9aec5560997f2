"""The ECR / IAM "done when" cases, end to end through boto3 and the ``smemu`` command.

These run once the emulator is wired to emulator/{registry,images,ecr,iam,credentials}.py
(server.py mounts EcrMiddleware + CredentialsMiddleware and starts the ContainerGateway; the
services check roles, resolve images and put container_environment() into containers; cli.py
registers cli_ecr). Until then the module skips itself, naming what is missing.

1. build, ``smemu ecr push``, then a training job and an endpoint from the ECR URI;
2. an ECR image that exists nowhere fails, naming the image and the push command;
3. a job with a nonexistent role, and a role without the SageMaker trust: ValidationException;
4. strict mode (a second emulator with ``iam_enforce``) refuses a channel the role may not read
   and allows it once the policy is attached;
5. boto3 inside a training container lists the bucket with the role's credentials and sees
   none of this machine's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emulator.config import Settings
from emulator.images import ecr_uri
from tests.conftest import SAGEMAKER_TRUST_POLICY, free_port, make_client, unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_container_credentials import (
    HOST_KEY,
    HOST_SECRET,
    PROBE,
    RUN_PROBE,
    build_boto3_image,
)
from tests.integration.test_training_helpers import job_request, log_messages, s3_channel, wait_terminal

pytestmark = pytest.mark.docker
REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_PREFIX = "smemu-e2e"


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


def _status(url: str, method: str = "GET") -> int:
    request = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@pytest.fixture(scope="module", autouse=True)
def wired(endpoint_url: str, emulator_settings: Settings) -> Iterator[None]:
    """Fail at once, naming the piece, when the ECR, IAM or credentials routes are not served.

    Afterwards, stop the registry if the test session's emulator (or its ``smemu ecr push``) started it.
    """
    missing = []
    if _status(f"{endpoint_url}/_smemu/credentials") != 401:
        missing.append("CredentialsMiddleware on the edge app")
    if _status(f"{endpoint_url}/_smemu/ecr/sync", "POST") != 200:
        missing.append("EcrMiddleware on the edge app")
    if "ecr" not in subprocess.run([sys.executable, "-m", "emulator.cli", "--help"], capture_output=True,
                                   text=True, cwd=REPO_ROOT, check=False).stdout:
        missing.append("`smemu ecr` (cli_ecr.register in cli.py)")
    assert not missing, "not served: " + ", ".join(missing)
    yield
    from emulator.registry import get_registry

    registry = get_registry(emulator_settings)
    client = docker.from_env()
    for image in client.images.list():  # the local tags `smemu ecr push` made for this module
        for tag in image.tags:
            if tag.startswith(f"{registry.address}/{E2E_PREFIX}"):
                client.images.remove(tag, noprune=True)
    client.close()
    registry.stop()


def smemu_ecr_push(settings: Settings, image: str, target: str) -> str:
    """Run ``smemu ecr push -q IMAGE TARGET`` against the session's emulator; returns the ECR URI."""
    env = {**os.environ, "SMEMU_PORT": str(settings.port), "SMEMU_HOME": str(settings.home)}
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "ecr", "push", "-q", image, target],
                          env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_push_then_train_and_deploy_from_the_ecr_uri(
        emulator_settings: Settings, docker_client: Any, sagemaker_client: Any, runtime_client: Any,
        s3_client: Any, bucket: str, role_arn: str, endpoint_url: str) -> None:
    repository = unique_name(E2E_PREFIX)
    training_uri = smemu_ecr_push(emulator_settings, build_sample_image("training", client=docker_client),
                                  f"{repository}/training:v1")
    serving_uri = smemu_ecr_push(emulator_settings, build_sample_image("serving", client=docker_client),
                                 f"{repository}/serving:v1")
    account, region = emulator_settings.account_id, emulator_settings.region
    assert training_uri == ecr_uri(account, region, f"{repository}/training", "v1")
    details = make_client("ecr", endpoint_url).describe_images(repositoryName=f"{repository}/training")["imageDetails"]
    assert details[0]["imageTags"] == ["v1"] and details[0]["imageSizeInBytes"] > 1024**2

    s3_client.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2\n3,4\n")
    name = unique_name("ecr-train")
    sagemaker_client.create_training_job(**job_request(
        name, training_uri, role_arn, bucket, InputDataConfig=[s3_channel("train", f"s3://{bucket}/train/")]))
    described = wait_terminal(sagemaker_client, name, timeout=180)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")

    model, config, endpoint = unique_name("ecr-model"), unique_name("ecr-config"), unique_name("ecr-ep")
    sagemaker_client.create_model(ModelName=model, ExecutionRoleArn=role_arn,
                                  PrimaryContainer={"Image": serving_uri,
                                                    "ModelDataUrl": described["ModelArtifacts"]["S3ModelArtifacts"]})
    sagemaker_client.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sagemaker_client.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    try:
        sagemaker_client.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        answer = runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"1,2", ContentType="text/csv")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        sagemaker_client.delete_endpoint(EndpointName=endpoint)


def test_an_image_that_exists_nowhere(emulator_settings: Settings, sagemaker_client: Any, bucket: str,
                                      role_arn: str) -> None:
    image = ecr_uri(emulator_settings.account_id, emulator_settings.region, unique_name("nowhere"), "v1")
    name = unique_name("no-image")
    try:
        sagemaker_client.create_training_job(**job_request(name, image, role_arn, bucket))
    except ClientError as exc:  # AWS refuses it at CreateTrainingJob already
        message = exc.response["Error"]["Message"]
        assert exc.response["Error"]["Code"] == "ValidationException"
    else:
        described = wait_terminal(sagemaker_client, name)
        assert described["TrainingJobStatus"] == "Failed"
        message = described["FailureReason"]
    assert image in message and "smemu ecr push" in message


def test_nonexistent_role_and_role_without_sagemaker_trust(
        emulator_settings: Settings, sagemaker_client: Any, bucket: str, endpoint_url: str) -> None:
    image = build_sample_image("training")
    missing = f"arn:aws:iam::{emulator_settings.account_id}:role/{unique_name('NoSuchRole')}"
    ec2_trust = SAGEMAKER_TRUST_POLICY.replace("sagemaker.amazonaws.com", "ec2.amazonaws.com")
    untrusted = make_client("iam", endpoint_url).create_role(
        RoleName=unique_name("Ec2Role"), AssumeRolePolicyDocument=ec2_trust)["Role"]["Arn"]
    for arn in (missing, untrusted):
        with pytest.raises(ClientError) as raised:
            sagemaker_client.create_training_job(**job_request(unique_name("bad-role"), image, arn, bucket))
        assert raised.value.response["Error"] == {
            "Code": "ValidationException",
            "Message": f"Could not assume role {arn}. Please ensure that the role exists and allows principal "
                       f"'sagemaker.amazonaws.com' to assume the role."}
        with pytest.raises(ClientError) as raised:
            sagemaker_client.create_model(ModelName=unique_name("bad-role"), ExecutionRoleArn=arn,
                                          PrimaryContainer={"Image": image})
        assert raised.value.response["Error"]["Message"].startswith(f'The execution role ARN "{arn}" is invalid.')


@pytest.fixture(scope="module")
def strict_server(emulator: Any, emulator_settings: Settings,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second emulator, same process (so the same moto state) and the session's S3 store, strict IAM."""
    from emulator.server import EmulatorServer

    settings = emulator_settings.with_overrides(port=free_port(), home=tmp_path_factory.mktemp("strict-home"),
                                                iam_enforce=True)
    store = emulator.object_store.endpoint
    if store is not None:  # share the session's objects: the store becomes "external" for this one
        settings = settings.with_overrides(s3_endpoint=store.url, s3_access_key=store.access_key,
                                           s3_secret_key=store.secret_key)
    server = EmulatorServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def strict_endpoint(strict_server: Any) -> str:
    return f"http://127.0.0.1:{strict_server.port}"


def test_strict_mode_refuses_a_channel_until_the_policy_is_attached(
        strict_endpoint: str, s3_client: Any, bucket: str) -> None:
    sagemaker, iam = make_client("sagemaker", strict_endpoint), make_client("iam", strict_endpoint)
    role_name = unique_name("StrictRole")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
    s3_client.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2\n")
    image = build_sample_image("training")
    channels = [s3_channel("train", f"s3://{bucket}/train/")]

    refused = unique_name("strict-no")
    sagemaker.create_training_job(**job_request(refused, image, arn, bucket, InputDataConfig=channels))
    described = wait_terminal(sagemaker, refused)
    assert described["TrainingJobStatus"] == "Failed"
    assert f'the role "{arn}" has "s3:ListBucket" permissions on bucket "{bucket}"' in described["FailureReason"]

    iam.put_role_policy(RoleName=role_name, PolicyName="job-data", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/train/*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/output/*"}]}))
    allowed = unique_name("strict-yes")
    sagemaker.create_training_job(**job_request(allowed, image, arn, bucket, InputDataConfig=channels))
    described = wait_terminal(sagemaker, allowed)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")


def test_boto3_in_a_training_container_uses_the_roles_credentials(
        emulator_settings: Settings, docker_client: Any, sagemaker_client: Any, logs_client: Any, s3_client: Any,
        bucket: str, endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, HOST_KEY if variable == "AWS_ACCESS_KEY_ID" else HOST_SECRET)
    role_name = unique_name("JobRole")
    arn = make_client("iam", endpoint_url).create_role(
        RoleName=role_name, AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
    s3_client.put_object(Bucket=bucket, Key="listed/one.txt", Body=b"1")
    name = unique_name("creds-job")
    sagemaker_client.create_training_job(**job_request(  # two hosts: the shared network and a job network
        name, build_boto3_image(docker_client), arn, bucket,
        AlgorithmSpecification={"TrainingImage": build_boto3_image(docker_client), "TrainingInputMode": "File",
                                "ContainerEntrypoint": RUN_PROBE},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
        Environment={"PROBE_BUCKET": bucket, "PROBE_CODE": PROBE}))
    described = wait_terminal(sagemaker_client, name, timeout=180)
    lines = [line for messages in log_messages(logs_client, name).values() for line in messages]
    assert described["TrainingJobStatus"] == "Completed", (described.get("FailureReason"), lines)
    answers = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(answers) == 2, lines
    for answer in answers:
        assert answer["method"] == "container-role"
        assert answer["arn"] == f"arn:aws:sts::{emulator_settings.account_id}:assumed-role/{role_name}/SageMaker"
        assert "listed/one.txt" in answer["keys"]
    assert not any(HOST_KEY in line or HOST_SECRET in line for line in lines)


STRICT_PROBE = (
    "import json,os,boto3\n"
    "def code(f):\n"
    "  try: f(); return 'allowed'\n"
    "  except Exception as e: return getattr(e,'response',{}).get('Error',{}).get('Code',repr(e))\n"
    "u=os.environ['AWS_ENDPOINT_URL'];b=os.environ['PROBE_BUCKET']\n"
    "s3=boto3.client('s3',endpoint_url=u);sm=boto3.client('sagemaker',endpoint_url=u)\n"
    "print(json.dumps({'list':code(lambda:s3.list_objects_v2(Bucket=b,Prefix='in/')),"
    "'put':code(lambda:s3.put_object(Bucket=b,Key='in/x',Body=b'1')),"
    "'jobs':code(lambda:sm.list_training_jobs()),"
    "'who':code(lambda:boto3.client('sts',endpoint_url=u).get_caller_identity())}))\n"
)


def test_strict_mode_evaluates_the_calls_containers_make(strict_server: Any, strict_endpoint: str,
                                                         docker_client: Any) -> None:
    """With SMEMU_IAM_ENFORCE=1 the gateway checks a container's calls against its role's policies."""
    from emulator.runtime.gateway_network import NETWORK_NAME

    iam, s3 = make_client("iam", strict_endpoint), make_client("s3", strict_endpoint)
    role_name = unique_name("StrictContainerRole")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
    bucket = unique_name("strict-bucket")
    s3.create_bucket(Bucket=bucket)
    environment = {**strict_server.platform.container_environment(arn), "PROBE_BUCKET": bucket,
                   "AWS_ENDPOINT_URL_S3": strict_server.platform.gateway_url}

    def probe() -> dict[str, str]:
        container = docker_client.containers.run(build_boto3_image(docker_client), ["python3", "-c", STRICT_PROBE],
                                                 environment=environment, network=NETWORK_NAME, detach=True,
                                                 labels={"smemu.kind": "test"})
        try:
            assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()
            return dict(json.loads(container.logs().decode().strip().splitlines()[-1]))
        finally:
            container.remove(force=True)

    assert probe() == {"list": "AccessDenied", "put": "AccessDenied", "jobs": "AccessDeniedException",
                       "who": "allowed"}
    iam.put_role_policy(RoleName=role_name, PolicyName="read-in", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
             "Condition": {"StringEquals": {"s3:prefix": "in/"}}},
            {"Effect": "Allow", "Action": "sagemaker:List*", "Resource": "*"}]}))
    assert probe() == {"list": "allowed", "put": "AccessDenied", "jobs": "allowed", "who": "allowed"}
