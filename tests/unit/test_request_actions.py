"""The IAM action and resource of a raw request (emulator/request_actions.py), for strict mode."""

from __future__ import annotations

import pytest

from emulator.request_actions import Permission, permissions, s3_operation

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.mark.parametrize(("method", "path", "query", "headers", "operation"), [
    ("GET", "/", "", {}, "ListBuckets"),
    ("GET", "/b", "list-type=2&prefix=in%2F", {}, "ListObjectsV2"),
    ("GET", "/b", "prefix=x", {}, "ListObjects"),
    ("GET", "/b", "location", {}, "GetBucketLocation"),
    ("PUT", "/b", "", {}, "CreateBucket"),
    ("PUT", "/b", "policy", {}, "PutBucketPolicy"),
    ("HEAD", "/b", "", {}, "HeadBucket"),
    ("POST", "/b", "delete", {}, "DeleteObjects"),
    ("GET", "/b/k/x.csv", "", {}, "GetObject"),
    ("HEAD", "/b/k", "", {}, "HeadObject"),
    ("GET", "/b/k", "tagging", {}, "GetObjectTagging"),
    ("PUT", "/b/k", "", {}, "PutObject"),
    ("PUT", "/b/k", "", {"x-amz-copy-source": "/src/key"}, "CopyObject"),
    ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, "UploadPart"),
    ("POST", "/b/k", "uploads", {}, "CreateMultipartUpload"),
    ("POST", "/b/k", "uploadId=u", {}, "CompleteMultipartUpload"),
    ("DELETE", "/b/k", "uploadId=u", {}, "AbortMultipartUpload"),
    ("DELETE", "/b/k", "", {}, "DeleteObject"),
])
def test_s3_operations(method: str, path: str, query: str, headers: dict[str, str], operation: str) -> None:
    bucket, _, key = path.lstrip("/").partition("/")
    names = {pair.partition("=")[0] for pair in query.split("&") if pair}
    assert s3_operation(method, bucket, key, names, headers) == operation


def test_s3_permissions_carry_resources_and_the_prefix() -> None:
    listed = permissions("s3", "GET", "/data", "list-type=2&prefix=train%2F", {}, b"", REGION, ACCOUNT)
    assert listed == [Permission("s3:ListBucket", "arn:aws:s3:::data", {"s3:prefix": "train/"})]
    copied = permissions("s3", "PUT", "/out/a%20b", "", {"x-amz-copy-source": "/in/src.csv"}, b"", REGION, ACCOUNT)
    assert [(p.action, p.resource) for p in copied] == [("s3:PutObject", "arn:aws:s3:::out/a b"),
                                                        ("s3:GetObject", "arn:aws:s3:::in/src.csv")]
    deleted = permissions("s3", "POST", "/b", "delete", {}, b"<Delete><Object><Key>x&amp;y</Key></Object></Delete>",
                          REGION, ACCOUNT)
    assert deleted == [Permission("s3:DeleteObject", "arn:aws:s3:::b/x&y")]


def test_json_query_and_runtime_calls() -> None:
    job = permissions("sagemaker", "POST", "/", "", {"x-amz-target": "SageMaker.CreateTrainingJob"},
                      b'{"TrainingJobName": "Job-1"}', REGION, ACCOUNT)
    assert job == [Permission("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/job-1")]
    logs = permissions("logs", "POST", "/", "", {"x-amz-target": "Logs_20140328.PutLogEvents"},
                       b'{"logGroupName": "/aws/x", "logStreamName": "s"}', REGION, ACCOUNT)
    assert logs == [Permission("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/x:log-stream:s")]
    role = permissions("iam", "POST", "/", "", {"content-type": "application/x-www-form-urlencoded"},
                       b"Action=GetRole&RoleName=R&Version=2010-05-08", REGION, ACCOUNT)
    assert role == [Permission("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/R")]
    assert permissions("sts", "POST", "/", "", {"content-type": "application/x-www-form-urlencoded"},
                       b"Action=GetCallerIdentity&Version=2011-06-15", REGION, ACCOUNT) == []
    invoke = permissions("sagemaker", "POST", "/endpoints/My-Ep/invocations", "", {}, b"{}", REGION, ACCOUNT)
    assert invoke == [Permission("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/my-ep")]
    metrics = permissions("monitoring", "POST", "/", "", {"x-amz-target": "GraniteServiceVersion20100801.PutMetricData"},
                          b"{}", REGION, ACCOUNT)
    assert metrics == [Permission("cloudwatch:PutMetricData", "*")]
    assert permissions("sagemaker", "POST", "/", "", {}, b"", REGION, ACCOUNT) is None
