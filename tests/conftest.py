"""Shared fixtures: an emulator on a free loopback port and boto3 clients pointed at it.

Integration tests get a real emulator (the production WSGI server in a thread of the test
process), real boto3 clients, a real Docker engine and real containers. The emulator runs
once per test session; tests isolate themselves by unique resource names.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from emulator.config import Settings, load_settings

pytest.register_assert_rewrite("tests.integration.runtimes")  # a plugin that test modules also import from

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str) -> str:
    """A resource name no other test uses (SageMaker names: letters, digits, hyphens)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


S3_STORES = ("minio", "memory", "external")
"""Stores the session emulator can use: SMEMU_TEST_S3 picks one (default: minio, the default store).

The whole suite runs once, on one store; tests/integration/test_s3_stores.py runs the S3 suite
through the edge port against every store (the default, an external MinIO and the in-memory one),
so covering the stores does not multiply the suite's time."""


def session_store() -> str:
    """The store SMEMU_TEST_S3 names for the session emulator."""
    choice = os.environ.get("SMEMU_TEST_S3", "minio")
    if choice not in S3_STORES:
        raise pytest.UsageError(f"SMEMU_TEST_S3 must be one of {', '.join(S3_STORES)} (got {choice!r})")
    return choice


@pytest.fixture(scope="session")
def s3_backend() -> str:
    """Which store the session emulator uses (SMEMU_TEST_S3)."""
    return session_store()


def ensure_minio_binary() -> None:
    """Build the pinned MinIO once per machine (scripts/build-minio) when it is missing."""
    import subprocess

    from emulator.pytest_plugin import minio_binary

    if minio_binary() is None:
        script = Path(__file__).resolve().parents[1] / "scripts" / "build-minio"
        subprocess.run([str(script), "--binary-only"], check=False, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The pinned MinIO (scripts/build-minio's cached binary) as a process on a free loopback port."""
    from emulator.pytest_plugin import MinioProcess, minio_binary

    ensure_minio_binary()
    binary = minio_binary()
    if binary is None:
        pytest.fail("MinIO UNAVAILABLE: scripts/build-minio could not build the pinned MinIO server "
                    "(needs Go and the Go module proxy; see its output above)")
    with MinioProcess(binary, data_dir=tmp_path_factory.mktemp("minio-data")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def emulator_settings(tmp_path_factory: pytest.TempPathFactory, s3_backend: str,
                      request: pytest.FixtureRequest) -> Settings:
    """Settings of the session's emulator: free port, fresh home, the store ``s3_backend`` names."""
    home = tmp_path_factory.mktemp(f"smemu-home-{s3_backend}")
    base = load_settings({k: v for k, v in os.environ.items() if k in ("SMEMU_BASE_IMAGE", "SMEMU_MINIO_BINARY",
                                                                       "SMEMU_CACHE")})
    # hold_seconds=0: the suite checks AWS's answers as they are (InProgress right after a Create);
    # the SDK tests and the hold's own tests turn the hold on (tests/integration/test_status_hold.py).
    # file:// channels of tests name folders under pytest's temporary root (emulator/host_paths.py).
    settings = base.with_overrides(port=free_port(), home=Path(home), host="127.0.0.1", hold_seconds=0,
                                   s3_store=s3_backend,
                                   host_folders=(tmp_path_factory.getbasetemp().resolve(),))
    if s3_backend == "minio":
        ensure_minio_binary()
    if s3_backend == "external":
        minio = request.getfixturevalue("minio_server")
        settings = settings.with_overrides(s3_endpoint=minio.url, s3_access_key=minio.access_key,
                                           s3_secret_key=minio.secret_key)
    return settings


@pytest.fixture(scope="session")
def emulator(emulator_settings: Settings) -> Iterator[Any]:
    """The emulator, serving for the whole test session."""
    from emulator.server import EmulatorServer

    server = EmulatorServer(emulator_settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gateway_url(emulator: Any) -> str:
    """The session emulator's container gateway, as its containers reach it (169.254.170.2)."""
    assert emulator.platform.gateway_url, "the container gateway did not start"
    return str(emulator.platform.gateway_url)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker-py client of this machine's engine (modules may define their own)."""
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def endpoint_url(emulator: Any, emulator_settings: Settings) -> str:
    """The edge URL of the session's emulator."""
    return f"http://127.0.0.1:{emulator_settings.port}"


def make_client(service: str, endpoint_url: str, **config: Any) -> Any:
    """A boto3 client for ``service`` against the emulator, with dummy credentials."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.fixture(scope="session")
def sagemaker_client(endpoint_url: str) -> Any:
    """boto3 ``sagemaker`` client."""
    return make_client("sagemaker", endpoint_url)


@pytest.fixture(scope="session")
def runtime_client(endpoint_url: str) -> Any:
    """boto3 ``sagemaker-runtime`` client (long read timeout for slow-container tests)."""
    return make_client("sagemaker-runtime", endpoint_url, read_timeout=120)


@pytest.fixture(scope="session")
def s3_client(endpoint_url: str, emulator_settings: Settings) -> Any:
    """boto3 ``s3`` client on the edge port (which relays to whichever store the emulator uses)."""
    return make_client("s3", endpoint_url)


@pytest.fixture(scope="session")
def logs_client(endpoint_url: str) -> Any:
    """boto3 ``logs`` client."""
    return make_client("logs", endpoint_url)


@pytest.fixture()
def bucket(s3_client: Any) -> str:
    """A fresh bucket for one test."""
    name = unique_name("bucket")
    s3_client.create_bucket(Bucket=name)
    return name


SAGEMAKER_TRUST_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)


def create_sagemaker_role(endpoint_url: str) -> str:
    """Create an IAM role SageMaker may assume in the emulator at ``endpoint_url``; its ARN."""
    iam = make_client("iam", endpoint_url)
    role = iam.create_role(RoleName=unique_name("SageMakerRole"), AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    return str(role["Role"]["Arn"])


@pytest.fixture(scope="session")
def role_arn(endpoint_url: str) -> str:
    """An IAM role SageMaker may assume, as a real account would have."""
    return create_sagemaker_role(endpoint_url)
