"""docker-compose.yml for real: up, the README's boto3 quick start, an endpoint, down.

The stack (emulator image built from the repository's Dockerfile, MinIO, registry) comes up
through scripts/compose with the offline override (no registry is ever probed from tests), on
free loopback ports and under a project name of its own, so it never meets a developer's
stack or another test session. The emulator runs in its container and drives this machine's
engine through the mounted socket: the training job and the endpoint it starts are sibling
containers whose bind mounts come from the emulator's state folder (mounted at the same path).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

import docker
from tests.integration.sample_images import build_sample_image

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "scripts" / "compose"
ACCESS_KEY = SECRET_KEY = "minioadmin"
UP_TIMEOUT = 600  # a first build of the emulator image installs its dependencies (~2 min)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_status(url: str) -> tuple[int, dict[str, str]] | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)
    except OSError:
        return None


def _wait(what: str, predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.2)


class Stack:
    """One compose project: its environment, ports and clients."""

    def __init__(self, tmp: Path) -> None:
        self.project = f"smemutest{uuid.uuid4().hex[:8]}"
        self.home = tmp / "compose-home"
        self.home.mkdir()
        self.ports = {name: _free_port() for name in ("SMEMU_PORT", "SMEMU_MINIO_PORT",
                                                         "SMEMU_MINIO_CONSOLE_PORT", "SMEMU_REGISTRY_PORT")}
        self.env = {
            **os.environ,
            "SMEMU_COMPOSE_OFFLINE": "1",
            "COMPOSE_PROJECT_NAME": self.project,
            "SMEMU_COMPOSE_HOME": str(self.home),
            "SMEMU_S3_ACCESS_KEY": ACCESS_KEY,
            "SMEMU_S3_SECRET_KEY": SECRET_KEY,
            **{name: str(port) for name, port in self.ports.items()},
        }
        self.url = f"http://127.0.0.1:{self.ports['SMEMU_PORT']}"
        self.s3_url = f"http://127.0.0.1:{self.ports['SMEMU_MINIO_PORT']}"

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(COMPOSE), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)

    def client_environment(self) -> dict[str, str]:
        """What a user exports after `docker compose up` (docs/compose.md): one endpoint, S3 included."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID=ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
        return env

    def client(self, service: str, **config: Any) -> Any:
        endpoint = self.s3_url if service == "s3" else self.url
        return boto3.session.Session().client(
            service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, config=Config(retries={"max_attempts": 2}, **config))


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """The sample images the stack's jobs run (built on this engine, which the emulator shares)."""
    return {"training": build_sample_image("training"), "serving": build_sample_image("serving")}


def _quickstart_code(training_image: str) -> str:
    """The README's boto3 quick start, verbatim but for the image it trains with."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"## Quick start with boto3\n.*?```python\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no '## Quick start with boto3' python block"
    code = match.group(1)
    assert "smemu-sample-training:latest" in code
    return code.replace("smemu-sample-training:latest", training_image)


def _project_objects(engine: docker.DockerClient, project: str) -> list[str]:
    selector = {"label": f"com.docker.compose.project={project}"}
    return ([f"container {c.name}" for c in engine.containers.list(all=True, filters=selector)]
            + [f"network {n.name}" for n in engine.networks.list(filters=selector)]
            + [f"volume {v.name}" for v in engine.volumes.list(filters=selector)])


def _emulator_objects(engine: docker.DockerClient, names: list[str]) -> list[str]:
    found = []
    for name in names:
        found += [c.name for c in engine.containers.list(all=True, filters={"label": f"smemu.name={name}"})]
    return found


def test_compose_stack_runs_training_and_an_endpoint(
    tmp_path: Path, engine: docker.DockerClient, images: dict[str, str],
) -> None:
    stack = Stack(tmp_path)
    created: list[str] = []
    started = time.monotonic()
    try:
        up = stack.compose("up", "-d", "--build", timeout=UP_TIMEOUT)
        assert up.returncode == 0, f"compose up failed:\n{up.stdout[-3000:]}\n{up.stderr[-5000:]}"
        _wait("the emulator's edge port", lambda: _http_status(stack.url + "/"), 120)
        _wait("MinIO's health", lambda: (_http_status(stack.s3_url + "/minio/health/live") or (0,))[0] == 200, 60)
        up_seconds = time.monotonic() - started

        # Only loopback ports (and, for MinIO, the link-local address where the containers the
        # emulator starts reach this machine), and the Docker socket only in the emulator.
        for container in engine.containers.list(filters={"label": f"com.docker.compose.project={stack.project}"}):
            service = container.labels["com.docker.compose.service"]
            allowed = {"127.0.0.1", "169.254.170.2"} if service == "minio" else {"127.0.0.1"}
            for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
                assert {b["HostIp"] for b in bindings or []} <= allowed, (service, bindings)
            sockets = [m for m in container.attrs["Mounts"] if m["Destination"] == "/var/run/docker.sock"]
            assert bool(sockets) == (service == "emulator"), service

        # The registry answers the Distribution API.
        registry = _http_status(f"http://127.0.0.1:{stack.ports['SMEMU_REGISTRY_PORT']}/v2/")
        assert registry and registry[0] == 200, registry
        assert registry[1].get("Docker-Distribution-Api-Version") == "registry/2.0"

        # The README's quick start, run as a user would: a script configured by the environment.
        created.append("first-job")
        quickstart = subprocess.run([sys.executable, "-c", _quickstart_code(images["training"])],
                                    env=stack.client_environment(), capture_output=True, text=True, timeout=300,
                                    check=False)
        assert quickstart.returncode == 0, f"{quickstart.stdout}\n{quickstart.stderr}\n" + _logs(stack)
        assert quickstart.stdout.startswith("Completed"), quickstart.stdout
        assert "s3://my-bucket/output/first-job/output/model.tar.gz" in quickstart.stdout, quickstart.stdout

        sm, s3 = stack.client("sagemaker"), stack.client("s3")
        job = sm.describe_training_job(TrainingJobName="first-job")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
        assert artifact == "s3://my-bucket/output/first-job/output/model.tar.gz"
        s3.head_object(Bucket="my-bucket", Key="output/first-job/output/model.tar.gz")  # in MinIO

        # The containers the emulator starts reach S3 through the emulator's container gateway
        # (169.254.170.2, the host side of its container network), which relays it to MinIO.
        report = _model_report(s3, "my-bucket", "output/first-job/output/model.tar.gz")
        if "AWS_ENDPOINT_URL_S3" in report.get("env", {}):  # once training hands containers AWS endpoints
            assert report["env"]["AWS_ENDPOINT_URL_S3"] == f"http://169.254.170.2:{stack.ports['SMEMU_PORT']}"
        container_s3 = f"http://169.254.170.2:{stack.ports['SMEMU_MINIO_PORT']}"
        assert _status_from_a_container(engine, images["training"], container_s3 + "/minio/health/live") == 200

        # An endpoint serving the trained model.
        role = sm.describe_training_job(TrainingJobName="first-job")["RoleArn"]
        model, config, endpoint = (f"compose-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("model", "config", "ep"))
        created.append(endpoint)
        sm.create_model(ModelName=model, ExecutionRoleArn=role,
                        PrimaryContainer={"Image": images["serving"], "ModelDataUrl": artifact})
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)

        def settled() -> dict[str, Any] | None:
            described = sm.describe_endpoint(EndpointName=endpoint)
            return None if described["EndpointStatus"] == "Creating" else dict(described)

        status = _wait("the endpoint leaving Creating", settled, 120)
        assert status["EndpointStatus"] == "InService", f"{status.get('FailureReason')}\n{_logs(stack)}"
        runtime = stack.client("sagemaker-runtime", read_timeout=60)
        answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=b'{"rows": [[1, 2]]}',
                                         ContentType="application/json")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        echoed = json.loads(answer["Body"].read())
        assert "model.json" in echoed["model_files"], echoed  # the trained model.tar.gz, unpacked
        sm.delete_endpoint(EndpointName=endpoint)
        _wait("the endpoint's containers to go", lambda: not _emulator_objects(engine, [endpoint]), 60)
    finally:
        down = stack.compose("down", "-v", "-t", "10", timeout=180)
        leftovers = _project_objects(engine, stack.project) + _emulator_objects(engine, created)
        for name in _emulator_objects(engine, created):  # never leave a running container behind
            engine.containers.get(name).remove(force=True)
        shutil.rmtree(stack.home, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    assert leftovers == [], leftovers
    print(f"compose stack: up in {up_seconds:.1f} s, whole test {time.monotonic() - started:.1f} s")


def _model_report(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """model.json that the sample trainer wrote (what it saw: environment, hyperparameters...)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        member = archive.extractfile("model.json")
        assert member is not None
        return dict(json.load(member))


def _status_from_a_container(engine: docker.DockerClient, image: str, url: str) -> int:
    """GET ``url`` from a container on a fresh bridge network, as a job's container would."""
    network = engine.networks.create(f"smemu-test-{uuid.uuid4().hex[:8]}", driver="bridge",
                                     labels={"smemu.kind": "test"})
    container = engine.containers.create(
        image, entrypoint=["python3", "-c", ("import sys, urllib.request; "
                                             "print(urllib.request.urlopen(sys.argv[1], timeout=5).status)"), url],
        network=network.name, labels={"smemu.kind": "test"})
    try:
        container.start()
        result = container.wait(timeout=30)
        output = container.logs().decode(errors="replace")
        assert result["StatusCode"] == 0, output
        return int(output.strip().splitlines()[-1])
    finally:
        container.remove(force=True)
        network.remove()


def _logs(stack: Stack) -> str:
    logs = stack.compose("logs", "--no-color", "--tail", "60", "emulator")
    return f"--- emulator logs ---\n{logs.stdout[-6000:]}"
