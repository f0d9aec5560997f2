"""The pure parts of hosting: state machine, validation, deployment plans, listing, capture."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from emulator.errors import ValidationException
from emulator.hosting import lifecycle
from emulator.hosting.capture import CaptureSettings, capture_key, capture_line
from emulator.hosting.invoke import Invocation
from emulator.hosting.lifecycle import EndpointStatus as S
from emulator.hosting.listing import list_page
from emulator.hosting.plan import build_plan, container_plans
from emulator.hosting.validation import (
    DIRECT,
    SERIAL,
    SINGLE,
    model_containers,
    validate_endpoint_config,
    validate_model,
    validate_weights_update,
)


@pytest.mark.parametrize(
    ("current", "wanted", "allowed"),
    [
        (S.CREATING, S.IN_SERVICE, True),
        (S.CREATING, S.FAILED, True),
        (S.IN_SERVICE, S.UPDATING, True),
        (S.UPDATING, S.IN_SERVICE, True),
        (S.FAILED, S.IN_SERVICE, False),
        (S.DELETING, S.IN_SERVICE, False),
        (S.DELETING, S.FAILED, False),
        (S.IN_SERVICE, S.CREATING, False),
    ],
)
def test_endpoint_transitions(current: S, wanted: S, allowed: bool) -> None:
    assert lifecycle.can_move(current, wanted) is allowed
    if not allowed:
        with pytest.raises(lifecycle.InvalidTransition):
            lifecycle.check(current, wanted)


def test_update_and_delete_rules() -> None:
    assert lifecycle.can_update("InService") and not lifecycle.can_update("Creating")
    assert lifecycle.can_delete("Failed") and not lifecycle.can_delete("Deleting")
    assert lifecycle.after_failed_update() is S.IN_SERVICE


def test_model_modes_and_hostname_rules() -> None:
    assert model_containers({"PrimaryContainer": {"Image": "i"}})[1] == SINGLE
    assert model_containers({"Containers": [{"Image": "i"}, {"Image": "j"}]})[1] == SERIAL
    direct = {
        "Containers": [{"Image": "i", "ContainerHostname": "a"}, {"Image": "j", "ContainerHostname": "b"}],
        "InferenceExecutionConfig": {"Mode": "Direct"},
    }
    assert model_containers(direct)[1] == DIRECT
    validate_model(direct)
    for bad, message in [
        ({}, "Either PrimaryContainer or Containers"),
        ({"PrimaryContainer": {"Image": "i"}, "Containers": [{"Image": "i"}]}, "not both"),
        ({"PrimaryContainer": {}}, "Image is required"),
        ({"Containers": [{"Image": "i", "ContainerHostname": "a"}, {"Image": "j"}]}, "all containers"),
        (
            {"Containers": [{"Image": "i"}, {"Image": "j"}], "InferenceExecutionConfig": {"Mode": "Direct"}},
            "every container",
        ),
        (
            {
                "Containers": [
                    {"Image": "i", "ContainerHostname": "a"},
                    {"Image": "j", "ContainerHostname": "a"},
                ]
            },
            "unique",
        ),
        ({"PrimaryContainer": {"Image": "i", "ModelDataUrl": "http://x"}}, "S3 URI"),
        (
            {
                "PrimaryContainer": {
                    "Image": "i",
                    "ModelDataSource": {
                        "S3DataSource": {
                            "S3Uri": "s3://b/p",
                            "S3DataType": "S3Prefix",
                            "CompressionType": "None",
                        }
                    },
                }
            },
            "must end with '/'",
        ),
        ({"PrimaryContainer": {"Image": "i", "Mode": "MultiModel"}}, "Multi-model"),
    ]:
        with pytest.raises(ValidationException, match=message):
            validate_model(bad)


def test_endpoint_config_rules() -> None:
    models = {"m": {"ModelName": "m"}}
    find, arn = models.get, lambda n: f"arn:aws:sagemaker:us-east-1:1:model/{n}"
    ok = {
        "ProductionVariants": [
            {"VariantName": "a", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ]
    }
    validate_endpoint_config(ok, find, arn)
    with pytest.raises(
        ValidationException, match='Could not find model "arn:aws:sagemaker:us-east-1:1:model/x"'
    ):
        validate_endpoint_config(
            {
                "ProductionVariants": [
                    {"VariantName": "a", "ModelName": "x", "InstanceType": "t", "InitialInstanceCount": 1}
                ]
            },
            find,
            arn,
        )
    with pytest.raises(ValidationException, match="non-unique"):
        validate_endpoint_config({"ProductionVariants": ok["ProductionVariants"] * 2}, find, arn)
    with pytest.raises(ValidationException, match="InstanceType is required"):
        validate_endpoint_config({"ProductionVariants": [{"VariantName": "a", "ModelName": "m"}]}, find, arn)
    with pytest.raises(ValidationException, match="S3OutputPath"):
        validate_endpoint_config({**ok, "AsyncInferenceConfig": {"OutputConfig": {}}}, find, arn)
    with pytest.raises(
        ValidationException, match='"b" is/are not present within endpoint configuration "cfg"'
    ):
        validate_weights_update(
            {"DesiredWeightsAndCapacities": [{"VariantName": "b", "DesiredWeight": 1}]}, ["a"], "cfg"
        )


def test_container_plans_set_sagemaker_environment() -> None:
    mode, single = container_plans(
        {"PrimaryContainer": {"Image": "i", "Environment": {"A": "1"}}}, "eu-west-1"
    )
    assert mode == SINGLE and single[0].hostname == "primary" and single[0].port == 8080
    assert single[0].environment == {
        "A": "1",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "SAGEMAKER_SAFE_PORT_RANGE": "21000-21999",
    }
    mode, pipeline = container_plans(
        {
            "Containers": [
                {"Image": "i"},
                {
                    "Image": "j",
                    "ModelDataSource": {
                        "S3DataSource": {
                            "S3Uri": "s3://b/p/",
                            "S3DataType": "S3Prefix",
                            "CompressionType": "None",
                        }
                    },
                },
            ]
        },
        "r",
    )
    assert [c.hostname for c in pipeline] == ["container-1", "container-2"]
    assert [c.environment["SAGEMAKER_BIND_TO_PORT"] for c in pipeline] == ["8080", "8081"]
    assert pipeline[1].environment["SAGEMAKER_SAFE_PORT_RANGE"] == "22000-22999"
    assert pipeline[1].model_data is not None and pipeline[1].model_data.kind == "prefix"
    assert pipeline[1].download_label == "container_2"


def test_build_plan_reads_variant_deadlines_and_serverless() -> None:
    config = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {
                "VariantName": "a",
                "ModelName": "m",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 3,
                "ContainerStartupHealthCheckTimeoutInSeconds": 120,
                "ModelDataDownloadTimeoutInSeconds": 90,
            },
            {
                "VariantName": "s",
                "ModelName": "m",
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1},
            },
        ],
        "DataCaptureConfig": {
            "EnableCapture": False,
            "DestinationS3Uri": "s3://b",
            "InitialSamplingPercentage": 1,
            "CaptureOptions": [{"CaptureMode": "Input"}],
        },
    }
    plan = build_plan("ep", config, {"m": {"PrimaryContainer": {"Image": "i"}}}, "us-east-1")
    a, s = plan.variants
    assert (a.instance_count, a.weight, a.startup_timeout, a.download_timeout) == (3, 1.0, 120.0, 90.0)
    assert s.is_serverless and s.memory_bytes == 2048 * 1024 * 1024 and s.instance_count == 1
    assert plan.capture_config is None  # EnableCapture false


def test_list_page_filters_sorts_and_pages() -> None:
    records = [
        {"Name": f"ep-{i}", "CreationTime": float(i), "Status": "InService" if i % 2 else "Failed"}
        for i in range(5)
    ]
    page, token = list_page(records, {"MaxResults": 2}, "Name", "Status")
    assert [r["Name"] for r in page] == ["ep-4", "ep-3"] and token == "2"
    page, token = list_page(records, {"MaxResults": 2, "NextToken": token}, "Name", "Status")
    assert [r["Name"] for r in page] == ["ep-2", "ep-1"]
    page, _ = list_page(records, {"StatusEquals": "InService", "SortOrder": "Ascending"}, "Name", "Status")
    assert [r["Name"] for r in page] == ["ep-1", "ep-3"]
    after = dt.datetime.fromtimestamp(2.5, dt.timezone.utc)
    assert [r["Name"] for r in list_page(records, {"CreationTimeAfter": after}, "Name")[0]] == [
        "ep-4",
        "ep-3",
    ]
    assert list_page(records, {"NameContains": "EP-0"}, "Name")[0][0]["Name"] == "ep-0"
    with pytest.raises(ValidationException, match="pagination token"):
        list_page(records, {"NextToken": "bogus"}, "Name")


def test_capture_line_and_key_follow_sagemaker_format() -> None:
    settings = CaptureSettings.parse(
        {
            "DestinationS3Uri": "s3://b/cap",
            "InitialSamplingPercentage": 50,
            "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
        }
    )
    invocation = Invocation(body=b"1,2", content_type="text/csv", inference_id="inf-1")
    when = dt.datetime(2024, 1, 19, 19, 27, 57, 62000, tzinfo=dt.timezone.utc).timestamp()
    line = capture_line(settings, invocation, "application/octet-stream", b"\x00\xff", when)
    assert line["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert line["captureData"]["endpointOutput"] == {
        "observedContentType": "application/octet-stream",
        "mode": "OUTPUT",
        "data": "AP8=",
        "encoding": "BASE64",
    }
    assert line["eventMetadata"]["inferenceTime"] == "2024-01-19T19:27:57Z"
    assert line["eventMetadata"]["inferenceId"] == "inf-1"
    json.dumps(line)
    key = capture_key(settings.destination, "ep", "AllTraffic", when).key
    assert key.startswith("cap/ep/AllTraffic/2024/01/19/19/27-57-062-") and key.endswith(".jsonl")
