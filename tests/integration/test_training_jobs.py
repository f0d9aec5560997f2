"""Training jobs end to end through boto3: File mode, artifacts, metrics, logs, list, stop.

Each test drives the emulator only through its AWS API (plus Docker or the cluster, to check that
nothing is left behind) with the reference trainer from sample_containers/training. The tests
that take ``runtime`` run on both backends (tests/integration/runtimes.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import unique_name
from tests.integration.runtimes import Runtime
from tests.integration.test_training_helpers import (
    job_request,
    log_messages,
    model_report,
    s3_channel,
    tar_members,
    wait_log_line,
    wait_secondary,
    wait_terminal,
)

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers", "tests.integration.runtimes"]

TRAIN_FILES = {"part-0.csv": b"1,2\n3,4\n", "part-1.csv": b"5,6\n", "nested/part-2.csv": b"7,8\n9,10\n11,12\n"}


def test_single_host_job_with_two_channels(runtime: Runtime, training_image: str) -> None:
    sagemaker_client, s3_client, logs_client = runtime.sagemaker, runtime.s3, runtime.logs
    bucket, role_arn = runtime.bucket(), runtime.role_arn
    for key, body in TRAIN_FILES.items():
        s3_client.put_object(Bucket=bucket, Key=f"data/train/{key}", Body=body)
    s3_client.put_object(Bucket=bucket, Key="data/validation/v.csv", Body=b"v\n")
    name = unique_name("train-single")
    request = job_request(
        name, training_image, role_arn, bucket,
        HyperParameters={"epochs": "3", "train_loss": "0.25", "validation_accuracy": "0.75", "model_name": "m1"},
        AlgorithmSpecification={
            "TrainingImage": training_image, "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train:loss", "Regex": r"train_loss=([0-9.]+);"},
                                  {"Name": "validation:accuracy", "Regex": r"validation:accuracy=(\S+)"},
                                  {"Name": "never", "Regex": "no such line ([0-9]+)"}],
        },
        InputDataConfig=[s3_channel("train", f"s3://{bucket}/data/train", ContentType="text/csv"),
                         s3_channel("validation", f"s3://{bucket}/data/validation/")],
        Environment={"MY_SETTING": "on"},
        Tags=[{"Key": "team", "Value": "ml"}],
    )
    arn = sagemaker_client.create_training_job(**request)["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    assert sagemaker_client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"

    sagemaker_client.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    job = sagemaker_client.describe_training_job(TrainingJobName=name)

    assert job["TrainingJobStatus"] == "Completed" and job["SecondaryStatus"] == "Completed"
    transitions = job["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert transitions[2]["StatusMessage"] == "Training image download completed. Training in progress."
    assert all("EndTime" in t for t in transitions)
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]
    assert job["TrainingStartTime"] <= job["TrainingEndTime"]
    model_uri = f"s3://{bucket}/output/{name}/output/model.tar.gz"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == model_uri
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics == {"train:loss": 0.25, "validation:accuracy": 0.75}

    report = model_report(s3_client, bucket, name)
    assert report["hyperparameters"] == request["HyperParameters"]
    train = report["channels"]["train"]
    assert sorted(f["path"] for f in train["files"]) == sorted(TRAIN_FILES)
    assert {f["path"]: f["sha256"] for f in train["files"]} == {
        k: hashlib.sha256(v).hexdigest() for k, v in TRAIN_FILES.items()}
    assert report["channels"]["validation"]["file_count"] == 1
    assert report["input_data_config"] == {
        "train": {"ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                  "RecordWrapperType": "None"},
        "validation": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                       "RecordWrapperType": "None"}}
    assert report["resource_config"]["current_host"] == "algo-1" and report["hostname"] == "algo-1"
    assert report["env"]["MY_SETTING"] == "on" and report["env"]["TRAINING_JOB_NAME"] == name
    assert report["env"]["TRAINING_JOB_ARN"] == arn
    assert not any(k.startswith("AWS_SECRET") or k == "AWS_ACCESS_KEY_ID" for k in report["env"])
    output = tar_members(s3_client, bucket, f"output/{name}/output/output.tar.gz")
    size = sum(len(v) for v in TRAIN_FILES.values())
    assert f"channel train: mode=File bytes={size} lines=6".encode() in output["summary.txt"]

    streams = log_messages(logs_client, name)
    assert len(streams) == 1
    (stream, messages), = streams.items()
    assert stream.startswith(f"{name}/algo-1-") and stream.rsplit("-", 1)[1].isdigit()
    assert "training complete" in messages and "sample trainer: this line goes to stderr" in messages
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert runtime.leftovers(name) == []


def test_stop_training_job_uploads_the_partial_model(runtime: Runtime, training_image: str) -> None:
    sagemaker_client, s3_client, logs_client = runtime.sagemaker, runtime.s3, runtime.logs
    bucket, role_arn = runtime.bucket(), runtime.role_arn
    name = unique_name("train-stop")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, HyperParameters={"sleep_seconds": "120"}))
    wait_secondary(sagemaker_client, name, "Training")
    wait_log_line(logs_client, name, "heartbeat 1")  # its SIGTERM handler is installed by now

    sagemaker_client.stop_training_job(TrainingJobName=name)
    assert sagemaker_client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_terminal(sagemaker_client, name)

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    assert model_report(s3_client, bucket, name)["terminated"] is True  # SIGTERM, then the model upload
    with pytest.raises(ClientError) as raised:
        sagemaker_client.stop_training_job(TrainingJobName=name)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "is in status Stopped" in raised.value.response["Error"]["Message"]
    assert runtime.leftovers(name) == []


def test_max_runtime_stops_the_job(sagemaker_client: Any, s3_client: Any, bucket: str, role_arn: str,
                                   training_image: str) -> None:
    name = unique_name("train-maxrt")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, HyperParameters={"sleep_seconds": "120"},
        StoppingCondition={"MaxRuntimeInSeconds": 2}))
    job = wait_terminal(sagemaker_client, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Uploading", "MaxRuntimeExceeded"]
    assert model_report(s3_client, bucket, name)["terminated"] is True


def test_container_entrypoint_arguments_and_network_isolation(sagemaker_client: Any, s3_client: Any, bucket: str,
                                                              role_arn: str, training_image: str) -> None:
    name = unique_name("train-entry")
    script = "import sys; open('/opt/ml/model/args.txt', 'w').write(' '.join(sys.argv[1:])); " \
             "open('/opt/ml/model/netdev.txt', 'w').write(open('/proc/net/dev').read())"
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, EnableNetworkIsolation=True,
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["python3", "-c", script],
                                "ContainerArguments": ["--alpha", "1"]}))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = tar_members(s3_client, bucket, f"output/{name}/output/model.tar.gz")
    assert model["args.txt"] == b"--alpha 1"
    interfaces = {line.split(":")[0].strip() for line in model["netdev.txt"].decode().splitlines()[2:]}
    assert interfaces == {"lo"}, "EnableNetworkIsolation must leave the container without any network"
    assert job["EnableNetworkIsolation"] is True


def test_unknown_job_and_duplicate_name(sagemaker_client: Any, bucket: str, role_arn: str) -> None:
    for call in (sagemaker_client.describe_training_job, sagemaker_client.stop_training_job):
        with pytest.raises(ClientError) as raised:
            call(TrainingJobName=unique_name("nope"))
        error = raised.value.response["Error"]
        assert (error["Code"], error["Message"]) == ("ValidationException", "Requested resource not found.")
    name = unique_name("train-dup")
    request = job_request(name, "smemu-missing/image:1", role_arn, bucket)
    sagemaker_client.create_training_job(**request)
    with pytest.raises(ClientError) as raised:
        sagemaker_client.create_training_job(**request)
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    assert "already exists" in raised.value.response["Error"]["Message"]


def test_request_rules_beyond_the_model(sagemaker_client: Any, bucket: str, role_arn: str) -> None:
    cases = {
        "MaxWaitTimeInSeconds is required": {"EnableManagedSpotTraining": True},
        "must be greater than or equal to MaxRuntimeInSeconds": {
            "EnableManagedSpotTraining": True,
            "StoppingCondition": {"MaxRuntimeInSeconds": 100, "MaxWaitTimeInSeconds": 50}},
        "Gzip is only supported in Pipe": {
            "InputDataConfig": [s3_channel("train", f"s3://{bucket}/x", CompressionType="Gzip")]},
        "channel names must be unique": {
            "InputDataConfig": [s3_channel("a", f"s3://{bucket}/x"), s3_channel("a", f"s3://{bucket}/y")]},
        "needs EnableManagedSpotTraining": {"Tags": [{"Key": "smemu:spot-interruptions", "Value": "1"}]},
    }
    for expected, overrides in cases.items():
        with pytest.raises(ClientError) as raised:
            sagemaker_client.create_training_job(**job_request(unique_name("bad"), "img", role_arn, bucket,
                                                               **overrides))
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        assert expected in raised.value.response["Error"]["Message"]


def test_list_training_jobs_filters_sorts_and_pages(sagemaker_client: Any, bucket: str, role_arn: str) -> None:
    prefix = unique_name("lst")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:  # an unknown image fails fast without any container
        sagemaker_client.create_training_job(**job_request(name, "smemu-missing/image:1", role_arn, bucket))
    for name in names:
        wait_terminal(sagemaker_client, name)

    first = sagemaker_client.list_training_jobs(NameContains=prefix.upper(), MaxResults=2)
    assert [s["TrainingJobName"] for s in first["TrainingJobSummaries"]] == [names[2], names[1]]
    second = sagemaker_client.list_training_jobs(NameContains=prefix, MaxResults=2, NextToken=first["NextToken"])
    assert [s["TrainingJobName"] for s in second["TrainingJobSummaries"]] == [names[0]]
    assert "NextToken" not in second
    ascending = sagemaker_client.list_training_jobs(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
    assert [s["TrainingJobName"] for s in ascending["TrainingJobSummaries"]] == names
    assert all(s["TrainingJobStatus"] == "Failed" for s in ascending["TrainingJobSummaries"])
    assert sagemaker_client.list_training_jobs(NameContains=prefix, StatusEquals="Completed")[
        "TrainingJobSummaries"] == []


def test_file_uri_channel_mounts_a_local_folder(sagemaker_client: Any, s3_client: Any, bucket: str,
                                               role_arn: str, training_image: str, tmp_path: Any) -> None:
    """file:// channels (an emulator extension, accepted by the gateway) are mounted, not copied."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("local\n")
    (tmp_path / "sub" / "b.txt").write_text("data\nhere\n")
    name = unique_name("train-local")
    request = job_request(name, training_image, role_arn, bucket,
                          InputDataConfig=[s3_channel("train", f"file://{tmp_path}")])
    sagemaker_client.create_training_job(**request)
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_report(s3_client, bucket, name)["channels"]["train"]["files"]
    assert {f["path"]: f["lines"] for f in files} == {"a.txt": 1, "sub/b.txt": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "sub"], "the user's folder is untouched"
    assert json.loads(json.dumps(job["InputDataConfig"]))[0]["DataSource"]["S3DataSource"]["S3Uri"].startswith("file://")
