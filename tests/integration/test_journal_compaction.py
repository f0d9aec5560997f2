"""A long-lived home: thousands of journaled changes, compacted as they come, all kept across kill -9.

``smemu serve`` runs as a separate process on a fresh home with the default store and the
default compaction threshold; clients make changes through the edge port with boto3, as a
user's jobs and scripts do.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from emulator.awsstate.recorder import COMPACT_AFTER
from tests.conftest import SAGEMAKER_TRUST_POLICY, ensure_minio_binary, free_port, make_client
from tests.integration.test_restart import ServeProcess

STREAMS, PUTS_PER_STREAM, EVENTS_PER_PUT = 4, 600, 2
SLACK = 50
"""Changes that may land between the compactor being woken and it taking the journal's lock."""


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    ensure_minio_binary()
    server = ServeProcess(tmp_path, free_port())
    try:
        yield server
    finally:
        server.stop()


def _aws_state(serve: ServeProcess) -> dict[str, Any]:
    with urllib.request.urlopen(serve.url + "/_smemu/health", timeout=10) as response:
        return dict(json.loads(response.read())["aws_state"])


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
