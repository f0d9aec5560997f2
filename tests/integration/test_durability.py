"""Nothing acknowledged is lost: restarts and kill -9 of ``smemu serve`` on the default store.

Every test runs ``smemu serve`` as a separate process (as a user does) with a fresh home and the
default store (MinIO run by the emulator), and kills it with SIGKILL right after the last
acknowledged change: no clean shutdown, no chance to save anything late.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from tests.conftest import SAGEMAKER_TRUST_POLICY, ensure_minio_binary, free_port, make_client, unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_restart import ServeProcess
from tests.integration.test_training_helpers import job_request, log_messages, s3_channel, wait_terminal


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    ensure_minio_binary()
    server = ServeProcess(tmp_path, free_port())
    try:
        yield server
    finally:
        server.stop()


def _health(serve: ServeProcess) -> dict[str, Any]:
    with urllib.request.urlopen(serve.url + "/_smemu/health", timeout=10) as response:
        return dict(json.loads(response.read()))


def _gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").exists() else ""
        if "\nState:\tZ" in status:  # a zombie: dead, waiting for its parent to notice
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_restart_then_create_bucket_keeps_the_objects_and_ids(serve: ServeProcess) -> None:
    """The README's quick start, twice: create_bucket on an existing bucket must not empty it."""
    serve.start()
    s3, iam = make_client("s3", serve.url), make_client("iam", serve.url)
    s3.create_bucket(Bucket="my-bucket")
    s3.put_object(Bucket="my-bucket", Key="train/data.csv", Body=b"1,2\n3,4\n")
    role = iam.create_role(RoleName="SageMakerRole", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]
    assert _health(serve)["s3"]["kind"] == "minio"
    serve.stop()

    serve.start()
    s3, iam = make_client("s3", serve.url), make_client("iam", serve.url)
    s3.create_bucket(Bucket="my-bucket")  # us-east-1: 200 for your own bucket, and nothing is lost
    assert s3.get_object(Bucket="my-bucket", Key="train/data.csv")["Body"].read() == b"1,2\n3,4\n"
    again = iam.get_role(RoleName="SageMakerRole")["Role"]
    assert (again["RoleId"], again["Arn"], again["CreateDate"]) == (role["RoleId"], role["Arn"], role["CreateDate"])
    with pytest.raises(botocore.exceptions.ClientError) as exists:
        iam.create_role(RoleName="SageMakerRole", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    assert exists.value.response["Error"]["Code"] == "EntityAlreadyExists"


def test_acknowledged_puts_and_changes_survive_repeated_kill_9(serve: ServeProcess) -> None:
    acknowledged: dict[str, bytes] = {}
    roles: list[str] = []
    for round_number in range(3):
        serve.start()
        s3, iam = make_client("s3", serve.url), make_client("iam", serve.url)
        if round_number == 0:
            s3.create_bucket(Bucket="kill-bucket")
        minio_pid = _health(serve)["s3"]["pid"]
        stop = threading.Event()

        def writer(prefix: str = f"round-{round_number}") -> None:
            client = make_client("s3", serve.url)
            number = 0
            while not stop.is_set():
                key, body = f"{prefix}/{number:04d}", os.urandom(64) * (1 + number % 50)
                try:
                    client.put_object(Bucket="kill-bucket", Key=key, Body=body)
                except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                    return  # the emulator died under this request: it was never acknowledged
                acknowledged[key] = body
                number += 1

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        role = f"KillRole{round_number}"
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
        roles.append(role)
        deadline = time.monotonic() + 60
        while sum(k.startswith(f"round-{round_number}/") for k in list(acknowledged)) < 20:
            assert time.monotonic() < deadline, "PUTs are not being acknowledged"
            time.sleep(0.01)
        serve.kill()  # with PUTs in flight
        stop.set()
        thread.join(30)
        assert _gone(minio_pid), "MinIO outlived the emulator it belongs to"

    serve.start()
    s3, iam = make_client("s3", serve.url), make_client("iam", serve.url)
    for key, body in acknowledged.items():
        assert s3.get_object(Bucket="kill-bucket", Key=key)["Body"].read() == body, key
    assert {r["RoleName"] for r in iam.list_roles()["Roles"]} >= set(roles)


@pytest.mark.docker
def test_a_completed_job_then_kill_9_keeps_its_artifact_and_logs(serve: ServeProcess) -> None:
    serve.start()
    sm, s3 = make_client("sagemaker", serve.url), make_client("s3", serve.url)
    role = make_client("iam", serve.url).create_role(
        RoleName="DurableJobRole", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
    s3.create_bucket(Bucket="durable-job")
    s3.put_object(Bucket="durable-job", Key="train/data.csv", Body=b"1,2\n3,4\n")
    name = unique_name("durable-job")
    sm.create_training_job(**job_request(name, build_sample_image("training"), role, "durable-job",
                                         InputDataConfig=[s3_channel("train", "s3://durable-job/train/")]))
    described = wait_terminal(sm, name, timeout=180)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    serve.kill()  # at once: the artifact must already be durable

    serve.start()
    sm, s3 = make_client("sagemaker", serve.url), make_client("s3", serve.url)
    again = sm.describe_training_job(TrainingJobName=name)
    assert again["TrainingJobStatus"] == "Completed"
    key = again["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
    body = s3.get_object(Bucket="durable-job", Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert json.load(archive.extractfile("model.json"))["channels"]["train"]["lines"] == 2  # type: ignore[arg-type]
    assert any(log_messages(make_client("logs", serve.url), name).values()), "the job's logs were lost"


def test_minio_is_restarted_when_it_dies(serve: ServeProcess) -> None:
    serve.start()
    s3 = make_client("s3", serve.url)
    s3.create_bucket(Bucket="crash-bucket")
    s3.put_object(Bucket="crash-bucket", Key="before", Body=b"kept")
    pid = _health(serve)["s3"]["pid"]
    os.kill(pid, 9)
    deadline = time.monotonic() + 60
    while True:
        health = _health(serve)["s3"]
        if health["restarts"] >= 1 and health["pid"] not in (None, pid):
            try:
                s3.put_object(Bucket="crash-bucket", Key="after", Body=b"written")
                break
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                pass
        assert time.monotonic() < deadline, f"MinIO was not restarted: {health}"
        time.sleep(0.1)
    assert s3.get_object(Bucket="crash-bucket", Key="before")["Body"].read() == b"kept"
    assert s3.get_object(Bucket="crash-bucket", Key="after")["Body"].read() == b"written"


def test_a_journal_from_a_newer_release_is_refused_clearly(tmp_path: Path) -> None:
    import subprocess
    import sys

    state = tmp_path / "state"
    state.mkdir()
    (state / "aws-journal.jsonl").write_text('{"format": "smemu-aws-journal", "version": 99}\n')
    env = {**os.environ, "SMEMU_HOME": str(tmp_path), "SMEMU_PORT": "0", "SMEMU_S3_STORE": "memory"}
    result = subprocess.run([sys.executable, "-m", "emulator.cli", "serve"], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "written by a newer sagemaker-emulator (journal format 99" in result.stdout + result.stderr
