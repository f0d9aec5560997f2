"""The pytest plugin's container fixtures, exercised the way a user's project uses them.

An inner pytest session (a subprocess, so the plugin loads as a plugin and testcontainers is
configured from scratch) uses ``smemu_minio`` and ``smemu_emulator_container`` with the
emulator pointed at that MinIO, then the outer test checks nothing was left behind. Ryuk is
*not* disabled by the environment for the inner session: the plugin must notice that its
image cannot be had and reap by itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import docker
from emulator import pytest_plugin
from emulator.pytest_plugin import (
    DEFAULT_EMULATOR_IMAGE,
    DEFAULT_MINIO_IMAGE,
    OWNER_LABEL,
    build_emulator_image,
    ensure_minio_image,
    reap_orphans,
)

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

INNER_CONFTEST = '''
import pytest

@pytest.fixture(scope="session")
def smemu_emulator_env(smemu_minio):
    return smemu_minio.emulator_environment()
'''

INNER_TESTS = '''
import json, os, uuid
from pathlib import Path

RECORD = Path(os.environ["SMEMU_TEST_RECORD"])

def record(key, value):
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    data[key] = value
    RECORD.write_text(json.dumps(data))

def test_reaper_and_connection_settled(smemu_docker):
    from testcontainers.core.config import testcontainers_config as config
    assert config.ryuk_disabled, "Ryuk's image is not local, so the plugin must disable it"
    assert config.tc_host_override == "127.0.0.1"

def test_minio_is_a_real_s3(smemu_minio):
    s3 = smemu_minio.client()
    bucket = "tc-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    assert smemu_minio.url.startswith("http://127.0.0.1:")
    record("minio_url", smemu_minio.url)

def test_emulator_container_answers_and_uses_minio(smemu_emulator_container, smemu_minio):
    emu = smemu_emulator_container
    record("emulator_container", emu.container_id)
    record("emulator_home", str(emu.home))
    assert emu.environment["SMEMU_S3_ENDPOINT"] == smemu_minio.url
    sm = emu.client("sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    assert emu.client("sts").get_caller_identity()["Account"] == "123456789012"
    role = emu.client("iam").create_role(RoleName="r-" + uuid.uuid4().hex[:6], AssumeRolePolicyDocument="{}")
    assert role["Role"]["Arn"].startswith("arn:aws:iam::123456789012:role/")
    # S3 through the handle goes to MinIO, the store the emulator was configured with.
    s3 = emu.client("s3")
    bucket = "emu-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in smemu_minio.client().list_buckets()["Buckets"]]
    # The emulator validates like SageMaker (botocore's model), from inside its container too.
    import botocore.exceptions, pytest
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.describe_training_job(TrainingJobName="no-such-job-" + uuid.uuid4().hex[:6])
    assert err.value.response["Error"]["Code"] == "ValidationException"

def test_the_session_emulator_can_be_the_container(smemu_endpoint_url, smemu_emulator_container,
                                                   smemu_boto3_session):
    # run with --smemu-emulator=container: the session's fixtures use the emulator's image
    assert smemu_endpoint_url == smemu_emulator_container.url
    assert smemu_boto3_session.client("sagemaker").list_endpoints()["Endpoints"] == []
'''


@pytest.fixture(scope="module")
def docker_client() -> docker.DockerClient:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def images(docker_client: docker.DockerClient) -> None:
    """The local MinIO and emulator images (built here, as the plugin does in a checkout)."""
    if ensure_minio_image(docker_client, DEFAULT_MINIO_IMAGE, REPO) is None:
        pytest.skip(f"MinIO UNAVAILABLE: {DEFAULT_MINIO_IMAGE} could not be built by scripts/build-minio "
                    "(see its output above: Go toolchain or module proxy missing?)")
    build_emulator_image(docker_client, DEFAULT_EMULATOR_IMAGE, REPO)


def _plugin_args() -> list[str]:
    """Load the plugin explicitly unless the installed package registers it (pytest11 'smemu')."""
    if any(ep.value == "emulator.pytest_plugin" for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "emulator.pytest_plugin"]


def test_fixtures_start_minio_and_the_emulator_and_clean_up(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, images: None,
    docker_client: docker.DockerClient, tmp_path: Path,
) -> None:
    record = tmp_path / "record.json"
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    monkeypatch.delenv("SMEMU_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("SMEMU_TEST_RECORD", str(record))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)

    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "-rs", "-q",
                                           "--smemu-emulator=container", timeout=300)

    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)
    seen = json.loads(record.read_text())
    # Finalizers removed the containers and the emulator's home (Ryuk was off).
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(seen["emulator_container"])
    assert not Path(seen["emulator_home"]).exists()
    port = int(seen["minio_url"].rsplit(":", 1)[1])
    leftovers = [c.name for c in docker_client.containers.list(all=True, filters={"label": OWNER_LABEL})
                 if c.ports and any(str(port) == b.get("HostPort") for bs in c.ports.values() if bs for b in bs)]
    assert leftovers == []


def test_orphans_of_a_dead_session_are_reaped(docker_client: docker.DockerClient) -> None:
    """A crashed session's containers go at the next session's start (no Ryuk needed)."""
    base = os.environ.get("SMEMU_BASE_IMAGE", "smemu-base/python:3.11")
    try:
        docker_client.images.get(base)
    except docker.errors.ImageNotFound:
        pytest.skip(f"base image {base} missing (scripts/install-docker)")
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_owner = f"{socket.gethostname()}:{finished.stdout.strip()}"
    orphan = docker_client.containers.create(base, ["sleep", "300"], labels={
        OWNER_LABEL: dead_owner, "smemu.kind": "test"})
    alive = docker_client.containers.create(base, ["sleep", "300"], labels={
        OWNER_LABEL: pytest_plugin.owner_id(), "smemu.kind": "test"})
    try:
        assert reap_orphans(docker_client) >= 1
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(orphan.id)
        docker_client.containers.get(alive.id)  # this live session's container stays
    finally:
        for container in (orphan, alive):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
