"""The kinds table and the server's lifecycle log lines, which every view reads."""

from __future__ import annotations

import logging

import pytest

from emulator.observe.events import lifecycle_line, log_lifecycle
from emulator.observe.kinds import KINDS, find_kind, job_kinds, region_and_account


def test_every_kind_is_found_by_its_store_key_and_its_cli_name() -> None:
    for kind in KINDS:
        assert find_kind(kind.key) is kind
        assert find_kind(kind.cli_name) is kind
    assert find_kind("Training") is find_kind("training-job")
    assert find_kind("notebook-instance") is None
    assert [k.key for k in job_kinds()] == ["training-job", "processing-job", "transform-job",
                                            "hyper-parameter-tuning-job"]


@pytest.mark.parametrize(
    ("key", "record", "expected"),
    [
        ("training-job", {"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2}},
         "ml.m5.large x 2"),
        ("processing-job", {"ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.c5.xlarge",
                                                                      "InstanceCount": 1}}}, "ml.c5.xlarge x 1"),
        ("transform-job", {"TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3}},
         "ml.m5.xlarge x 3"),
        ("hyper-parameter-tuning-job", {}, ""),
        ("endpoint", {}, ""),
    ],
)
def test_instances_are_read_where_each_kind_keeps_them(key: str, record: dict, expected: str) -> None:
    kind = find_kind(key)
    assert kind is not None and kind.instances(record) == expected


def test_log_locations_follow_sagemaker() -> None:
    training, endpoint, tuning = find_kind("training"), find_kind("endpoint"), find_kind("tuning")
    assert training and endpoint and tuning
    assert (training.group_for("j"), training.prefix_for("j")) == ("/aws/sagemaker/TrainingJobs", "j/")
    assert (endpoint.group_for("e"), endpoint.prefix_for("e")) == ("/aws/sagemaker/Endpoints/e", "")
    assert find_kind("processing").group_for("p") == "/aws/sagemaker/ProcessingJobs"  # type: ignore[union-attr]
    assert find_kind("transform").group_for("t") == "/aws/sagemaker/TransformJobs"  # type: ignore[union-attr]
    assert tuning.group_for("t") is None and tuning.children == ("training-job", "TuningJobArn")


def test_terminal_statuses() -> None:
    training, endpoint = find_kind("training"), find_kind("endpoint")
    assert training and endpoint
    assert training.is_terminal({"TrainingJobStatus": "Failed"})
    assert not training.is_terminal({"TrainingJobStatus": "Stopping"})
    assert not endpoint.is_terminal({"EndpointStatus": "InService"})
    assert endpoint.is_terminal({"EndpointStatus": "Failed"})


def test_region_and_account_come_from_the_arn() -> None:
    assert region_and_account("arn:aws:sagemaker:eu-west-1:111122223333:training-job/j") == (
        "eu-west-1", "111122223333")
    with pytest.raises(ValueError):
        region_and_account("not-an-arn")


def test_lifecycle_lines_for_jobs() -> None:
    started = {"TrainingJobStatus": "InProgress", "ResourceConfig": {"InstanceType": "ml.m5.large",
                                                                      "InstanceCount": 1}}
    assert lifecycle_line("training-job", "j", None, started) == \
        "training job j: started (InProgress, ml.m5.large x 1)"
    assert lifecycle_line("training-job", "j", started, {**started, "SecondaryStatus": "Training"}) is None
    assert lifecycle_line("training-job", "j", started, {**started, "TrainingJobStatus": "Completed"}) == \
        "training job j: Completed"
    failed = {**started, "TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: boom"}
    assert lifecycle_line("training-job", "j", started, failed) == "training job j: Failed: AlgorithmError: boom"
    assert lifecycle_line("processing-job", "p", None, {"ProcessingJobStatus": "InProgress"}) == \
        "processing job p: started (InProgress)"


def test_lifecycle_lines_for_endpoints_and_kinds_nobody_follows() -> None:
    creating = {"EndpointStatus": "Creating"}
    assert lifecycle_line("endpoint", "e", None, creating) == "endpoint e: created (Creating)"
    assert lifecycle_line("endpoint", "e", creating, {"EndpointStatus": "InService"}) == "endpoint e: InService"
    assert lifecycle_line("endpoint", "e", {"EndpointStatus": "Deleting"}, None) == "endpoint e: deleted"
    assert lifecycle_line("hosting-deployment", "e", None, {"x": 1}) is None
    assert lifecycle_line("training", "j", None, {"TrainingJobStatus": "InProgress"}) is None  # CLI name, not a store kind


def test_log_lifecycle_writes_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="emulator.events"):
        log_lifecycle("endpoint", "e", {"EndpointStatus": "Creating"}, {"EndpointStatus": "InService"})
        log_lifecycle("endpoint", "e", {"EndpointStatus": "InService"}, {"EndpointStatus": "InService"})
    assert [r.getMessage() for r in caplog.records] == ["endpoint e: InService"]
