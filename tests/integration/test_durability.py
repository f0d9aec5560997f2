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

from emulator.awsstate.recorder import COMPACT_AFTER
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


# A long-lived home: thousands of journaled changes, compacted as they come, all kept across kill -9.

STREAMS, PUTS_PER_STREAM, EVENTS_PER_PUT = 4, 600, 2
SLACK = 50
"""Changes that may land between the compactor being woken and it taking the journal's lock."""


def _aws_state(serve: ServeProcess) -> dict[str, Any]:
    return dict(_health(serve)["aws_state"])


def _journal_lines(serve: ServeProcess) -> list[dict[str, Any]]:
    text = (serve.home / "state" / "aws-journal.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _put_stream(url: str, stream: str, sent: list[str]) -> None:
    logs = make_client("logs", url)
    logs.create_log_stream(logGroupName="/long/lived", logStreamName=stream)
    for put in range(PUTS_PER_STREAM):
        messages = [f"{stream} put {put} event {index}" for index in range(EVENTS_PER_PUT)]
        logs.put_log_events(logGroupName="/long/lived", logStreamName=stream, logEvents=[
            {"timestamp": int(time.time() * 1000), "message": message} for message in messages])
        sent.extend(messages)


def _read_stream(url: str, stream: str) -> list[str]:
    logs, token = make_client("logs", url), None
    messages: list[str] = []
    while True:
        page = logs.get_log_events(logGroupName="/long/lived", logStreamName=stream, startFromHead=True,
                                   **({"nextToken": token} if token else {}))
        messages.extend(event["message"] for event in page["events"])
        if not page["events"] or page["nextForwardToken"] == token:
            return messages
        token = page["nextForwardToken"]


def test_thousands_of_changes_are_compacted_and_all_kept_across_kill_9(serve: ServeProcess) -> None:
    serve.start()
    iam = make_client("iam", serve.url)
    roles = {}
    for index in range(30):
        role = iam.create_role(RoleName=f"LongLived{index}", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
        roles[role["Role"]["RoleName"]] = role["Role"]
    for index in range(25, 30):  # undone by later deletions
        iam.delete_role(RoleName=f"LongLived{index}")
        del roles[f"LongLived{index}"]
    make_client("logs", serve.url).create_log_group(logGroupName="/long/lived")
    sent: dict[str, list[str]] = {f"stream-{index}": [] for index in range(STREAMS)}
    writers = [threading.Thread(target=_put_stream, args=(serve.url, name, messages))
               for name, messages in sent.items()]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    changes = 30 + 5 + 1 + STREAMS * (1 + PUTS_PER_STREAM)
    assert all(len(messages) == PUTS_PER_STREAM * EVENTS_PER_PUT for messages in sent.values())

    deadline = time.monotonic() + 60
    while (running := _aws_state(serve))["changes_after_checkpoint"] >= COMPACT_AFTER:  # a compaction under way
        assert time.monotonic() < deadline, running
        time.sleep(0.1)
    assert running["appended"] >= changes and running["compactions"] >= changes // COMPACT_AFTER - 1
    journal = _journal_lines(serve)
    assert journal[1]["kind"] == "snapshot"
    assert len(journal) - 2 <= COMPACT_AFTER + SLACK  # bounded, whatever the history
    history = (serve.home / "state" / "aws-journal.history.jsonl").read_text().splitlines()
    assert len(history) - 1 + len(journal) - 2 == running["appended"]  # each change in exactly one of them

    serve.kill()  # no clean stop: whatever is after the checkpoint is replayed
    serve.start()
    restarted = _aws_state(serve)
    assert restarted["restored_from"] == "checkpoint" and restarted["diverged"] == 0
    assert restarted["replayed"] == len(journal) - 2
    assert [line.get("kind") for line in _journal_lines(serve)[1:]] == ["snapshot"]  # compacted at start
    for name, messages in sent.items():
        assert sorted(_read_stream(serve.url, name)) == sorted(messages), name
    iam = make_client("iam", serve.url)
    listed = {role["RoleName"]: role for role in iam.list_roles(MaxItems=1000)["Roles"]}
    assert set(listed) == set(roles)
    for name, role in roles.items():
        assert (listed[name]["RoleId"], listed[name]["CreateDate"]) == (role["RoleId"], role["CreateDate"])
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        iam.get_role(RoleName="LongLived29")
    assert gone.value.response["Error"]["Code"] == "NoSuchEntity"

    iam.create_role(RoleName="AfterRestart", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    serve.stop()  # a clean stop compacts: the next start replays nothing
    serve.start()
    assert _aws_state(serve)["replayed"] == 0
    assert make_client("iam", serve.url).get_role(RoleName="AfterRestart")["Role"]["RoleName"] == "AfterRestart"
    assert len(_read_stream(serve.url, "stream-0")) == PUTS_PER_STREAM * EVENTS_PER_PUT
