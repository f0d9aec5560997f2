"""Compaction of the AWS state journal: the same state comes back, and a crash never loses it.

Requests go from boto3 clients through :class:`AwsState` into this process's moto, in process
(botocore's ``before-send`` hands each request to the WSGI app instead of a socket). Each
restore starts from an empty moto, as a new emulator process does.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from emulator.awsstate import journal as journal_module
from emulator.awsstate.journal import VERSION, JournalError, read_journal
from emulator.awsstate.recorder import AwsState, history_path
from emulator.gateway.aws import create_moto_app
from tests.conftest import SAGEMAKER_TRUST_POLICY
from tests.signed_wsgi import environ_of

ACCOUNT, REGION = "123456789012", "us-east-1"
_SESSION = boto3.session.Session()
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                               "Resource": "*"}]})


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_args: Any, **_kwargs: Any) -> Iterator[bytes]:
        yield self._body


class _Prepared:
    """What :func:`environ_of` takes (a request to prepare) around a request botocore prepared already."""

    def __init__(self, request: Any) -> None:
        self._request = request

    def prepare(self) -> Any:
        headers = {name: value.decode() if isinstance(value, bytes) else value
                   for name, value in self._request.headers.items()}
        return type("Prepared", (), {"url": self._request.url, "method": self._request.method,
                                     "body": self._request.body, "headers": headers})()


def _environ(request: Any) -> dict[str, Any]:
    environ = environ_of(_Prepared(request), "127.0.0.1")
    environ.update({"wsgi.url_scheme": "http", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "4570",
                    "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "", "wsgi.errors": io.StringIO()})
    return environ


class Moto:
    """A fresh moto in this process, and boto3 clients whose requests go through an :class:`AwsState`."""

    def __init__(self) -> None:
        from moto.core.base_backend import BackendDict

        BackendDict.reset()
        self.app = create_moto_app()
        self.state: AwsState | None = None
        self._clients: dict[str, Any] = {}

    def open(self, path: Path, compact_after: int = 10**6) -> AwsState:
        self.state = AwsState(path, compact_after)
        self.state.restore(self.app)
        return self.state

    def client(self, service: str) -> Any:
        if service in self._clients:
            return self._clients[service]
        client = self._clients[service] = _SESSION.client(
            service, endpoint_url="http://127.0.0.1:4570", region_name=REGION, aws_access_key_id="test",
            aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
        client.meta.events.register("before-send", self._send)
        return client

    def _send(self, request: Any, **_kwargs: Any) -> AWSResponse:
        assert self.state is not None
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

        body = b"".join(self.state.handle(self.app, _environ(request), start_response))
        return AWSResponse(request.url, answer["status"], answer["headers"], _Raw(body))


@pytest.fixture()
def moto() -> Iterator[Moto]:
    yield Moto()
    from moto.core.base_backend import BackendDict

    BackendDict.reset()


def make_history(moto: Moto) -> None:
    """Changes of every kind the journal keeps, some undone by later deletions."""
    iam, ecr, logs = moto.client("iam"), moto.client("ecr"), moto.client("logs")
    sns, sqs, cloudwatch = moto.client("sns"), moto.client("sqs"), moto.client("cloudwatch")
    policy = iam.create_policy(PolicyName="ReadData", PolicyDocument=POLICY)["Policy"]["Arn"]
    for index in range(4):
        iam.create_role(RoleName=f"Role{index}", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
        iam.attach_role_policy(RoleName=f"Role{index}", PolicyArn=policy)
    iam.put_role_policy(RoleName="Role0", PolicyName="inline", PolicyDocument=POLICY)
    iam.tag_role(RoleName="Role1", Tags=[{"Key": "team", "Value": "ml"}])
    iam.detach_role_policy(RoleName="Role3", PolicyArn=policy)
    iam.delete_role(RoleName="Role3")
    iam.create_user(UserName="builder")
    iam.create_access_key(UserName="builder")
    iam.create_user(UserName="gone")
    iam.delete_user(UserName="gone")
    ecr.create_repository(repositoryName="trainer")
    ecr.put_lifecycle_policy(repositoryName="trainer", lifecyclePolicyText=json.dumps({"rules": [{
        "rulePriority": 1, "description": "keep the last ten images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
        "action": {"type": "expire"}}]}))
    ecr.create_repository(repositoryName="scratch")
    ecr.delete_repository(repositoryName="scratch")
    logs.create_log_group(logGroupName="/bench")
    logs.put_retention_policy(logGroupName="/bench", retentionInDays=7)
    logs.create_log_stream(logGroupName="/bench", logStreamName="client")
    now = int(time.time() * 1000)
    for index in range(30):
        logs.put_log_events(logGroupName="/bench", logStreamName="client",
                            logEvents=[{"timestamp": now + index, "message": f"client line {index}"}])
    assert moto.state is not None
    for index in range(20):  # what the platform writes: container log lines, training metrics
        moto.state.write("logs.put_log_events", {
            "account_id": ACCOUNT, "region": REGION, "group": "/aws/sagemaker/TrainingJobs", "stream": "job/algo-1",
            "events": [{"timestamp": now + index, "message": f"epoch {index}"}]})
        moto.state.write("cloudwatch.put_metric_values", {
            "account_id": ACCOUNT, "region": REGION, "namespace": "/aws/sagemaker/TrainingJobs",
            "points": [["loss", 1.0 / (index + 1), now / 1000 + index, {"TrainingJobName": "job"}]]})
    logs.create_log_group(logGroupName="/gone")
    logs.delete_log_group(logGroupName="/gone")
    cloudwatch.put_metric_data(Namespace="Client", MetricData=[{"MetricName": "m", "Value": 2.0}])
    topic = sns.create_topic(Name="done")["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="Done")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:inbox")
    sns.publish(TopicArn=topic, Message="in flight")  # a message: not state
    sqs.send_message(QueueUrl=queue, MessageBody="in flight")
    old = sns.create_topic(Name="old")["TopicArn"]
    sns.delete_topic(TopicArn=old)


def _strip(answer: dict[str, Any]) -> dict[str, Any]:
    answer.pop("ResponseMetadata", None)
    return answer


def observe(moto: Moto) -> dict[str, Any]:
    """What clients can read back of the state, as plain data."""
    iam, ecr, logs = moto.client("iam"), moto.client("ecr"), moto.client("logs")
    sns, sqs, cloudwatch = moto.client("sns"), moto.client("sqs"), moto.client("cloudwatch")
    seen: dict[str, Any] = {"roles": _strip(iam.list_roles()), "users": _strip(iam.list_users()),
                            "policies": _strip(iam.list_policies(Scope="Local"))}
    for role in seen["roles"]["Roles"]:
        name = role["RoleName"]
        seen[f"role {name}"] = [_strip(iam.get_role(RoleName=name)), _strip(iam.list_role_tags(RoleName=name)),
                                _strip(iam.list_attached_role_policies(RoleName=name)),
                                _strip(iam.list_role_policies(RoleName=name))]
    seen["keys"] = _strip(iam.list_access_keys(UserName="builder"))
    seen["repositories"] = _strip(ecr.describe_repositories())
    seen["lifecycle"] = _strip(ecr.get_lifecycle_policy(repositoryName="trainer"))
    seen["lifecycle"].pop("lastEvaluatedAt")  # moto answers the time of the read
    seen["groups"] = _strip(logs.describe_log_groups())
    for group in seen["groups"]["logGroups"]:
        name = group["logGroupName"]
        seen[f"streams {name}"] = _strip(logs.describe_log_streams(logGroupName=name))
        for stream in seen[f"streams {name}"]["logStreams"]:
            seen[f"events {name} {stream['logStreamName']}"] = _strip(logs.get_log_events(
                logGroupName=name, logStreamName=stream["logStreamName"], startFromHead=True, limit=10000))
    seen["metrics"] = sorted(json.dumps(metric, sort_keys=True) for metric in cloudwatch.list_metrics()["Metrics"])
    seen["topics"] = _strip(sns.list_topics())
    seen["topic"] = _strip(sns.get_topic_attributes(TopicArn=seen["topics"]["Topics"][0]["TopicArn"]))
    seen["subscriptions"] = _strip(sns.list_subscriptions())
    seen["queues"] = _strip(sqs.list_queues())
    return seen


def messages_waiting(moto: Moto) -> str:
    sqs = moto.client("sqs")
    url = sqs.get_queue_url(QueueName="inbox")["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


def restore(tmp_path: Path, name: str, journal: Path, history: Path | None = None) -> tuple[Moto, AwsState]:
    """A fresh moto restored from a copy of ``journal`` (and its history), as a new process would."""
    home = tmp_path / name
    home.mkdir()
    shutil.copy(journal, home / journal.name)
    if history is not None and history.exists():
        shutil.copy(history, history_path(home / journal.name))
    fresh = Moto()
    return fresh, fresh.open(home / journal.name)


def test_a_compacted_journal_restores_exactly_the_state_the_full_journal_does(moto: Moto, tmp_path: Path) -> None:
    path = tmp_path / "live" / "aws-journal.jsonl"
    state = moto.open(path)
    make_history(moto)
    live = observe(moto)
    assert messages_waiting(moto) != "0"
    original = tmp_path / "original.jsonl"
    shutil.copy(path, original)
    state.compact()
    header, entries = read_journal(path)
    assert header is not None and header["version"] == VERSION
    assert [entry["kind"] for entry in entries] == ["snapshot"]
    _, full = read_journal(original)
    assert entries[0]["n"] == full[-1]["n"] > 100  # the checkpoint holds every change
    _, history = read_journal(history_path(path))
    assert [entry["n"] for entry in history] == [entry["n"] for entry in full]  # nothing folded is lost
    state.close()

    replayed, replayed_state = restore(tmp_path, "replayed", original)
    assert replayed_state.restored_from == "journal" and replayed_state.diverged == 0
    from_journal = observe(replayed)
    replayed_state.close()
    loaded, loaded_state = restore(tmp_path, "loaded", path)
    assert loaded_state.restored_from == "checkpoint" and loaded_state.replayed == 0
    from_checkpoint = observe(loaded)
    assert from_checkpoint == from_journal == live
    assert messages_waiting(loaded) == "0"  # messages in flight are not state, as on replay
    assert sorted(role["RoleName"] for role in from_checkpoint["roles"]["Roles"]) == ["Role0", "Role1", "Role2"]
    assert len(from_checkpoint["events /bench client"]["events"]) == 30
    assert len(from_checkpoint["events /aws/sagemaker/TrainingJobs job/algo-1"]["events"]) == 20

    # Changes after the checkpoint are appended to it and replayed after loading it.
    loaded.client("iam").create_role(RoleName="After", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    role = loaded.client("iam").get_role(RoleName="After")["Role"]
    _, entries = read_journal(loaded_state.path)
    assert [entry["kind"] for entry in entries] == ["snapshot", "http"]
    shutil.copy(loaded_state.path, tmp_path / "tail.jsonl")
    loaded_state.close()  # a clean stop compacts again
    _, entries = read_journal(loaded_state.path)
    assert [entry["kind"] for entry in entries] == ["snapshot"]
    for journal in (tmp_path / "tail.jsonl", loaded_state.path):
        again, again_state = restore(tmp_path, f"again-{journal.stem}", journal)
        assert again.client("iam").get_role(RoleName="After")["Role"] == role
        assert observe(again)["events /bench client"] == from_journal["events /bench client"]
        again_state.close()


def test_the_journal_compacts_itself_past_the_threshold_and_at_start(moto: Moto, tmp_path: Path) -> None:
    path = tmp_path / "aws-journal.jsonl"
    state = moto.open(path, compact_after=25)
    logs = moto.client("logs")
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    for index in range(120):
        logs.put_log_events(logGroupName="g", logStreamName="s",
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": f"line {index}"}])
    deadline = time.monotonic() + 30
    while state.compactions < 4 and time.monotonic() < deadline:  # the compactor thread runs beside
        time.sleep(0.02)
    assert state.compactions >= 4
    _, entries = read_journal(path)
    assert entries[0]["kind"] == "snapshot" and len(entries) <= 1 + 25 + 5
    shutil.copy(path, tmp_path / "killed.jsonl")  # as a kill -9 would leave it: no compaction at stop
    state.close()

    fresh = Moto()
    (tmp_path / "next").mkdir()
    shutil.copy(tmp_path / "killed.jsonl", tmp_path / "next" / "aws-journal.jsonl")
    reopened = fresh.open(tmp_path / "next" / "aws-journal.jsonl")
    events = fresh.client("logs").get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)["events"]
    assert [event["message"] for event in events] == [f"line {index}" for index in range(120)]
    _, entries = read_journal(reopened.path)
    assert [entry["kind"] for entry in entries] == ["snapshot"]  # compacted at start
    reopened.close()


def test_a_version_1_journal_is_read_and_compacted_into_the_current_format(moto: Moto, tmp_path: Path) -> None:
    path = tmp_path / "aws-journal.jsonl"
    state = moto.open(path)
    moto.client("iam").create_role(RoleName="Old", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    role = moto.client("iam").get_role(RoleName="Old")["Role"]
    shutil.copy(path, tmp_path / "v1.jsonl")
    state.close()
    lines = (tmp_path / "v1.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    header["version"] = 1
    (tmp_path / "v1.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")

    fresh, reopened = restore(tmp_path, "v1", tmp_path / "v1.jsonl")
    assert reopened.restored_from == "journal"
    assert fresh.client("iam").get_role(RoleName="Old")["Role"] == role
    header_now, entries = read_journal(reopened.path)
    assert header_now is not None and header_now["version"] == VERSION and entries[0]["kind"] == "snapshot"
    reopened.close()


def test_another_moto_release_rebuilds_from_the_history_or_refuses_clearly(moto: Moto, tmp_path: Path) -> None:
    path = tmp_path / "aws-journal.jsonl"
    state = moto.open(path)
    iam = moto.client("iam")
    iam.create_role(RoleName="Kept", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    role = iam.get_role(RoleName="Kept")["Role"]
    state.close()
    lines = path.read_text().splitlines()
    checkpoint = json.loads(lines[1])
    checkpoint["moto"] = "0.0.1"  # written by another release: its pickle is not loaded
    path.write_text("\n".join([lines[0], json.dumps(checkpoint)]) + "\n")

    fresh, reopened = restore(tmp_path, "upgraded", path, history_path(path))
    assert reopened.restored_from == "history"
    assert fresh.client("iam").get_role(RoleName="Kept")["Role"] == role  # same id and date: same requests
    _, entries = read_journal(reopened.path)
    assert entries[0]["moto"] != "0.0.1"  # and a checkpoint of this release replaces it
    reopened.close()

    (tmp_path / "bare").mkdir()
    shutil.copy(path, tmp_path / "bare" / path.name)
    with pytest.raises(JournalError, match=r"written with moto 0\.0\.1 .*pip install 'moto\[server\]==0\.0\.1'"):
        Moto().open(tmp_path / "bare" / path.name)


def _die(*_args: Any, **_kwargs: Any) -> Any:
    raise KeyboardInterrupt("killed here")  # not an Exception: nothing on the way catches it


@pytest.mark.parametrize("moment", ["history fsync", "rename", "directory fsync"])
def test_a_crash_at_any_step_of_compaction_leaves_a_whole_journal(moto: Moto, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  moment: str) -> None:
    path = tmp_path / "live" / "aws-journal.jsonl"
    state = moto.open(path)
    iam = moto.client("iam")
    for index in range(5):
        iam.create_role(RoleName=f"Crash{index}", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
        if index == 1:
            state.compact()  # the crash below is in the second compaction: checkpoint and history exist
    roles = _strip(iam.list_roles())
    before = path.read_bytes()
    with monkeypatch.context() as patched:
        if moment == "history fsync":  # the folded changes are being appended to the history
            patched.setattr(os, "fsync", _die)
        elif moment == "rename":  # the new journal is written and synced, not yet renamed in
            patched.setattr(os, "replace", _die)
        else:  # renamed in, the directory not yet synced
            patched.setattr(journal_module, "_fsync_directory", _die)
        with pytest.raises(KeyboardInterrupt):
            state.compact()
    on_disk = path.read_bytes()
    if moment == "directory fsync":
        assert on_disk != before and [entry["kind"] for entry in read_journal(path)[1]] == ["snapshot"]
    else:
        assert on_disk == before
    killed = tmp_path / "killed"  # what a kill -9 at that moment leaves: this journal and this history
    killed.mkdir()
    (killed / path.name).write_bytes(on_disk)
    shutil.copy(history_path(path), history_path(killed / path.name))
    state.close()

    fresh = Moto()
    reopened = fresh.open(killed / path.name)
    assert _strip(fresh.client("iam").list_roles()) == roles
    reopened.close()
    _, history = read_journal(history_path(reopened.path))
    sequences = [entry["n"] for entry in history]
    assert sequences == list(range(1, len(sequences) + 1)) and sequences[-1] >= 5  # each change once, in order


def test_a_history_append_cut_short_is_repaired_not_duplicated(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    lines = [json.dumps({"n": n, "kind": "call"}).encode() for n in range(1, 4)]
    assert journal_module.append_history(history, lines[:2], 0) == 2
    with history.open("ab") as handle:
        handle.write(b'{"n": 3, "ki')  # a crash mid-append
    assert journal_module.last_sequence(history) == 2
    assert journal_module.append_history(history, lines, 2) == 3
    assert [entry["n"] for entry in read_journal(history)[1]] == [1, 2, 3]
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(b'{"format": "smemu-aws-jou')  # a crash while the header itself was written
    assert journal_module.append_history(torn, lines, 0) == 3
    header, entries = read_journal(torn)
    assert header is not None and header["format"] == "smemu-aws-journal" and len(entries) == 3


def test_compaction_off_keeps_the_whole_journal(moto: Moto, tmp_path: Path) -> None:
    """``SMEMU_AWS_JOURNAL_COMPACT_AFTER=0``: no checkpoint at the threshold, at a stop or at a start."""
    path = tmp_path / "aws-journal.jsonl"
    state = moto.open(path, compact_after=0)
    for index in range(3):
        moto.client("iam").create_role(RoleName=f"Plain{index}", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    state.close()
    fresh = Moto()
    reopened = fresh.open(path, compact_after=0)
    assert reopened.restored_from == "journal" and reopened.replayed == 3
    reopened.close()
    assert [entry["kind"] for entry in read_journal(path)[1]] == ["http"] * 3
    assert not history_path(path).exists()


def test_a_history_left_without_its_journal_is_set_aside(moto: Moto, tmp_path: Path) -> None:
    path = tmp_path / "aws-journal.jsonl"
    state = moto.open(path)
    moto.client("iam").create_role(RoleName="Forgotten", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    state.close()
    assert history_path(path).exists()
    path.unlink()  # a user starting over with empty AWS state
    fresh = Moto()
    reopened = fresh.open(path)
    assert reopened.restored_from == "empty" and not history_path(path).exists()
    assert len(list(tmp_path.glob("aws-journal.history.jsonl.*.orphaned"))) == 1
    fresh.client("iam").create_role(RoleName="New", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    reopened.close()
    _, history = read_journal(history_path(path))
    assert [entry["n"] for entry in history] == [1]  # the new journal's own change, not the old one's


def test_a_checkpoint_holds_moto_objects_only_and_no_s3(moto: Moto, tmp_path: Path) -> None:
    """Only the moto release is checked before loading a checkpoint: no class of the emulator may be in it,
    and S3 (the object store's business) is left out."""
    from emulator.awsstate import snapshot

    moto.open(tmp_path / "aws-journal.jsonl")
    make_history(moto)
    s3 = boto3.session.Session().client("s3", region_name=REGION, aws_access_key_id="test",
                                        aws_secret_access_key="test")
    s3.meta.events.register("before-send", moto._send)
    s3.create_bucket(Bucket="not-in-the-checkpoint")
    modules: set[str] = set()

    class Recording(snapshot._Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            modules.add(module)
            return super().find_class(module, name)

    state = Recording(io.BytesIO(zlib.decompress(snapshot.capture()))).load()
    assert {"moto.iam.models", "moto.logs.models", "moto.sns.models", "moto.ecr.models"} <= modules
    assert not [module for module in modules if module.startswith(("emulator", "tests", "moto.s3"))]
    assert not [address for address in state if address[0].startswith("moto.s3.")]
    assert moto.state is not None
    moto.state.close()
