"""The read-only views behind `smemu status`, `smemu logs` and the dashboard, over a real store
and the real in-process CloudWatch backends (moto), with kinds that exist and kinds whose
records only another part of the emulator writes (processing, transform, tuning)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from emulator import cloudwatch
from emulator.config import Settings
from emulator.observe.views import Observer, UnknownKind, decode_cursor, encode_cursor
from emulator.store import Store

REGION = "us-east-1"
T0 = float(int(time.time()) - 600)
"""A recent second: CloudWatch drops log events older than 14 days."""


@pytest.fixture()
def account() -> str:
    """An account of its own per test: moto's backends are process-wide."""
    return str(uuid.uuid4().int)[:12]


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "db.sqlite")


def arn(account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{account}:{kind}/{name}"


def training(account: str, name: str, status: str = "InProgress", **extra: Any) -> dict[str, Any]:
    return {"TrainingJobName": name, "TrainingJobArn": arn(account, "training-job", name),
            "TrainingJobStatus": status, "SecondaryStatus": "Training", "CreationTime": 100.0,
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "SecondaryStatusTransitions": [{"Status": "Starting", "StartTime": 100.0, "EndTime": 101.0},
                                           {"Status": "Training", "StartTime": 101.0}], **extra}


def observer(store: Store, tmp_path: Path, **views: Any) -> Observer:
    return Observer(store, Settings(home=tmp_path, port=4599), {k.replace("_", "-"): v for k, v in views.items()})


def test_status_lists_every_kind_newest_first_with_endpoint_fleets(store: Store, tmp_path: Path, account: str) -> None:
    store.put("training-job", "old", training(account, "old", "Failed", FailureReason="AlgorithmError: x"), 1.0)
    store.put("processing-job", "proc", {"ProcessingJobName": "proc", "ProcessingJobStatus": "InProgress",
                                         "ProcessingJobArn": arn(account, "processing-job", "proc"),
                                         "CreationTime": 300.0}, 3.0)
    store.put("transform-job", "tr", {"TransformJobName": "tr", "TransformJobStatus": "Completed",
                                      "TransformJobArn": arn(account, "transform-job", "tr"), "CreationTime": 200.0,
                                      "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}, 2.0)
    store.put("endpoint", "ep", {"EndpointName": "ep", "EndpointStatus": "InService", "CreationTime": 50.0,
                                 "EndpointArn": arn(account, "endpoint", "ep")}, 0.5)
    store.put("model", "m", {"ModelName": "m"}, 0.1)  # not a kind the views show
    fleet = {"EndpointName": "ep", "Active": {"Variants": []}}
    status = observer(store, tmp_path, endpoint_fleet=lambda name: fleet if name == "ep" else None).status()
    assert status["Emulator"]["Home"] == str(tmp_path)
    assert status["Emulator"]["Dashboard"].endswith(":4599/_smemu/")
    assert [(j["Kind"], j["Name"], j["Status"]) for j in status["Jobs"]] == [
        ("processing-job", "proc", "InProgress"), ("transform-job", "tr", "Completed"),
        ("training-job", "old", "Failed")]
    assert status["Jobs"][1]["Instances"] == "ml.m5.xlarge x 1" and status["Jobs"][1]["Terminal"]
    assert status["Jobs"][2]["FailureReason"] == "AlgorithmError: x"
    assert [(e["Name"], e["Fleet"]) for e in status["Endpoints"]] == [("ep", fleet)]


def test_logs_merge_streams_in_time_and_resume_from_the_cursor(store: Store, tmp_path: Path, account: str) -> None:
    store.put("training-job", "j", training(account, "j"), 1.0)
    store.put("training-job", "j2", training(account, "j2"), 1.0)
    group = "/aws/sagemaker/TrainingJobs"
    cloudwatch.put_log_lines(account, REGION, group, "j/algo-1-100", [(T0 + 10.0, "a1"), (T0 + 12.0, "a2")])
    cloudwatch.put_log_lines(account, REGION, group, "j/algo-2-100", [(T0 + 11.0, "b1")])
    cloudwatch.put_log_lines(account, REGION, group, "j2/algo-1-100", [(T0 + 10.5, "not mine")])
    views = observer(store, tmp_path)
    page = views.logs("training", "j")
    assert page is not None
    assert [(e["Stream"], e["Message"]) for e in page["Events"]] == [
        ("j/algo-1-100", "a1"), ("j/algo-2-100", "b1"), ("j/algo-1-100", "a2")]
    assert not page["Terminal"] and page["Status"] == "InProgress" and page["SecondaryStatus"] == "Training"
    again = views.logs("training-job", "j", page["Cursor"])
    assert again is not None and again["Events"] == []
    cloudwatch.put_log_lines(account, REGION, group, "j/algo-2-100", [(T0 + 13.0, "b2")])
    store.update("training-job", "j", lambda r: r.update(TrainingJobStatus="Completed"))
    last = views.logs("training", "j", again["Cursor"])
    assert last is not None and [e["Message"] for e in last["Events"]] == ["b2"] and last["Terminal"]
    small = views.logs("training", "j", None, limit=1)
    assert small is not None and len(small["Events"]) == 2  # at most one per stream


def test_logs_of_an_endpoint_and_of_missing_or_unknown_things(store: Store, tmp_path: Path, account: str) -> None:
    store.put("endpoint", "ep", {"EndpointName": "ep", "EndpointStatus": "InService",
                                 "EndpointArn": arn(account, "endpoint", "ep")}, 1.0)
    cloudwatch.put_log_lines(account, REGION, "/aws/sagemaker/Endpoints/ep", "AllTraffic/i-1", [(T0 + 5.0, "ready")])
    views = observer(store, tmp_path)
    page = views.logs("endpoint", "ep")
    assert page is not None and [e["Message"] for e in page["Events"]] == ["ready"]
    assert views.logs("training", "nope") is None
    with pytest.raises(UnknownKind):
        views.logs("notebook", "ep")
    with pytest.raises(ValueError):
        views.logs("endpoint", "ep", "not-a-cursor!")


def test_a_tuning_job_shows_its_training_jobs_logs_and_metrics(store: Store, tmp_path: Path, account: str) -> None:
    tuning_arn = arn(account, "hyper-parameter-tuning-job", "tune")
    store.put("hyper-parameter-tuning-job", "tune", {
        "HyperParameterTuningJobName": "tune", "HyperParameterTuningJobArn": tuning_arn,
        "HyperParameterTuningJobStatus": "InProgress", "CreationTime": 1.0}, 1.0)
    for name in ("tune-001-aaaa", "tune-002-bbbb"):
        store.put("training-job", name, training(account, name, TuningJobArn=tuning_arn), 2.0)
    store.put("training-job", "tune-other", training(account, "tune-other"), 2.0)
    group = "/aws/sagemaker/TrainingJobs"
    for index, name in enumerate(("tune-001-aaaa", "tune-002-bbbb", "tune-other")):
        cloudwatch.put_log_lines(account, REGION, group, f"{name}/algo-1-1", [(T0 + 20.0 + index, f"line of {name}")])
        cloudwatch.put_metric_values(account, REGION, "/aws/sagemaker/TrainingJobs",
                                     [("loss", 1.0 / (index + 1), 30.0 + index, {"TrainingJobName": name})])
    views = observer(store, tmp_path)
    page = views.logs("tuning", "tune")
    assert page is not None
    assert [e["Message"] for e in page["Events"]] == ["line of tune-001-aaaa", "line of tune-002-bbbb"]
    resource = views.resource("tuning", "tune")
    assert resource is not None and [c["Name"] for c in resource["Children"]] == ["tune-001-aaaa", "tune-002-bbbb"]
    metrics = views.metrics("tuning", "tune")
    assert metrics is not None
    assert sorted((s["Label"], s["Points"][0][1]) for s in metrics["Series"]) == [
        ("tune-001-aaaa", 1.0), ("tune-002-bbbb", 0.5)]


def test_training_metrics_and_endpoint_invocation_statistics(store: Store, tmp_path: Path, account: str) -> None:
    store.put("training-job", "j", training(account, "j"), 1.0)
    cloudwatch.put_metric_values(account, REGION, "/aws/sagemaker/TrainingJobs", [
        ("train_loss", 0.9, 100.0, {"TrainingJobName": "j"}), ("train_loss", 0.4, 101.0, {"TrainingJobName": "j"}),
        ("train_loss", 7.0, 101.0, {"TrainingJobName": "someone-else"})])
    views = observer(store, tmp_path)
    metrics = views.metrics("training", "j")
    assert metrics is not None
    assert metrics["Series"] == [{"MetricName": "train_loss", "Label": "", "Unit": "None",
                                  "Points": [[100.0, 0.9], [101.0, 0.4]],
                                  "SampleCount": 2.0}]
    store.put("endpoint", "ep", {"EndpointName": "ep", "EndpointStatus": "InService",
                                 "EndpointArn": arn(account, "endpoint", "ep")}, 1.0)
    from moto.cloudwatch.models import cloudwatch_backends

    dims = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    cloudwatch_backends[account][REGION].put_metric_data("AWS/SageMaker", [
        {"MetricName": "Invocations", "Dimensions": dims,
         "StatisticValues": {"SampleCount": 3, "Sum": 3, "Minimum": 1, "Maximum": 1}},
        {"MetricName": "ModelLatency", "Dimensions": dims,
         "StatisticValues": {"SampleCount": 2, "Sum": 3000, "Minimum": 1000, "Maximum": 2000}},
        {"MetricName": "Invocation4XXErrors", "Dimensions": dims,
         "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    resource = views.resource("endpoint", "ep")
    assert resource is not None
    assert resource["Invocations"] == {"AllTraffic": {"Invocations": 3, "Invocation4XXErrors": 1,
                                                      "Invocation5XXErrors": 0, "ModelLatencyMeanMs": 1.5}}
    assert resource["Fleet"] is None and resource["Models"] is None  # no hosting views on this platform


def test_resource_view_carries_the_record_and_timeline(store: Store, tmp_path: Path, account: str) -> None:
    store.put("training-job", "j", training(account, "j"), 1.0)
    cloudwatch.put_log_lines(account, REGION, "/aws/sagemaker/TrainingJobs", "j/algo-1-1", [(T0 + 1.0, "x")])
    resource = observer(store, tmp_path).resource("training", "j")
    assert resource is not None
    assert resource["Label"] == "training job" and resource["Describe"]["TrainingJobName"] == "j"
    assert [t["Status"] for t in resource["Timeline"]] == ["Starting", "Training"]
    assert resource["LogStreams"] == [{"Group": "/aws/sagemaker/TrainingJobs", "Stream": "j/algo-1-1"}]
    assert resource["Arn"] == arn(account, "training-job", "j")


def test_cursors_round_trip_and_refuse_what_is_not_ours() -> None:
    assert decode_cursor(encode_cursor({"a/b": 3, "c": 0})) == {"a/b": 3, "c": 0}
    assert decode_cursor("") == {} and encode_cursor({}) == ""
    for bad in ("%%%", "eyJhIjogLTF9", "WzFd"):  # garbage, a negative position, a list
        with pytest.raises(ValueError):
            decode_cursor(bad)


def test_lines_out_of_time_order_are_all_written_in_order(account: str) -> None:
    group = "/aws/sagemaker/TrainingJobs"
    written = cloudwatch.put_log_lines(account, REGION, group, "j/algo-1-1",
                                       [(T0 + 2.0, "stdout late"), (T0 + 1.0, "stderr early"), (T0 + 3.0, "last")])
    assert written == 3
    assert [m for _ts, m in cloudwatch.read_events(account, REGION, group, "j/algo-1-1")] == [
        "stderr early", "stdout late", "last"]
