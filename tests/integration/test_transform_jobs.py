"""Batch transform end to end through boto3 with the reference model server (sample_containers/serving).

The model runs with SMEMU_SAMPLE_BATCH=sum: one output line per input line (the sum of its
fields), a 400 for a line containing "reject", and a log line per request with its size.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.conftest import unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_training_helpers import leftovers

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]

GROUP = "/aws/sagemaker/TransformJobs"


@pytest.fixture(scope="session")
def batch_model(sagemaker_client: Any, role_arn: str) -> str:
    """A model of the sample server in its batch mode."""
    name = unique_name("batch-model")
    sagemaker_client.create_model(ModelName=name, ExecutionRoleArn=role_arn, PrimaryContainer={
        "Image": build_sample_image("serving"), "Environment": {"SMEMU_SAMPLE_BATCH": "sum"}})
    return name


def wait_transform(sagemaker_client: Any, name: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = sagemaker_client.describe_transform_job(TransformJobName=name)
        if job["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"transform job {name}: last {job.get('TransformJobStatus')}")


def log_lines(logs_client: Any, name: str) -> dict[str, list[str]]:
    streams = logs_client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
    found = {}
    for stream in streams:
        events, token = [], None
        while True:
            page = logs_client.get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"],
                                              startFromHead=True, **({"nextToken": token} if token else {}))
            events += page["events"]
            if not page["events"] or page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
        found[stream["logStreamName"]] = [e["message"] for e in events]
    return found


def request(name: str, model: str, source: str, output: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TransformJobName": name, "ModelName": model,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": output, "AssembleWith": "Line", "Accept": "text/csv"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    body.update(overrides)
    return body


def test_line_split_multirecord_with_join_and_filters(sagemaker_client: Any, s3_client: Any, logs_client: Any,
                                                     bucket: str, batch_model: str, docker_client: Any) -> None:
    rows = [(f"id{i:06d}", i * 0.5, 1000000 + i) for i in range(90000)]
    text = "".join(f"{r[0]},{r[1]:g},{r[2]}\n" for r in rows).encode()
    assert len(text) > 2 * 1024 * 1024  # more than two 1 MB mini-batches
    s3_client.put_object(Bucket=bucket, Key="tin/sub/rows.csv", Body=text)
    s3_client.put_object(Bucket=bucket, Key="tin/small.csv", Body=b"x1,1,2\nx2,3,4\n")
    name = unique_name("tf-join")
    arn = sagemaker_client.create_transform_job(**request(
        name, batch_model, f"s3://{bucket}/tin/", f"s3://{bucket}/tout",
        BatchStrategy="MultiRecord", MaxPayloadInMB=1, MaxConcurrentTransforms=2,
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    ))["TransformJobArn"]
    assert arn.endswith(f":transform-job/{name}")
    job = wait_transform(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TransformStartTime"] <= job["TransformEndTime"]
    assert job["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}

    out = s3_client.get_object(Bucket=bucket, Key="tout/sub/rows.csv.out")["Body"].read().decode().splitlines()
    assert out == [f"{r[0]},{r[1] + r[2]:g}" for r in rows]  # one line per input line, in order
    small = s3_client.get_object(Bucket=bucket, Key="tout/small.csv.out")["Body"].read()
    assert small == b"x1,3\nx2,7\n"

    lines = [line for lines in log_lines(logs_client, name).values() for line in lines]
    sizes = [int(m.group(1)) for line in lines if (m := re.search(r"batch records=\d+ bytes=(\d+)", line))]
    assert len(sizes) >= 3 and max(sizes) <= 1024 * 1024  # several batches, none over MaxPayloadInMB
    assert all("SAGEMAKER_BATCH=true" in line for line in lines if "batch records=" in line)
    assert sagemaker_client.list_transform_jobs(NameContains=name)["TransformJobSummaries"][0][
        "TransformJobStatus"] == "Completed"
    assert leftovers(docker_client, name) == []


def test_two_instances_split_the_objects(sagemaker_client: Any, s3_client: Any, logs_client: Any, bucket: str,
                                         batch_model: str) -> None:
    for i in range(4):
        body = "".join(json.dumps({"a": i, "b": j}) + "\n" for j in range(3)).encode()
        s3_client.put_object(Bucket=bucket, Key=f"jin/part-{i}.jsonl", Body=body)
    name = unique_name("tf-two")
    sagemaker_client.create_transform_job(**request(
        name, batch_model, f"s3://{bucket}/jin", f"s3://{bucket}/jout",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/jin"}},
                        "ContentType": "application/jsonlines", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/jout", "AssembleWith": "Line",
                         "Accept": "application/jsonlines"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 2},
        BatchStrategy="SingleRecord",
    ))
    job = wait_transform(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    for i in range(4):
        out = s3_client.get_object(Bucket=bucket, Key=f"jout/part-{i}.jsonl.out")["Body"].read().decode()
        assert [json.loads(line)["sum"] for line in out.splitlines()] == [float(i + j) for j in range(3)]
    streams = log_lines(logs_client, name)
    assert len(streams) == 2
    for lines in streams.values():  # each instance got two objects of three single-record requests
        assert sum("batch records=1 " in line for line in lines) == 6


def test_a_rejected_record_fails_the_job_naming_the_input(sagemaker_client: Any, s3_client: Any, bucket: str,
                                                          batch_model: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="rin/good.csv", Body=b"1,2\n3,4\n")
    s3_client.put_object(Bucket=bucket, Key="rin/bad.csv", Body=b"1,2\nreject,me\n5,6\n")
    name = unique_name("tf-reject")
    sagemaker_client.create_transform_job(**request(name, batch_model, f"s3://{bucket}/rin/", f"s3://{bucket}/rout/",
                                                    BatchStrategy="SingleRecord"))
    job = wait_transform(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Failed"
    assert f"s3://{bucket}/rin/bad.csv (record 2): HTTP 400" in job["FailureReason"]
    assert s3_client.get_object(Bucket=bucket, Key="rout/good.csv.out")["Body"].read() == b"3\n7\n"
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket, Prefix="rout/bad.csv")
    with pytest.raises(sagemaker_client.exceptions.ClientError) as missing_model:
        sagemaker_client.create_transform_job(**request(unique_name("tf-nomodel"), "no-such-model",
                                                        f"s3://{bucket}/rin/", f"s3://{bucket}/x"))
    assert "Could not find model" in str(missing_model.value)
