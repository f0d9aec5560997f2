"""The wire protocols, checked against botocore itself.

Requests are either raw bytes (what any client could send) or produced by a real boto3 client
whose HTTP send is replaced by our protocol code (``before-send``), so the answers are parsed
by botocore exactly as a boto3 user sees them. Client-side validation is off in those clients:
otherwise botocore would refuse the bad inputs before our server saw them.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import timeit
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError
from botocore.parsers import create_parser
from botocore.validate import ParamValidator

from emulator.errors import (
    ModelError,
    ModelNotReadyException,
    ModelStreamError,
    SerializationException,
    ServiceError,
    ServiceUnavailable,
    UnknownOperationException,
    ValidationError,
    ValidationException,
)
from emulator.eventstream import payload_part_frame, stream_error_frame
from emulator.gateway.protocol import (
    JSON_CONTENT_TYPE,
    JsonRpcProtocol,
    RestJsonProtocol,
    error_response,
    load_service_model,
)
from emulator.gateway.validation import java_pattern

SM = load_service_model("sagemaker")
JSON = JsonRpcProtocol()
REST = RestJsonProtocol()
Handler = Callable[[str, dict[str, Any]], Mapping[str, Any]]
Responder = Callable[[AWSPreparedRequest], tuple[int, list[tuple[str, str]], bytes]]

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TRAINING: dict[str, Any] = {
    "TrainingJobName": "job-1",
    "AlgorithmSpecification": {"TrainingImage": "img:latest", "TrainingInputMode": "File"},
    "RoleArn": ROLE,
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train"}},
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}
DELETE = object()


def changed(base: dict[str, Any], *edits: tuple[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``("A.0.B", value)`` edits applied (``DELETE`` removes)."""
    out = copy.deepcopy(base)
    for path, value in edits:
        *parents, last = path.split(".")
        node: Any = out
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


def enum_text(shape: str, member: str) -> str:
    return ", ".join(SM.shape_for(shape).members[member].enum)


def parse_json(target: str, body: bytes) -> dict[str, Any]:
    return JSON.parse(JSON.operation_from_target(target), body)


# -- X-Amz-Target ----------------------------------------------------------------------------


def test_target_names_the_operation() -> None:
    assert JSON.operation_from_target("SageMaker.CreateTrainingJob").name == "CreateTrainingJob"


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "SageMaker",
        "SageMaker.",
        "SageMaker.NoSuchThing",
        "sagemaker.CreateModel",
        "DynamoDB_20120810.CreateTable",
        "SageMaker.CreateModel.Extra",
    ],
)
def test_missing_or_unknown_target_is_unknown_operation(target: str | None) -> None:
    with pytest.raises(UnknownOperationException) as err:
        JSON.operation_from_target(target)
    assert err.value.code == "UnknownOperationException" and err.value.status == 400


# -- JSON 1.1 request bodies: AWS's validation messages --------------------------------------

V1 = "1 validation error detected: "
NOT_NULL = "failed to satisfy constraint: Member must not be null"

# fmt: off
VALIDATION_CASES = [
    ("missing RoleArn", "CreateTrainingJob", changed(TRAINING, ("RoleArn", DELETE)),
     f"{V1}Value null at 'roleArn' {NOT_NULL}"),
    ("null RoleArn", "CreateTrainingJob", changed(TRAINING, ("RoleArn", None)),
     f"{V1}Value null at 'roleArn' {NOT_NULL}"),
    ("nested required", "CreateTrainingJob",
     changed(TRAINING, ("ResourceConfig.InstanceCount", 1), ("OutputDataConfig", {})),
     f"{V1}Value null at 'outputDataConfig.s3OutputPath' {NOT_NULL}"),
    ("name too long", "CreateTrainingJob", changed(TRAINING, ("TrainingJobName", "a" + "-" * 62 + "b")),
     f"{V1}Value 'a{'-' * 62}b' at 'trainingJobName' failed to satisfy constraint: "
     "Member must have length less than or equal to 63"),
    ("name pattern", "CreateTrainingJob", changed(TRAINING, ("TrainingJobName", "my_job")),
     f"{V1}Value 'my_job' at 'trainingJobName' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
    ("name too long and pattern", "CreateTrainingJob",
     changed(TRAINING, ("TrainingJobName", "x" * 90 + "!")),
     f"2 validation errors detected: Value '{'x' * 90}!' at 'trainingJobName' failed to satisfy "
     "constraint: Member must have length less than or equal to 63; "
     f"Value '{'x' * 90}!' at 'trainingJobName' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
    ("bad input mode", "CreateTrainingJob",
     changed(TRAINING, ("AlgorithmSpecification.TrainingInputMode", "Filez")),
     f"{V1}Value 'Filez' at 'algorithmSpecification.trainingInputMode' failed to satisfy "
     "constraint: Member must satisfy enum value set: [Pipe, File, FastFile]"),
    ("bad instance type", "CreateTrainingJob",
     changed(TRAINING, ("ResourceConfig.InstanceType", "ml.fake")),
     f"{V1}Value 'ml.fake' at 'resourceConfig.instanceType' failed to satisfy constraint: "
     f"Member must satisfy enum value set: [{enum_text('ResourceConfig', 'InstanceType')}]"),
    ("runtime below min", "CreateTrainingJob",
     changed(TRAINING, ("StoppingCondition.MaxRuntimeInSeconds", 0)),
     f"{V1}Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: "
     "Member must have value greater than or equal to 1"),
    ("list item path", "CreateTrainingJob",
     changed(TRAINING, ("InputDataConfig.0.ChannelName", "train!")),
     f"{V1}Value 'train!' at 'inputDataConfig.1.member.channelName' failed to satisfy "
     r"constraint: Member must satisfy regular expression pattern: [A-Za-z0-9\.\-_]+"),
    ("second list item, nested", "CreateTrainingJob",
     changed(TRAINING, ("InputDataConfig", TRAINING["InputDataConfig"] + [
         {"ChannelName": "test", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix"}}}])),
     f"{V1}Value null at 'inputDataConfig.2.member.dataSource.s3DataSource.s3Uri' {NOT_NULL}"),
    ("empty list", "CreateTrainingJob", changed(TRAINING, ("InputDataConfig", [])),
     f"{V1}Value '[]' at 'inputDataConfig' failed to satisfy constraint: "
     "Member must have length greater than or equal to 1"),
    ("map key pattern", "CreateTrainingJob", changed(TRAINING, ("Environment", {"1BAD": "x"})),
     f"{V1}Value '{{1BAD=x}}' at 'environment' failed to satisfy constraint: Map keys must satisfy "
     "constraint: [Member must have length less than or equal to 512, Member must have length "
     "greater than or equal to 0, Member must satisfy regular expression pattern: "
     "[a-zA-Z_][a-zA-Z0-9_]*]"),
    ("map value with a line break (Java's '.')", "CreateTrainingJob",
     changed(TRAINING, ("HyperParameters", {"epochs": "1\n2"})),
     f"{V1}Value '{{epochs=1\n2}}' at 'hyperParameters' failed to satisfy constraint: Map value "
     "must satisfy constraint: [Member must have length less than or equal to 2500, Member must "
     "have length greater than or equal to 0, Member must satisfy regular expression pattern: .*]"),
    ("list of scalars", "CreateTrainingJob",
     changed(TRAINING, ("VpcConfig", {"SecurityGroupIds": ["sg-1", "bad!"], "Subnets": ["subnet-1"]})),
     f"{V1}Value '[sg-1, bad!]' at 'vpcConfig.securityGroupIds' failed to satisfy constraint: "
     "Member must satisfy constraint: [Member must have length less than or equal to 32, Member "
     "must have length greater than or equal to 0, Member must satisfy regular expression "
     "pattern: [-0-9a-zA-Z]+]"),
    ("unicode tag pattern", "CreateTrainingJob",
     changed(TRAINING, ("Tags", [{"Key": "équipe", "Value": "ok"}, {"Key": "a!b", "Value": "v"}])),
     f"{V1}Value 'a!b' at 'tags.2.member.key' failed to satisfy constraint: Member must satisfy "
     r"regular expression pattern: ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"),
    ("max results", "ListTrainingJobs", {"MaxResults": 101},
     f"{V1}Value '101' at 'maxResults' failed to satisfy constraint: "
     "Member must have value less than or equal to 100"),
    ("status enum", "ListTrainingJobs", {"StatusEquals": "Done"},
     f"{V1}Value 'Done' at 'statusEquals' failed to satisfy constraint: Member must satisfy enum "
     "value set: [InProgress, Completed, Failed, Stopping, Stopped, Deleting]"),
    ("model name in a variant", "CreateEndpointConfig",
     {"EndpointConfigName": "cfg", "ProductionVariants": [
         {"VariantName": "AllTraffic", "ModelName": "ENTER MODEL NAME", "InitialInstanceCount": 0}]},
     "2 validation errors detected: Value 'ENTER MODEL NAME' at 'productionVariants.1.member.modelName' "
     "failed to satisfy constraint: Member must satisfy regular expression pattern: "
     r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?; Value '0' at "
     "'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: "
     "Member must have value greater than or equal to 1"),
    ("missing model name", "CreateModel", {"ExecutionRoleArn": ROLE},
     f"{V1}Value null at 'modelName' {NOT_NULL}"),
]
# fmt: on


@pytest.mark.parametrize(
    ("operation", "request_body", "message"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_bad_requests_get_aws_validation_messages(
    operation: str, request_body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationException) as err:
        parse_json(f"SageMaker.{operation}", json.dumps(request_body).encode())
    assert err.value.message == message


# fmt: off
SERIALIZATION_CASES = [
    ("number for string", ("TrainingJobName", 5), "NUMBER_VALUE can not be converted to a String"),
    ("true for string", ("TrainingJobName", True), "TRUE_VALUE can not be converted to a String"),
    ("string for integer", ("ResourceConfig.InstanceCount", "1"),
     "STRING_VALUE can not be converted to an Integer"),
    ("false for integer", ("ResourceConfig.InstanceCount", False),
     "FALSE_VALUE can not be converted to an Integer"),
    ("list for integer", ("ResourceConfig.InstanceCount", [1]), "Start of list found where not expected"),
    ("object for integer", ("ResourceConfig.InstanceCount", {"a": 1}),
     "Start of structure or map found where not expected."),
    ("string for list", ("InputDataConfig", "train"), "Expected list or null"),
    ("object for list", ("InputDataConfig", {}), "Start of structure or map found where not expected."),
    ("string for structure", ("ResourceConfig", "big"), "Expected null"),
    ("string for boolean", ("EnableNetworkIsolation", "true"),
     "STRING_VALUE can not be converted to a Boolean"),
    ("number inside a list", ("InputDataConfig.0.ChannelName", 7),
     "NUMBER_VALUE can not be converted to a String"),
]
# fmt: on


@pytest.mark.parametrize(
    ("edit", "message"), [case[1:] for case in SERIALIZATION_CASES], ids=[c[0] for c in SERIALIZATION_CASES]
)
def test_wrong_json_types_are_serialization_exceptions(edit: tuple[str, Any], message: str) -> None:
    with pytest.raises(SerializationException) as err:
        parse_json("SageMaker.CreateTrainingJob", json.dumps(changed(TRAINING, edit)).encode())
    assert err.value.message == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "Start of list found where not expected"),
        (b'"x"', "The request body must be a JSON object"),
        (b"null", "The request body must be a JSON object"),
        (b"{", None),
        (b"\xff\xfe{", None),
        (b'{"MaxResults": NaN}', None),
    ],
)
def test_bodies_that_are_not_json_objects(body: bytes, message: str | None) -> None:
    with pytest.raises(SerializationException) as err:
        parse_json("SageMaker.ListTrainingJobs", body)
    assert err.value.message == message if message else "not valid JSON" in err.value.message


@pytest.mark.parametrize("body", [b"", b"  \n", b"{}"])
def test_empty_bodies_are_empty_requests(body: bytes) -> None:
    assert parse_json("SageMaker.ListTrainingJobs", body) == {}


def test_decoding_keeps_model_members_as_python_values() -> None:
    body = json.dumps(
        {
            "MaxResults": 10.7,
            "CreationTimeAfter": 1704067200,
            "Unknown": {"x": 1},
            "NameContains": None,
            "SortOrder": "Ascending",
        }
    ).encode()
    assert parse_json("SageMaker.ListTrainingJobs", body) == {
        "MaxResults": 10,
        "CreationTimeAfter": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        "SortOrder": "Ascending",
    }


def test_null_list_items_are_dropped() -> None:
    body = changed(TRAINING, ("InputDataConfig", [None, *TRAINING["InputDataConfig"]]))
    params = parse_json("SageMaker.CreateTrainingJob", json.dumps(body).encode())
    assert params["InputDataConfig"] == TRAINING["InputDataConfig"]


# -- the model's Java regular expressions ----------------------------------------------------------

SUPPLEMENTARY = r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*"
TAG = r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}"


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (r"\A\S[\p{Print}]*\z", "m1.tar.gz", True),
        (r"\A\S[\p{Print}]*\z", "m1\n", False),
        (r"\p{ASCII}*", "text/csv", True),
        (r"\p{ASCII}*", "caf\u00e9", False),
        (SUPPLEMENTARY, "ok \U0001f600", True),
        (SUPPLEMENTARY, "\x01", False),
        (TAG, "\u00e9quipe 1", True),
        (TAG, "a!b", False),
        (".*", "a\rb", False),  # Java's '.' stops at \r too
        (r"\w+", "\u00e9", False),  # Java's \w is ASCII
        ("[a-z]+", "abc1", False),  # the whole value must match
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"\P{L}+", "123", True),
    ],
)
def test_java_patterns_keep_java_semantics(pattern: str, value: str, matches: bool) -> None:
    compiled = java_pattern(pattern)
    assert compiled is not None
    assert (compiled.fullmatch(value) is not None) is matches


@pytest.mark.parametrize("pattern", [r"[a-z&&[^b]]", r"[a[b]]", r"\p{IsNoSuchThing}", "(unclosed"])
def test_untranslatable_patterns_are_not_checked(pattern: str) -> None:
    assert java_pattern(pattern) is None


def test_every_pattern_in_both_models_translates() -> None:
    patterns = {
        shape.metadata["pattern"]
        for model in (SM, REST.service_model)
        for shape in map(model.shape_for, model.shape_names)
        if "pattern" in shape.metadata
    }
    assert len(patterns) > 200
    assert [p for p in patterns if java_pattern(p) is None] == []


# -- through a real boto3 client ---------------------------------------------------------------


class _Raw:
    """The part of urllib3's response that botocore reads."""

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        data = self._body.read()
        if data:
            yield data

    def read(self, amt: int | None = None) -> bytes:
        return self._body.read(amt)

    def close(self) -> None:
        pass


def wired_client(service: str, respond: Responder) -> BaseClient:
    """A boto3 client whose requests are answered in-process by ``respond``."""
    client = boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url="http://smemu.invalid",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        status, headers, body = respond(request)
        return AWSResponse(request.url, status, headers, _Raw(body))

    client.meta.events.register("before-send", send)
    return client


def request_headers(request: AWSPreparedRequest) -> dict[str, str]:
    """The request's headers as a WSGI server hands them over: text, not bytes."""
    return {
        name: value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in request.headers.items()
    }


def json_server(handler: Handler) -> Responder:
    def respond(request: AWSPreparedRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            operation = JSON.operation_from_target(request_headers(request).get("X-Amz-Target"))
            result = handler(operation.name, JSON.parse(operation, request.body or b""))
            headers = [("Content-Type", JSON_CONTENT_TYPE), ("x-amzn-RequestId", "rid-json")]
            return 200, headers, JSON.serialize(operation, result)
        except ServiceError as err:
            return error_response(err, "json", request_id="rid-json")

    return respond


def rest_server(handler: Handler, seen: list[dict[str, Any]] | None = None) -> Responder:
    def respond(request: AWSPreparedRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            found = REST.operation_for(request.method, urlsplit(request.url).path)
            assert found is not None, request.url
            operation, labels = found
            body = request.body if isinstance(request.body, bytes) else (request.body or b"")
            params = REST.parse(operation, labels, request_headers(request), body)
            if seen is not None:
                seen.append(params)
            status, headers, payload = REST.serialize(operation, handler(operation.name, params))
            return status, [*headers, ("x-amzn-RequestId", "rid-rest")], payload
        except ServiceError as err:
            return error_response(err, "rest-json", request_id="rid-rest")

    return respond


CREATED = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
DESCRIBED: dict[str, Any] = {
    "TrainingJobName": "job-1",
    "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1",
    "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/job-1/output/model.tar.gz"},
    "TrainingJobStatus": "Completed",
    "SecondaryStatus": "Completed",
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "CreationTime": CREATED,
    "TrainingEndTime": CREATED.timestamp() + 60,
    "LastModifiedTime": "2024-01-02T03:05:05Z",
    "HyperParameters": {"epochs": "2"},
    "VpcConfig": {},
    "FailureReason": None,
    "NotAModelMember": "dropped",
    "SecondaryStatusTransitions": [{"Status": "Starting", "StartTime": CREATED, "Junk": 1}],
}


def test_serialized_output_keeps_only_model_members_and_epoch_timestamps() -> None:
    operation = SM.operation_model("DescribeTrainingJob")
    document = json.loads(JSON.serialize(operation, DESCRIBED))
    assert "NotAModelMember" not in document and "FailureReason" not in document
    assert "VpcConfig" not in document  # an empty optional structure is left out
    assert document["SecondaryStatusTransitions"] == [{"Status": "Starting", "StartTime": 1704164645.678}]
    assert document["CreationTime"] == 1704164645.678
    assert document["LastModifiedTime"] == 1704164705
    report = ParamValidator().validate(document, operation.output_shape)
    assert not report.has_errors(), report.generate_report()


def test_botocore_parses_serialized_output_into_what_boto3_users_see() -> None:
    operation = SM.operation_model("DescribeTrainingJob")
    parsed = create_parser("json").parse(
        {"status_code": 200, "headers": {}, "body": JSON.serialize(operation, DESCRIBED)},
        operation.output_shape,
    )
    assert parsed["CreationTime"] == CREATED
    assert parsed["TrainingEndTime"] == CREATED + dt.timedelta(seconds=60)
    assert parsed["HyperParameters"] == {"epochs": "2"}
    assert parsed["ModelArtifacts"] == DESCRIBED["ModelArtifacts"]


def test_required_empty_structures_and_empty_lists_stay() -> None:
    listed = JSON.serialize(SM.operation_model("ListTrainingJobs"), {"TrainingJobSummaries": []})
    assert json.loads(listed) == {"TrainingJobSummaries": []}
    described = JSON.serialize(SM.operation_model("DescribeTrainingJob"), {"StoppingCondition": {}})
    assert json.loads(described) == {"StoppingCondition": {}}


def test_operations_without_output_answer_an_empty_object() -> None:
    assert JSON.serialize(SM.operation_model("DeleteModel"), {"Anything": 1}) == b"{}"


@pytest.mark.parametrize(
    "result",
    [
        {"TrainingJobName": 5},
        {"HyperParameters": ["a"]},
        {"SecondaryStatusTransitions": "Starting"},
        {"CreationTime": object()},
    ],
)
def test_results_of_the_wrong_type_are_bugs(result: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        JSON.serialize(SM.operation_model("DescribeTrainingJob"), result)


def test_boto3_round_trip_of_a_control_plane_call() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def handler(name: str, params: dict[str, Any]) -> Mapping[str, Any]:
        calls.append((name, params))
        return DESCRIBED

    client = wired_client("sagemaker", json_server(handler))
    answer = client.describe_training_job(TrainingJobName="job-1")
    assert calls == [("DescribeTrainingJob", {"TrainingJobName": "job-1"})]
    assert answer["CreationTime"] == CREATED and answer["TrainingJobStatus"] == "Completed"
    assert "VpcConfig" not in answer
    assert answer["ResponseMetadata"]["RequestId"] == "rid-json"


def test_boto3_sees_validation_exception_with_aws_message() -> None:
    client = wired_client("sagemaker", json_server(lambda name, params: {}))
    with pytest.raises(ClientError) as err:
        client.create_training_job(**changed(TRAINING, ("ResourceConfig.InstanceType", "ml.fake")))
    error = err.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(
        "1 validation error detected: Value 'ml.fake' at 'resourceConfig.instanceType' failed"
    )
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["ResponseMetadata"]["RequestId"] == "rid-json"


# -- rest-json (sagemaker-runtime) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/endpoints/my-ep/invocations", ("InvokeEndpoint", {"EndpointName": "my-ep"})),
        ("post", "/endpoints/my%2Dep/invocations?x=1", ("InvokeEndpoint", {"EndpointName": "my-ep"})),
        (
            "POST",
            "/endpoints/e/invocations-response-stream",
            ("InvokeEndpointWithResponseStream", {"EndpointName": "e"}),
        ),
        ("POST", "/endpoints/e/async-invocations", ("InvokeEndpointAsync", {"EndpointName": "e"})),
        ("GET", "/endpoints/e/invocations", None),
        ("POST", "/endpoints/e/other", None),
        ("POST", "/endpoints//invocations", None),
        ("POST", "/endpoints/a/b/invocations", None),
    ],
)
def test_runtime_routes(method: str, path: str, expected: tuple[str, dict[str, str]] | None) -> None:
    found = REST.operation_for(method, path)
    assert (None if found is None else (found[0].name, found[1])) == expected


def test_boto3_invoke_endpoint_round_trip_with_every_header() -> None:
    seen: list[dict[str, Any]] = []

    def handler(name: str, params: dict[str, Any]) -> Mapping[str, Any]:
        return {
            "Body": b"0.42\n",
            "ContentType": "text/csv",
            "InvokedProductionVariant": "AllTraffic",
            "CustomAttributes": params["CustomAttributes"],
            "NewSessionId": "s-1; Expires=2024-01-01T00:00:00Z",
            "NotModelled": "dropped",
        }

    client = wired_client("sagemaker-runtime", rest_server(handler, seen))
    sent = {
        "EndpointName": "my-ep",
        "Body": b"1,2,3",
        "ContentType": "text/csv",
        "Accept": "text/csv",
        "CustomAttributes": "trace=1",
        "TargetModel": "m1.tar.gz",
        "TargetVariant": "blue",
        "TargetContainerHostname": "c1",
        "InferenceId": "inf-1",
        "EnableExplanations": "`true`",
        "InferenceComponentName": "ic-1",
        "SessionId": "NEW_SESSION",
    }
    answer = client.invoke_endpoint(**sent)
    assert seen == [sent]
    assert answer["Body"].read() == b"0.42\n"
    assert answer["ContentType"] == "text/csv"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "trace=1"
    assert answer["NewSessionId"] == "s-1; Expires=2024-01-01T00:00:00Z"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["ResponseMetadata"]["RequestId"] == "rid-rest"


def test_boto3_invoke_endpoint_async_gets_202_and_json_body() -> None:
    seen: list[dict[str, Any]] = []

    def handler(name: str, params: dict[str, Any]) -> Mapping[str, Any]:
        return {"InferenceId": "inf-9", "OutputLocation": "s3://b/out/inf-9.out"}

    client = wired_client("sagemaker-runtime", rest_server(handler, seen))
    answer = client.invoke_endpoint_async(
        EndpointName="e", InputLocation="s3://b/in.csv", RequestTTLSeconds=600, ContentType="text/csv"
    )
    assert seen == [
        {
            "EndpointName": "e",
            "InputLocation": "s3://b/in.csv",
            "RequestTTLSeconds": 600,
            "ContentType": "text/csv",
        }
    ]
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (answer["InferenceId"], answer["OutputLocation"]) == ("inf-9", "s3://b/out/inf-9.out")


INVOKE = REST.service_model.operation_model("InvokeEndpoint")
ASYNC = REST.service_model.operation_model("InvokeEndpointAsync")
# fmt: off
RUNTIME_CASES = [
    ("endpoint name pattern", INVOKE, {"EndpointName": "my_ep"}, {}, b"x",
     f"{V1}Value 'my_ep' at 'endpointName' failed to satisfy constraint: Member must satisfy "
     "regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"),
    ("custom attributes are sensitive", INVOKE, {"EndpointName": "e"},
     {"X-Amzn-SageMaker-Custom-Attributes": "a" * 1025}, b"x",
     f"{V1}Value at 'customAttributes' failed to satisfy constraint: "
     "Member must have length less than or equal to 1024"),
    ("target model must start with a non-space", INVOKE, {"EndpointName": "e"},
     {"x-amzn-sagemaker-target-model": " m.tar.gz"}, b"x",
     f"{V1}Value ' m.tar.gz' at 'targetModel' failed to satisfy constraint: Member must satisfy "
     r"regular expression pattern: \A\S[\p{Print}]*\z"),
    ("body over 6 MB", INVOKE, {"EndpointName": "e"}, {}, b"0" * 6291457,
     f"{V1}Value at 'body' failed to satisfy constraint: "
     "Member must have length less than or equal to 6291456"),
    ("async input location is required", ASYNC, {"EndpointName": "e"}, {}, b"",
     f"{V1}Value null at 'inputLocation' {NOT_NULL}"),
    ("async TTL below minimum", ASYNC, {"EndpointName": "e"},
     {"X-Amzn-SageMaker-InputLocation": "s3://b/k", "X-Amzn-SageMaker-RequestTTLSeconds": "10"}, b"",
     f"{V1}Value '10' at 'requestTTLSeconds' failed to satisfy constraint: "
     "Member must have value greater than or equal to 60"),
]
# fmt: on


@pytest.mark.parametrize(
    ("operation", "labels", "headers", "body", "message"),
    [case[1:] for case in RUNTIME_CASES],
    ids=[case[0] for case in RUNTIME_CASES],
)
def test_runtime_validation_errors(
    operation: Any, labels: dict[str, str], headers: dict[str, str], body: bytes, message: str
) -> None:
    with pytest.raises(ValidationError) as err:
        REST.parse(operation, labels, headers, body)
    assert err.value.message == message and err.value.code == "ValidationError"


def test_runtime_header_of_the_wrong_type() -> None:
    headers = {"X-Amzn-SageMaker-InputLocation": "s3://b/k", "X-Amzn-SageMaker-RequestTTLSeconds": "soon"}
    with pytest.raises(SerializationException) as err:
        REST.parse(ASYNC, {"EndpointName": "e"}, headers, b"")
    assert err.value.message == "STRING_VALUE can not be converted to an Integer"


@pytest.mark.parametrize(
    ("err", "status"),
    [
        (ValidationError("Endpoint e of account 123456789012 not found."), 400),
        (ModelNotReadyException("still loading"), 429),
        (ServiceUnavailable("busy"), 503),
    ],
)
def test_boto3_sees_runtime_errors(err: ServiceError, status: int) -> None:
    def handler(name: str, params: dict[str, Any]) -> Mapping[str, Any]:
        raise err

    client = wired_client("sagemaker-runtime", rest_server(handler))
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName="e", Body=b"x")
    assert raised.value.response["Error"] == {"Code": err.code, "Message": err.message}
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_boto3_sees_model_error_members() -> None:
    def handler(name: str, params: dict[str, Any]) -> Mapping[str, Any]:
        raise ModelError(
            'Received server error (500) from primary with message "boom".',
            original_status_code=500,
            original_message="boom",
            log_stream_arn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/e",
        )

    client = wired_client("sagemaker-runtime", rest_server(handler))
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName="e", Body=b"x")
    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["Error"]["Message"].startswith("Received server error (500) from primary")
    assert response["OriginalStatusCode"] == 500 and response["OriginalMessage"] == "boom"
    assert response["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/e")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_boto3_reads_our_event_stream_frames() -> None:
    frames = (
        payload_part_frame(b"hel")
        + payload_part_frame(b"lo")
        + stream_error_frame(
            ModelStreamError("Your model timed out", error_code="ModelInvocationTimeExceeded")
        )
    )

    def respond(request: AWSPreparedRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        operation, labels = REST.operation_for(request.method, urlsplit(request.url).path) or (None, {})
        assert operation is not None and labels == {"EndpointName": "e"}
        status, headers, body = REST.serialize(operation, {"ContentType": "text/plain", "Body": None})
        assert body == b"" and ("X-Amzn-SageMaker-Content-Type", "text/plain") in headers
        return status, [*headers, ("Content-Type", "application/vnd.amazon.eventstream")], frames

    client = wired_client("sagemaker-runtime", respond)
    answer = client.invoke_endpoint_with_response_stream(EndpointName="e", Body=b"x")
    assert answer["ContentType"] == "text/plain"
    events = iter(answer["Body"])
    parts = [next(events), next(events)]
    assert parts == [{"PayloadPart": {"Bytes": b"hel"}}, {"PayloadPart": {"Bytes": b"lo"}}]
    with pytest.raises(EventStreamError) as raised:
        next(events)
    assert raised.value.response["Error"]["Code"] == "ModelStreamError"
    assert raised.value.response["Error"]["Message"] == "Your model timed out"


def test_runtime_parse_and_serialize_stay_cheap() -> None:
    labels = {"EndpointName": "my-endpoint"}
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "a=b",
        "User-Agent": "Boto3/1.43",
    }
    result = {"Body": b"{}", "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}

    def one_call() -> None:
        operation, found = REST.operation_for("POST", "/endpoints/my-endpoint/invocations") or (INVOKE, {})
        REST.parse(operation, found, headers, b'{"inputs": [1, 2, 3]}')
        REST.serialize(operation, result)

    assert REST.parse(INVOKE, labels, headers, b"{}")["Accept"] == "application/json"
    best = min(timeit.repeat(one_call, number=500, repeat=5)) / 500
    assert best < 100e-6, f"{best * 1e6:.1f} us per call"
