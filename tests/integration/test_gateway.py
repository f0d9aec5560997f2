"""The edge port answers as every AWS service a SageMaker workflow touches.

Real boto3 clients against the emulator's real WSGI server; nothing is mocked.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_client, unique_name


def test_list_training_jobs_starts_empty(sagemaker_client: Any) -> None:
    response = sagemaker_client.list_training_jobs(NameContains="never-created-zz")
    assert response["TrainingJobSummaries"] == []


def test_sagemaker_operations_not_executed_here_fall_through_to_moto(sagemaker_client: Any) -> None:
    name = unique_name("exp")
    arn = sagemaker_client.create_experiment(ExperimentName=name)["ExperimentArn"]
    assert arn.endswith(f"experiment/{name}")
    names = [e["ExperimentName"] for e in sagemaker_client.list_experiments()["ExperimentSummaries"]]
    assert name in names


def test_sts_identity(endpoint_url: str) -> None:
    identity = make_client("sts", endpoint_url).get_caller_identity()
    assert identity["Account"] == "123456789012"


def test_iam_role_round_trip(endpoint_url: str, role_arn: str) -> None:
    iam = make_client("iam", endpoint_url)
    role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
    assert role["Arn"] == role_arn
    statement = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"]["Service"] == "sagemaker.amazonaws.com"


def test_ecr_repository(endpoint_url: str) -> None:
    ecr = make_client("ecr", endpoint_url)
    name = unique_name("repo")
    created = ecr.create_repository(repositoryName=name)["repository"]
    assert created["repositoryUri"].endswith(f".amazonaws.com/{name}")
    listed = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert name in listed


def test_cloudwatch_logs(logs_client: Any) -> None:
    group = f"/test/{unique_name('group')}"
    logs_client.create_log_group(logGroupName=group)
    logs_client.create_log_stream(logGroupName=group, logStreamName="s")
    logs_client.put_log_events(logGroupName=group, logStreamName="s",
                               logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello"}])
    events = logs_client.get_log_events(logGroupName=group, logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["hello"]


def test_s3_object_round_trip(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"payload")
    assert s3_client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"payload"


def test_a_bucket_named_endpoints_is_still_s3(s3_client: Any) -> None:
    name = "endpoints"
    try:
        s3_client.create_bucket(Bucket=name)
    except ClientError as err:
        assert err.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    s3_client.put_object(Bucket=name, Key="x/invocations", Body=b"not a model call")
    assert s3_client.get_object(Bucket=name, Key="x/invocations")["Body"].read() == b"not a model call"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"TrainingJobName": "x" * 64},
         "Value '" + "x" * 64 + "' at 'trainingJobName' failed to satisfy constraint: "
         "Member must have length less than or equal to 63"),
        ({"RoleArn": None}, "Value null at 'roleArn' failed to satisfy constraint: Member must not be null"),
        ({"ResourceConfig": {"InstanceType": "ml.fake", "InstanceCount": 1, "VolumeSizeInGB": 1}},
         "at 'resourceConfig.instanceType' failed to satisfy constraint: Member must satisfy enum value set"),
    ],
    ids=["name-too-long", "missing-role", "bad-instance-type"],
)
def test_server_validates_even_when_the_client_does_not(
    endpoint_url: str, change: dict[str, Any], expected: str
) -> None:
    client = make_client("sagemaker", endpoint_url, parameter_validation=False)
    request: dict[str, Any] = {
        "TrainingJobName": unique_name("job"),
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    request.update(change)
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(ClientError) as caught:
        client.create_training_job(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert expected in error["Message"]
    assert re.match(r"^[12] validation errors? detected: ", error["Message"])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _raw_post(endpoint_url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    auth = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sagemaker/aws4_request, "
            "SignedHeaders=host, Signature=0")
    request = urllib.request.Request(endpoint_url + "/", data=body, method="POST",
                                     headers={"Authorization": auth,
                                              "Content-Type": "application/x-amz-json-1.1", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ({"X-Amz-Target": "SageMaker.NoSuchOperation"}, b"{}", "UnknownOperationException"),
        ({}, b"{}", "UnknownOperationException"),
        ({"X-Amz-Target": "SageMaker.ListTrainingJobs"}, b"{not json", "SerializationException"),
    ],
    ids=["unknown-operation", "no-target", "malformed-json"],
)
def test_protocol_errors_have_aws_shape(endpoint_url: str, headers: dict[str, str], body: bytes,
                                        code: str) -> None:
    status, payload = _raw_post(endpoint_url, headers, body)
    assert status == 400
    assert payload["__type"] == code


def test_empty_body_is_an_empty_request(endpoint_url: str) -> None:
    status, payload = _raw_post(endpoint_url, {"X-Amz-Target": "SageMaker.ListTrainingJobs"}, b"")
    assert status == 200
    assert "TrainingJobSummaries" in payload


def test_aws_cli_reaches_sts(endpoint_url: str) -> None:
    beside_python = Path(sys.executable).parent / "aws"
    aws = str(beside_python) if beside_python.exists() else shutil.which("aws")
    assert aws, "the AWS CLI is a test dependency (setup.cfg [test])"
    completed = subprocess.run(
        [aws, "--endpoint-url", endpoint_url, "--region", "us-east-1", "sts", "get-caller-identity",
         "--output", "json"],
        capture_output=True, text=True, timeout=60,
        env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["Account"] == "123456789012"
