"""Processing jobs end to end through boto3 with the reference container in sample_containers/processing.

Real containers, a real S3 server, CloudWatch Logs through the edge; every wait polls
DescribeProcessingJob against a deadline.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_training_helpers import leftovers

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]

TERMINAL = ("Completed", "Failed", "Stopped")
GROUP = "/aws/sagemaker/ProcessingJobs"


@pytest.fixture(scope="session")
def processing_image() -> str:
    """The reference processing image."""
    return build_sample_image("processing")


def wait_processing(sagemaker_client: Any, name: str, accept: Callable[[dict[str, Any]], bool],
                    timeout: float = 90.0) -> dict[str, Any]:
    """Poll DescribeProcessingJob until ``accept``; fail naming the last status."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = sagemaker_client.describe_processing_job(ProcessingJobName=name)
        if accept(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"processing job {name}: last {job.get('ProcessingJobStatus')} {job.get('FailureReason')}")


def s3_input(name: str, uri: str, local: str, **extra: Any) -> dict[str, Any]:
    return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                                           "S3InputMode": "File", **extra}}


def s3_output(name: str, uri: str, local: str, mode: str = "EndOfJob") -> dict[str, Any]:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": mode}}


def job_request(name: str, image: str, role_arn: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ProcessingJobName": name,
        "RoleArn": role_arn,
        "AppSpecification": {"ImageUri": image},
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                  "VolumeSizeInGB": 1}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }
    request.update(overrides)
    return request


def keys(s3_client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix):]: s3_client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in found}


def log_lines(logs_client: Any, name: str) -> dict[str, list[str]]:
    streams = logs_client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
    return {s["logStreamName"]: [e["message"] for e in logs_client.get_log_events(
        logGroupName=GROUP, logStreamName=s["logStreamName"], startFromHead=True)["events"]] for s in streams}


def test_two_inputs_two_outputs_two_instances_sharded(sagemaker_client: Any, s3_client: Any, logs_client: Any,
                                                      bucket: str, role_arn: str, processing_image: str,
                                                      docker_client: Any) -> None:
    shards = {f"part-{i}.csv": f"{i},x\n".encode() for i in range(4)}
    for key, body in shards.items():
        s3_client.put_object(Bucket=bucket, Key=f"raw/{key}", Body=body)
    s3_client.put_object(Bucket=bucket, Key="lookup/table.csv", Body=b"a,b\n")
    name = unique_name("proc-two")
    request = job_request(
        name, processing_image, role_arn,
        ProcessingResources={"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1}},
        AppSpecification={"ImageUri": processing_image, "ContainerArguments": ["--mode", "upper", "free-arg"]},
        Environment={"STAGE": "test"},
        ProcessingInputs=[
            s3_input("raw", f"s3://{bucket}/raw/", "/opt/ml/processing/input/raw",
                     S3DataDistributionType="ShardedByS3Key"),
            s3_input("lookup", f"s3://{bucket}/lookup", "/opt/ml/processing/input/lookup"),
        ],
        ProcessingOutputConfig={"Outputs": [s3_output("first", f"s3://{bucket}/out/first", "/opt/ml/processing/first"),
                                            s3_output("second", f"s3://{bucket}/out/second",
                                                      "/opt/ml/processing/second")]},
        Tags=[{"Key": "team", "Value": "ml"}],
    )
    arn = sagemaker_client.create_processing_job(**request)["ProcessingJobArn"]
    assert arn.endswith(f":processing-job/{name}")
    assert sagemaker_client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress"
    job = wait_processing(sagemaker_client, name, lambda j: j["ProcessingJobStatus"] in TERMINAL)

    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    assert job["ProcessingStartTime"] <= job["ProcessingEndTime"]
    assert job["ExitMessage"].startswith("processed ")
    assert job["ProcessingInputs"][1]["S3Input"]["S3DataDistributionType"] == "FullyReplicated"
    for output in ("first", "second"):
        files = keys(s3_client, bucket, f"out/{output}/")
        assert {k: v for k, v in files.items() if k.startswith("raw/")} == {
            f"raw/{k}": v.upper() for k, v in shards.items()}  # each host uploaded its own shard
        assert files["lookup/table.csv"] == b"A,B\n"
        manifest = json.loads(files["manifest.json"])
        assert manifest["resource_config"]["hosts"] == ["algo-1", "algo-2"]
        assert manifest["argv"][1:] == ["--mode", "upper", "free-arg"]
        assert manifest["env"]["STAGE"] == "test"
        assert manifest["job_name"] == name
    streams = log_lines(logs_client, name)
    assert sorted(s.split("/")[1].rsplit("-", 1)[0] for s in streams) == ["algo-1", "algo-2"]
    for lines in streams.values():
        assert "input raw: 2 files" in lines and "input lookup: 1 files" in lines
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    summaries = sagemaker_client.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [(s["ProcessingJobName"], s["ProcessingJobStatus"]) for s in summaries] == [(name, "Completed")]
    assert leftovers(docker_client, name) == []


def test_continuous_output_is_in_s3_before_the_job_ends(sagemaker_client: Any, s3_client: Any, bucket: str,
                                                        role_arn: str, processing_image: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="in/a.txt", Body=b"hello\n")
    name = unique_name("proc-cont")
    sagemaker_client.create_processing_job(**job_request(
        name, processing_image, role_arn,
        AppSpecification={"ImageUri": processing_image, "ContainerArguments": ["--linger-seconds", "30"]},
        ProcessingInputs=[s3_input("data", f"s3://{bucket}/in", "/opt/ml/processing/input/data")],
        ProcessingOutputConfig={"Outputs": [s3_output("live", f"s3://{bucket}/live", "/opt/ml/processing/live",
                                                      "Continuous")]},
    ))
    deadline = time.monotonic() + 60
    seen: dict[str, bytes] = {}
    while time.monotonic() < deadline and "data/a.txt" not in seen:
        seen = keys(s3_client, bucket, "live/")
        time.sleep(0.2)
    status = sagemaker_client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]
    assert seen.get("data/a.txt") == b"hello\n" and status == "InProgress"
    sagemaker_client.stop_processing_job(ProcessingJobName=name)
    job = wait_processing(sagemaker_client, name, lambda j: j["ProcessingJobStatus"] in TERMINAL)
    assert job["ProcessingJobStatus"] == "Stopped"
    assert job["ExitMessage"] == "stopped by SIGTERM"


def test_failing_job_reports_the_reason_and_pipe_input(sagemaker_client: Any, s3_client: Any, logs_client: Any,
                                                       bucket: str, role_arn: str, processing_image: str) -> None:
    payload = b"".join(f"row {i}\n".encode() for i in range(1000))
    s3_client.put_object(Bucket=bucket, Key="gz/rows.txt.gz", Body=gzip.compress(payload))
    name = unique_name("proc-fail")
    sagemaker_client.create_processing_job(**job_request(
        name, processing_image, role_arn,
        AppSpecification={"ImageUri": processing_image, "ContainerArguments": ["--fail", "--message", "no rows"]},
        ProcessingInputs=[s3_input("rows", f"s3://{bucket}/gz/", "/opt/ml/processing/input/rows",
                                   S3InputMode="Pipe", S3CompressionType="Gzip")],
        ProcessingOutputConfig={"Outputs": [s3_output("out", f"s3://{bucket}/never", "/opt/ml/processing/out")]},
    ))
    job = wait_processing(sagemaker_client, name, lambda j: j["ProcessingJobStatus"] in TERMINAL)
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: no rows"
    assert job["ExitMessage"] == "no rows"
    assert keys(s3_client, bucket, "never/") == {}  # a failed job's EndOfJob outputs are not uploaded
    lines = [line for lines in log_lines(logs_client, name).values() for line in lines]
    # the FIFO <LocalPath>_0 carried the gunzipped bytes
    assert f"input rows: {len(payload)} bytes from /opt/ml/processing/input/rows_0" in lines


def test_unknown_image_and_bad_requests(sagemaker_client: Any, role_arn: str, bucket: str) -> None:
    name = unique_name("proc-noimage")
    sagemaker_client.create_processing_job(**job_request(name, "smemu-no-such-image:1", role_arn))
    job = wait_processing(sagemaker_client, name, lambda j: j["ProcessingJobStatus"] in TERMINAL, timeout=30)
    assert job["ProcessingJobStatus"] == "Failed" and "smemu-no-such-image:1" in job["FailureReason"]
    with pytest.raises(sagemaker_client.exceptions.ClientError) as bad_path:
        sagemaker_client.create_processing_job(**job_request(
            unique_name("proc-bad"), "img", role_arn,
            ProcessingInputs=[s3_input("x", f"s3://{bucket}/x", "/data/x")]))
    assert "must be a folder below /opt/ml/processing/" in str(bad_path.value)
    with pytest.raises(sagemaker_client.exceptions.ClientError) as missing:
        sagemaker_client.describe_processing_job(ProcessingJobName=unique_name("ghost"))
    assert missing.value.response["Error"] == {"Code": "ValidationException",
                                               "Message": "Requested resource not found."}
