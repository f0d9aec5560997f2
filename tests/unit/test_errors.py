"""Error classes: codes and statuses agree with the service models, messages with AWS's."""

from __future__ import annotations

import inspect
import json

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser

from emulator import errors
from emulator.errors import (
    ConflictException,
    InternalDependencyException,
    InternalFailure,
    ModelError,
    ModelNotReadyException,
    ModelStreamError,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
    ServiceError,
    ServiceUnavailable,
    UnknownOperationException,
    ValidationError,
    ValidationException,
    already_exists,
    could_not_find,
    job_name_in_use,
    resource_not_found_job,
    training_job_exists,
)
from emulator.gateway.protocol import JSON_CONTENT_TYPE, error_response, load_service_model

ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint"
ERROR_CLASSES = [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, ServiceError)
]


@pytest.mark.parametrize(
    "cls",
    [
        ValidationError,
        ModelError,
        ModelNotReadyException,
        ServiceUnavailable,
        InternalFailure,
        InternalDependencyException,
    ],
)
def test_runtime_statuses_come_from_the_model(cls: type[ServiceError]) -> None:
    shape = load_service_model("sagemaker-runtime").shape_for(cls.code)
    assert shape.metadata["exception"] is True
    assert cls.status == shape.metadata["error"]["httpStatusCode"]


@pytest.mark.parametrize("cls", [ResourceNotFound, ResourceInUse, ResourceLimitExceeded, ConflictException])
def test_control_plane_modelled_errors_exist_and_default_to_400(cls: type[ServiceError]) -> None:
    shape = load_service_model("sagemaker").shape_for(cls.code)
    assert shape.metadata["exception"] is True and "error" not in shape.metadata
    assert cls.status == 400


def test_codes_are_unique_and_drawn_in_the_hierarchy() -> None:
    codes = [cls.code for cls in ERROR_CLASSES if cls is not ServiceError]
    assert len(codes) == len(set(codes)) >= 17
    doc = errors.__doc__ or ""
    assert [code for code in codes if code not in doc] == []


@pytest.mark.parametrize(
    ("err", "message"),
    [
        (resource_not_found_job(), "Requested resource not found."),
        (could_not_find("endpoint", ARN), f'Could not find endpoint "{ARN}".'),
        (could_not_find("endpoint configuration", ARN), f'Could not find endpoint configuration "{ARN}".'),
        (already_exists("model", ARN), f'Cannot create already existing model "{ARN}".'),
    ],
)
def test_not_found_and_duplicates_are_validation_exceptions(err: ServiceError, message: str) -> None:
    assert type(err) is ValidationException and err.message == message


def test_duplicate_training_job_is_resource_in_use() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1"
    err = training_job_exists(arn)
    assert type(err) is ResourceInUse
    assert err.message == (
        "Training job names must be unique within an AWS account and region, and a training job "
        f"with this name already exists ({arn})"
    )
    assert job_name_in_use("processing job", arn).message.startswith("Processing job names must be unique")


def test_model_error_body_carries_only_the_members_it_has() -> None:
    err = ModelError("Received client error (404) from primary", original_status_code=404)
    assert err.status == 424
    assert err.to_body() == {
        "__type": "ModelError",
        "message": "Received client error (404) from primary",
        "OriginalStatusCode": 404,
    }
    assert ModelStreamError("late", error_code="StreamBroken").members() == {
        "Message": "late",
        "ErrorCode": "StreamBroken",
    }


@pytest.mark.parametrize(
    "err", [ValidationException("Requested resource not found."), UnknownOperationException("nope")]
)
def test_json_errors_parse_with_botocore(err: ServiceError) -> None:
    status, headers, body = error_response(err, "json", request_id="rid-1")
    assert ("Content-Type", JSON_CONTENT_TYPE) in headers and ("x-amzn-ErrorType", err.code) in headers
    response = {"status_code": status, "headers": HeadersDict(headers), "body": body}
    parsed = create_parser("json").parse(response, None)
    assert parsed["Error"] == {"Code": err.code, "Message": err.message}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"
    assert status == 400


def test_rest_json_errors_use_the_models_member_names() -> None:
    err = ModelError("boom", original_status_code=500, original_message="trace", log_stream_arn="arn:x")
    status, headers, body = error_response(err, "rest-json", request_id="rid-2")
    assert status == 424 and ("x-amzn-ErrorType", "ModelError") in headers
    assert json.loads(body) == {
        "__type": "ModelError",
        "Message": "boom",
        "OriginalStatusCode": 500,
        "OriginalMessage": "trace",
        "LogStreamArn": "arn:x",
    }
    response = {"status_code": status, "headers": HeadersDict(headers), "body": body}
    shape = load_service_model("sagemaker-runtime").shape_for("ModelError")
    parser = create_parser("rest-json")
    assert parser.parse(response, None)["Error"] == {"Code": "ModelError", "Message": "boom"}
    modelled = parser.parse(response, shape)
    assert (modelled["OriginalStatusCode"], modelled["LogStreamArn"]) == (500, "arn:x")


def test_error_response_makes_a_request_id_when_none_is_given() -> None:
    _, first, _ = error_response(ValidationException("x"), "json")
    _, second, _ = error_response(ValidationException("x"), "json")
    assert len(dict(first)["x-amzn-RequestId"]) == 36
    assert dict(first)["x-amzn-RequestId"] != dict(second)["x-amzn-RequestId"]


def test_error_response_refuses_other_protocols() -> None:
    with pytest.raises(ValueError):
        error_response(ValidationException("x"), "query")
