"""CreateTrainingJob rules beyond botocore's model, and the smemu: tag knobs."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.errors import ValidationException
from emulator.training.knobs import parse_knobs
from emulator.training.validation import validate_create_request


def _request(**members: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": "j", "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    }
    request.update(members)
    return request


def _channel(name: str = "train", uri: str = "s3://b/t", **extra: Any) -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": uri, **extra.pop("source", {})}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, **extra}


GROUPS = {"InstanceGroups": [{"InstanceGroupName": "g", "InstanceType": "ml.m5.large", "InstanceCount": 1}]}


@pytest.mark.parametrize(("members", "message"), [
    ({"AlgorithmSpecification": {"AlgorithmName": "xgboost", "TrainingInputMode": "File"}}, "AlgorithmName"),
    ({"AlgorithmSpecification": {"TrainingInputMode": "File"}}, "TrainingImage is required"),
    ({"ResourceConfig": None}, "ResourceConfig is required"),
    ({"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 0}}, "at least 1"),
    ({"ResourceConfig": {**GROUPS, "InstanceType": "ml.m5.large"}}, "not both"),
    ({"EnableManagedSpotTraining": True}, "MaxWaitTimeInSeconds is required"),
    ({"StoppingCondition": {"MaxRuntimeInSeconds": 5, "MaxWaitTimeInSeconds": 10}}, "only valid when"),
    ({"InputDataConfig": [_channel(), _channel()]}, "duplicated: train"),
    ({"InputDataConfig": [_channel(CompressionType="Gzip")]}, "Gzip is only supported in Pipe"),
    ({"InputDataConfig": [_channel(InputMode="FastFile", source={"S3DataType": "ManifestFile"})]}, "FastFile"),
    ({"InputDataConfig": [_channel(source={"S3DataType": "AugmentedManifestFile", "AttributeNames": ["a"]})]},
     "requires Pipe"),
    ({"InputDataConfig": [_channel(uri="http://x/y")]}, "must be an s3:// URI"),
    ({"InputDataConfig": [_channel(source={"InstanceGroupNames": ["nope"]})], "ResourceConfig": GROUPS},
     "not instance groups"),
    ({"InputDataConfig": [{"ChannelName": "efs", "DataSource": {"FileSystemDataSource": {}}}]}, "no EFS"),
    ({"CheckpointConfig": {"S3Uri": "s3://b/c", "LocalPath": "/opt/ml/model/ck"}}, "SageMaker manages"),
])
def test_rules(members: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException, match=message):
        validate_create_request(_request(**members))


def test_valid_requests_pass() -> None:
    validate_create_request(_request(
        EnableManagedSpotTraining=True, StoppingCondition={"MaxRuntimeInSeconds": 5, "MaxWaitTimeInSeconds": 5},
        CheckpointConfig={"S3Uri": "s3://b/c", "LocalPath": "/tmp/ckpt"},
        InputDataConfig=[_channel(), _channel("local", "file:///data"),
                         _channel("p", InputMode="Pipe", CompressionType="Gzip", RecordWrapperType="RecordIO"),
                         _channel("aug", InputMode="Pipe",
                                  source={"S3DataType": "AugmentedManifestFile", "AttributeNames": ["x"]})]))
    validate_create_request(_request(ResourceConfig=GROUPS, InputDataConfig=[
        _channel(source={"InstanceGroupNames": ["g"]})]))


def test_knobs() -> None:
    assert parse_knobs([], spot=False).interruptions == ()
    knobs = parse_knobs([{"Key": "smemu:spot-interruptions", "Value": "2, 0.5"},
                         {"Key": "smemu:instance-memory-mb", "Value": "256"}], spot=True)
    assert knobs.interruptions == (2.0, 0.5) and knobs.memory_mb == 256
    with pytest.raises(ValidationException, match="needs EnableManagedSpotTraining"):
        parse_knobs([{"Key": "smemu:spot-interruptions", "Value": "1"}], spot=False)
    for bad in ("soon", "-1", "nan", ""):
        with pytest.raises(ValidationException, match="comma-separated list of seconds"):
            parse_knobs([{"Key": "smemu:spot-interruptions", "Value": bad}], spot=True)
    with pytest.raises(ValidationException, match="whole number of MiB"):
        parse_knobs([{"Key": "smemu:instance-memory-mb", "Value": "1.5"}], spot=False)
