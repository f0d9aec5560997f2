"""TrainingService, runner and attempt end to end against the in-process fake backend."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.context import CallContext
from emulator.errors import ResourceInUse, ValidationException
from emulator.store import Store
from emulator.training.service import TrainingService
from tests.unit.test_training_fakes import FakePlatform, FakeTrainingBackend, wait_for

CTX = CallContext(region="us-east-1", account_id="123456789012")
TERMINAL = ("Completed", "Failed", "Stopped")


class Harness:
    def __init__(self, home: Path, store: Store | None = None) -> None:
        self.backend = FakeTrainingBackend()
        self.platform = FakePlatform(home, self.backend, store)
        self.service = TrainingService(self.platform, self.backend)
        self.service.stop_grace_seconds = 0.3

    def create(self, name: str, env: dict[str, str] | None = None, **members: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TrainingJobName": name, "RoleArn": "arn:aws:iam::123456789012:role/R",
            "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "Environment": env or {},
        }
        request.update(members)
        return self.service.create_training_job(request, CTX)

    def describe(self, name: str) -> dict[str, Any]:
        return self.service.describe_training_job({"TrainingJobName": name}, CTX)

    def final(self, name: str) -> dict[str, Any]:
        return wait_for(lambda: (d := self.describe(name))["TrainingJobStatus"] in TERMINAL and d)  # type: ignore

    def statuses(self, name: str) -> list[str]:
        return [t["Status"] for t in self.describe(name)["SecondaryStatusTransitions"]]

    def model_files(self, name: str) -> dict[str, bytes]:
        data = self.platform.s3.fake.objects[("bkt", f"out/{name}/output/model.tar.gz")]
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.service.stop()


def test_completed_job_uploads_model_and_metrics(harness: Harness) -> None:
    arn = harness.create("ok", {"FAKE_LINES": "loss=0.9|loss=0.5|acc=0.8"}, AlgorithmSpecification={
        "TrainingImage": "img:1", "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}, {"Name": "acc", "Regex": "acc=(.*)"}]})
    assert arn == {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/ok"}
    job = harness.final("ok")
    assert job["TrainingJobStatus"] == "Completed"
    assert harness.statuses("ok") == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [("loss", 0.5), ("acc", 0.8)]
    assert harness.model_files("ok") == {"model.txt": b"algo-1"}
    assert ("bkt", "out/ok/output/output.tar.gz") in harness.platform.s3.fake.objects
    assert job["OutputDataConfig"]["KmsKeyId"] == "" and job["StoppingCondition"]["MaxRuntimeInSeconds"] == 86400
    assert job["TrainingTimeInSeconds"] >= 1
    assert harness.backend.removed_labels[-1]["smemu.name"] == "ok"


@pytest.mark.parametrize(("env", "reason"), [
    ({"FAKE_EXIT": "2", "FAKE_FAILURE": "bad data"}, "AlgorithmError: bad data"),
    ({"FAKE_EXIT": "5"}, "AlgorithmError: See job logs for more information (algo-1 exited with code 5)"),
    ({"FAKE_OOM": "1"}, ("OutOfMemoryError: Please use an instance type with more memory, or reduce the size of "
                         "job data processed on an instance. (algo-1 was killed for exceeding the 8 GiB of "
                         "ml.m5.large.)")),
])
def test_failures_give_the_failure_reason(harness: Harness, env: dict[str, str], reason: str) -> None:
    harness.create("bad", env)
    job = harness.final("bad")
    assert (job["TrainingJobStatus"], job["FailureReason"]) == ("Failed", reason)
    assert ("bkt", "out/bad/output/model.tar.gz") not in harness.platform.s3.fake.objects


def test_unknown_image_fails_in_starting(harness: Harness) -> None:
    harness.create("noimg", AlgorithmSpecification={"TrainingImage": "missing:1", "TrainingInputMode": "File"})
    job = harness.final("noimg")
    assert job["FailureReason"].startswith("ClientError: The image 'missing:1'")
    assert harness.statuses("noimg") == ["Starting", "Failed"]


def test_failed_host_ends_its_peers(harness: Harness) -> None:
    harness.create("multi", {"FAKE_SECONDS": "30"},
                   ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 3, "VolumeSizeInGB": 1})
    wait_for(lambda: len(harness.backend.containers) == 3)
    algo2 = next(c for c in harness.backend.containers.values() if c.spec.hostname == "algo-2")
    algo2.files["/opt/ml/output"] = {"failure": b"worker 2 crashed"}
    FakeTrainingBackend._exit(algo2, 1)
    job = harness.final("multi")
    assert job["FailureReason"] == "AlgorithmError: worker 2 crashed"
    assert len(harness.backend.stops) == 2, "the two other hosts get SIGTERM"
    assert harness.backend.networks == {}


def test_stop_with_grace_and_max_runtime(harness: Harness) -> None:
    harness.create("stop", {"FAKE_SECONDS": "30", "FAKE_IGNORE_TERM": "1"})
    wait_for(lambda: harness.describe("stop")["SecondaryStatus"] == "Training")
    assert harness.service.stop_training_job({"TrainingJobName": "stop"}, CTX) == {}
    assert harness.describe("stop")["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = harness.final("stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert harness.backend.stops[-1][1] == 0.3
    with pytest.raises(ValidationException, match="is in status Stopped"):
        harness.service.stop_training_job({"TrainingJobName": "stop"}, CTX)

    harness.create("slow", {"FAKE_SECONDS": "30"}, StoppingCondition={"MaxRuntimeInSeconds": 1})
    job = harness.final("slow")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert harness.model_files("slow")["terminated"] == b"yes"


def test_a_stop_that_arrives_while_the_model_uploads_ends_the_job_stopped(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """StopTrainingJob during Uploading wins (Stopped, model kept), instead of an internal error."""
    from emulator.training import runner

    upload = runner.upload_model_and_output

    def upload_while_stopped(*args: Any) -> str:
        harness.service.stop_training_job({"TrainingJobName": "race"}, CTX)
        return upload(*args)

    monkeypatch.setattr(runner, "upload_model_and_output", upload_while_stopped)
    harness.create("race")
    job = harness.final("race")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped"), job.get("FailureReason")
    assert "FailureReason" not in job
    assert harness.model_files("race") == {"model.txt": b"algo-1"}


def test_spot_interruption_restarts_with_checkpoints(harness: Harness) -> None:
    harness.service.restart_delay_seconds = 0.05
    harness.create("spot", {"FAKE_SECONDS": "0.5", "FAKE_CHECKPOINT": "1"}, EnableManagedSpotTraining=True,
                   StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120},
                   CheckpointConfig={"S3Uri": "s3://bkt/ckpt"},
                   Tags=[{"Key": "smemu:spot-interruptions", "Value": "0.1"}])
    job = harness.final("spot")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert harness.statuses("spot") == ["Starting", "Downloading", "Training", "Interrupted", "Starting",
                                        "Downloading", "Training", "Uploading", "Completed"]
    assert harness.platform.s3.fake.objects[("bkt", "ckpt/step")] == b"2", "attempt 2 resumed from step 1"
    assert job["BillableTimeInSeconds"] <= job["TrainingTimeInSeconds"]


def test_shutdown_fails_running_jobs_and_restart_settles_leftovers(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.create("running", {"FAKE_SECONDS": "30"})
    wait_for(lambda: first.describe("running")["SecondaryStatus"] == "Training")
    first.service.stop()
    job = first.describe("running")
    assert job["TrainingJobStatus"] == "Failed" and "emulator stopped" in job["FailureReason"]

    def stuck(name: str, status: str, secondary: str) -> None:
        first.platform.store.update("training-job", name, lambda r: r.update(
            TrainingJobStatus=status, SecondaryStatus=secondary, TrainingJobName=name))

    first.platform.store.put("training-job", "a", dict(first.describe("running")), 1.0)
    first.platform.store.put("training-job", "b", dict(first.describe("running")), 2.0)
    stuck("a", "InProgress", "Training")
    stuck("b", "Stopping", "Stopping")
    second = Harness(tmp_path, store=first.platform.store)
    second.service.start()
    assert second.describe("a")["TrainingJobStatus"] == "Failed"
    assert second.describe("b")["TrainingJobStatus"] == "Stopped"
    assert second.backend.removed_labels == [{"smemu.kind": "training-job", "smemu.home": second.service.home_id}]


def test_describe_list_and_duplicates(harness: Harness) -> None:
    with pytest.raises(ValidationException, match="Requested resource not found"):
        harness.describe("nothing")
    harness.create("dup", AlgorithmSpecification={"TrainingImage": "missing", "TrainingInputMode": "File"})
    with pytest.raises(ResourceInUse, match="already exists"):
        harness.create("DUP", AlgorithmSpecification={"TrainingImage": "missing", "TrainingInputMode": "File"})
    harness.final("dup")
    listed = harness.service.list_training_jobs({"StatusEquals": "Failed"}, CTX)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in listed] == ["dup"]
    assert set(listed[0]) == {"TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
                              "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus"}
    with pytest.raises(ValidationException, match="pagination token"):
        harness.service.list_training_jobs({"NextToken": "garbage!"}, CTX)
    with pytest.raises(ValidationException, match="not a managed spot"):
        harness.service.interrupt_spot_instance("dup")


def test_no_container_engine_fails_jobs_with_the_reason(tmp_path: Path) -> None:
    from emulator.runtime.lazy import LazyBackend
    from emulator.runtime.spec import EngineUnavailable

    harness = Harness(tmp_path)

    def no_engine() -> Any:
        raise EngineUnavailable("cannot reach the Docker engine. Start Docker (scripts/install-docker, or `dockerd`)")

    harness.service.backend = harness.platform.backend = LazyBackend(no_engine)  # type: ignore[assignment]
    harness.service.start()  # nothing unfinished: the engine is not even asked
    harness.create("offline")
    job = harness.final("offline")
    assert job["FailureReason"].startswith("InternalServerError: cannot reach the Docker engine. Start Docker")


def test_platform_hooks_for_images_and_container_environment(harness: Harness) -> None:
    resolved: list[str] = []

    def resolve(image: str) -> str:
        resolved.append(image)
        return "resolved:1"

    harness.service.resolve_image = resolve  # type: ignore[method-assign]
    harness.service.container_environment = lambda request: {"ROLE_SEEN": request["RoleArn"]}
    harness.create("hooks", {"MINE": "x"})
    assert harness.final("hooks")["TrainingJobStatus"] == "Completed"
    (spec,) = harness.backend.started
    assert resolved == ["img:1"] and spec.image == "resolved:1"
    assert spec.environment["ROLE_SEEN"] == "arn:aws:iam::123456789012:role/R" and spec.environment["MINE"] == "x"


def test_pipe_mode_is_refused_at_creation_where_the_runtime_cannot_feed_fifos(tmp_path: Path) -> None:
    import dataclasses

    h = Harness(tmp_path)
    h.platform.settings = dataclasses.replace(h.platform.settings, runtime="kubernetes")
    try:
        channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                         "S3Uri": "s3://bkt/in/"}}}
        with pytest.raises(ValidationException, match=r"Channels train use Pipe input mode.*SMEMU_RUNTIME=kubernetes"):
            h.create("piped", AlgorithmSpecification={"TrainingImage": "img:1", "TrainingInputMode": "Pipe"},
                     InputDataConfig=[channel])
        with pytest.raises(ValidationException, match="Channels train use Pipe"):  # the channel's own mode
            h.create("piped", InputDataConfig=[{**channel, "InputMode": "Pipe"}])
        with pytest.raises(ValidationException, match="Requested resource not found"):
            h.describe("piped")  # nothing recorded
        h.create("filed", InputDataConfig=[channel])  # File mode runs on that runtime
        assert h.describe("filed")["TrainingJobName"] == "filed"
    finally:
        h.service.stop()
