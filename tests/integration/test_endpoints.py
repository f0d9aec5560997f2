"""Endpoints through boto3 against the session's emulator, with the sample serving container.

Each test reuses one endpoint for several assertions where that is natural, to keep the
number of containers (and the run time on two cores) low. Every endpoint is deleted at the
end and the engine is checked for leftovers by label. The tests that take ``runtime`` run on
both backends (tests/integration/runtimes.py): weighted variants, a serial pipeline, direct
invocation and data capture, and an update under load.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

import docker
from tests.integration.runtimes import Runtime
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import Endpoints, docker_client, model_archive, poll

pytest_plugins = ["tests.integration.runtimes"]


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    """The Docker engine (the module is skipped when none answers)."""
    return docker_client()


@pytest.fixture(scope="module")
def serving_image(engine: docker.DockerClient) -> str:
    """The sample serving image, built once per content."""
    return build_sample_image("serving", client=engine)


@pytest.fixture()
def endpoints(
    sagemaker_client: Any,
    s3_client: Any,
    bucket: str,
    serving_image: str,
    engine: docker.DockerClient,
    role_arn: str,
) -> Iterator[Endpoints]:
    """Creates endpoints for one test and removes them (and checks their containers) after it."""
    with Endpoints(sagemaker_client, s3_client, bucket, serving_image, engine, role_arn) as made:
        yield made


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture()
def on_runtime(runtime: Runtime, serving_image: str) -> Iterator[Endpoints]:
    """Like ``endpoints``, on the emulator of the test's runtime backend."""
    with Endpoints(runtime.sagemaker, runtime.s3, runtime.bucket(), serving_image, None, runtime.role_arn,
                   leftovers=runtime.leftovers) as made:
        yield made


def test_weighted_variants_errors_limits_and_logs(runtime: Runtime, on_runtime: Endpoints) -> None:
    endpoints, sagemaker_client, runtime_client = on_runtime, runtime.sagemaker, runtime.invoker
    logs_client = runtime.logs
    alpha, beta = endpoints.model("alpha"), endpoints.model("beta")
    config = endpoints.config(("alpha", alpha, 4.0, 1), ("beta", beta, 1.0, 1))
    name = endpoints.endpoint(config)

    described = sagemaker_client.describe_endpoint(EndpointName=name)
    assert described["EndpointArn"].endswith(f":endpoint/{name.lower()}")
    assert {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]} == {
        "alpha": 4.0,
        "beta": 1.0,
    }

    # 80/20 over 500 calls: alpha ~ Binomial(500, 0.8), sd 8.9; +-4 sd = 364..436.
    counts = {"alpha": 0, "beta": 0}
    for _ in range(500):
        answer = runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")
        variant = answer["InvokedProductionVariant"]
        assert json.loads(answer["Body"].read())["model"] == variant
        counts[variant] += 1
    assert 364 <= counts["alpha"] <= 436, counts

    for _ in range(10):
        answer = runtime_client.invoke_endpoint(
            EndpointName=name,
            Body=b"x",
            TargetVariant="beta",
            CustomAttributes="trace=abc",
            Accept="application/json",
        )
        assert answer["InvokedProductionVariant"] == "beta"
        assert answer["CustomAttributes"] == "trace=abc"
        echo = json.loads(answer["Body"].read())
        assert (echo["model"], echo["accept"], echo["custom_attributes"]) == (
            "beta",
            "application/json",
            "trace=abc",
        )

    with pytest.raises(ClientError) as unknown_variant:
        runtime_client.invoke_endpoint(EndpointName=name, Body=b"x", TargetVariant="gamma")
    assert _code(unknown_variant) == ("ValidationError", 400)

    with pytest.raises(ClientError) as model_error:
        runtime_client.invoke_endpoint(EndpointName=name, Body=b'{"status": 500}', TargetVariant="alpha")
    assert _code(model_error) == ("ModelError", 424)
    response = model_error.value.response
    assert response["OriginalStatusCode"] == 500
    assert json.loads(response["OriginalMessage"])["status"] == 500
    assert response["LogStreamArn"].endswith(f":log-group:/aws/sagemaker/Endpoints/{name}")
    assert response["Error"]["Message"].startswith("Received server error (500) from primary with message")

    with pytest.raises(ClientError) as oversize:
        runtime_client.invoke_endpoint(EndpointName=name, Body=b"x" * (6 * 1024 * 1024 + 1))
    assert _code(oversize) == ("ValidationError", 400)

    with pytest.raises(ClientError) as missing:
        runtime_client.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"x")
    assert _code(missing) == ("ValidationError", 400)
    assert (
        missing.value.response["Error"]["Message"]
        == "Endpoint no-such-endpoint of account 123456789012 not found."
    )

    sagemaker_client.update_endpoint_weights_and_capacities(
        EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": "alpha", "DesiredWeight": 0.0}]
    )
    sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    assert {
        runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}")["InvokedProductionVariant"]
        for _ in range(20)
    } == {"beta"}

    def logged() -> list[dict[str, Any]]:
        return logs_client.filter_log_events(
            logGroupName=f"/aws/sagemaker/Endpoints/{name}", logStreamNamePrefix="alpha/"
        )["events"]

    events = poll(
        lambda: [e for e in logged() if "sample server listening" in e["message"]],
        20,
        what="the alpha container's start line in CloudWatch Logs",
    )
    assert events[0]["logStreamName"].startswith("alpha/i-")

    # The SDK's delete_endpoint removes the configuration first; the endpoint keeps serving.
    sagemaker_client.delete_endpoint_config(EndpointConfigName=config)
    sagemaker_client.delete_model(ModelName=beta)
    assert runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}")["InvokedProductionVariant"] == "beta"
    with pytest.raises(ClientError) as gone:
        sagemaker_client.describe_endpoint_config(EndpointConfigName=config)
    assert "Could not find endpoint configuration" in str(gone.value)


def test_serial_pipeline_direct_invocation_and_data_capture(runtime: Runtime, on_runtime: Endpoints) -> None:
    endpoints, sagemaker_client, runtime_client, s3_client = on_runtime, runtime.sagemaker, runtime.invoker, runtime.s3
    bucket = on_runtime.bucket
    pipeline = "pipeline-" + endpoints.model()[-10:]
    sagemaker_client.create_model(
        ModelName=pipeline,
        ExecutionRoleArn=endpoints.role_arn,
        Containers=[
            {"Image": endpoints.image, "Environment": {"SMEMU_SAMPLE_TRANSFORM": "upper"}},
            {"Image": endpoints.image, "Environment": {"SMEMU_SAMPLE_TRANSFORM": "reverse"}},
        ],
    )
    direct = "direct-" + pipeline[-10:]
    for label in ("first", "second"):
        key = f"direct/{label}/model.tar.gz"
        s3_client.put_object(Bucket=bucket, Key=key, Body=model_archive(label))
    sagemaker_client.create_model(
        ModelName=direct,
        ExecutionRoleArn=endpoints.role_arn,
        InferenceExecutionConfig={"Mode": "Direct"},
        Containers=[
            {
                "Image": endpoints.image,
                "ContainerHostname": label,
                "ModelDataUrl": f"s3://{bucket}/direct/{label}/model.tar.gz",
            }
            for label in ("first", "second")
        ],
    )
    capture = endpoints.config(
        ("AllTraffic", pipeline, 1.0, 1),
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{bucket}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )
    pipe_ep = endpoints.endpoint(capture, wait=False)
    direct_ep = endpoints.endpoint(endpoints.config(("AllTraffic", direct, 1.0, 1)))
    endpoints.status(pipe_ep, "InService")

    answer = runtime_client.invoke_endpoint(
        EndpointName=pipe_ep,
        Body=b"abc",
        ContentType="text/plain",
        Accept="text/x-final",
        InferenceId="pipe-1",
    )
    assert answer["Body"].read() == b"CBA"  # upper, then reversed
    assert answer["ContentType"] == "text/x-final"  # only the last container sees Accept

    for label in ("first", "second"):
        echo = json.loads(
            runtime_client.invoke_endpoint(EndpointName=direct_ep, Body=b"{}", TargetContainerHostname=label)[
                "Body"
            ].read()
        )
        assert echo["model"] == label
    with pytest.raises(ClientError) as no_host:
        runtime_client.invoke_endpoint(EndpointName=direct_ep, Body=b"{}")
    assert _code(no_host) == ("ValidationError", 400)

    def captured() -> list[str]:
        listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"capture/{pipe_ep}/AllTraffic/")
        return [o["Key"] for o in listed.get("Contents", [])]

    key = poll(captured, 20, what="a data capture file")[0]
    assert key.endswith(".jsonl")
    record = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()[0])
    assert record["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert record["captureData"]["endpointOutput"]["observedContentType"] == "text/x-final"
    assert record["eventMetadata"]["inferenceId"] == "pipe-1"


def test_update_endpoint_under_steady_load_drops_nothing(runtime: Runtime, on_runtime: Endpoints) -> None:
    endpoints, sagemaker_client, runtime_client = on_runtime, runtime.sagemaker, runtime.invoker
    old_config = endpoints.config(("AllTraffic", endpoints.model("v1"), 1.0, 1))
    new_config = endpoints.config(("AllTraffic", endpoints.model("v2"), 1.0, 1))
    name = endpoints.endpoint(old_config)
    failures: list[Exception] = []
    seen: list[str] = []
    stop = threading.Event()

    def steady() -> None:
        while not stop.is_set():
            try:
                body = runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}")["Body"].read()
                seen.append(json.loads(body)["model"])
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                failures.append(exc)

    workers = [threading.Thread(target=steady) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        poll(lambda: len(seen) > 20, 30, what="traffic before the update")
        sagemaker_client.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
        assert sagemaker_client.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"
        sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
        marker = len(seen)
        poll(lambda: len(seen) > marker + 20, 30, what="traffic after the update")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert seen[0] == "v1" and seen[-1] == "v2"
    assert set(seen[-20:]) == {"v2"}  # once InService, only the new fleet answers
    described = sagemaker_client.describe_endpoint(EndpointName=name)
    assert described["EndpointConfigName"] == new_config and "FailureReason" not in described
    poll(
        lambda: len([c for c in runtime.containers(name) if c.running]) == 1, 60, what="the old fleet to be removed"
    )


def test_malicious_model_archive_is_refused(endpoints: Endpoints) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    model = endpoints.model(data=buffer.getvalue())
    name = endpoints.endpoint(endpoints.config(("AllTraffic", model, 1.0, 1)), wait=False)
    record = endpoints.status(name, "Failed", "InService")
    assert record["EndpointStatus"] == "Failed"
    assert "archive member \"../../escape.txt\" has a '..' path component" in record["FailureReason"]
    assert endpoints.engine.containers.list(all=True, filters={"label": f"smemu.name={name}"}) == []


def test_response_streaming_and_async_inference(
    endpoints: Endpoints,
    sagemaker_client: Any,
    runtime_client: Any,
    s3_client: Any,
    bucket: str,
    endpoint_url: str,
) -> None:
    from tests.conftest import make_client

    sns, sqs = make_client("sns", endpoint_url), make_client("sqs", endpoint_url)
    topic = sns.create_topic(Name=f"async-{bucket}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"async-{bucket}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    model = endpoints.model("streamer")
    stream_ep = endpoints.endpoint(endpoints.config(("AllTraffic", model, 1.0, 1)), wait=False)
    async_ep = endpoints.endpoint(
        endpoints.config(
            ("AllTraffic", model, 1.0, 1),
            AsyncInferenceConfig={
                "OutputConfig": {
                    "S3OutputPath": f"s3://{bucket}/async-out",
                    "NotificationConfig": {"SuccessTopic": topic, "ErrorTopic": topic},
                }
            },
        )
    )
    endpoints.status(stream_ep, "InService")

    streamed = runtime_client.invoke_endpoint_with_response_stream(
        EndpointName=stream_ep, Body=b"streaming-payload", ContentType="text/plain", Accept="text/plain"
    )
    assert streamed["ContentType"] == "text/plain"
    assert streamed["InvokedProductionVariant"] == "AllTraffic"
    parts = [event["PayloadPart"]["Bytes"] for event in streamed["Body"]]  # botocore's event-stream parser
    assert len(parts) == 3 and b"".join(parts) == b"streaming-payload"

    s3_client.put_object(Bucket=bucket, Key="async-in/request.json", Body=b'{"question": 42}')
    accepted = runtime_client.invoke_endpoint_async(
        EndpointName=async_ep,
        InputLocation=f"s3://{bucket}/async-in/request.json",
        ContentType="application/json",
    )
    assert accepted["ResponseMetadata"]["HTTPStatusCode"] == 202
    output = accepted["OutputLocation"]
    assert output == f"s3://{bucket}/async-out/{accepted['InferenceId']}.out"
    key = output.split("/", 3)[3]

    def result() -> bytes | None:
        try:
            return bytes(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError:
            return None

    echo = json.loads(poll(result, 30, what="the async result in S3"))
    assert echo["body"] == '{"question": 42}' and echo["content_type"] == "application/json"
    messages = poll(
        lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"),
        30,
        what="the SNS success notification",
    )
    note = json.loads(messages[0]["Body"])
    assert note["invocationStatus"] == "Completed" and note["inferenceId"] == accepted["InferenceId"]
    assert note["responseParameters"]["outputLocation"] == output

    with pytest.raises(ClientError) as realtime_on_async:
        runtime_client.invoke_endpoint(EndpointName=async_ep, Body=b"{}")
    assert _code(realtime_on_async) == ("ValidationError", 400)


def test_endpoint_containers_get_their_role_credentials_endpoint(
    endpoints: Endpoints, runtime_client: Any, emulator: Any
) -> None:
    """Like training containers, serving containers get the model role's credentials endpoint."""
    if emulator.platform.gateway_url is None:
        pytest.fail("the container gateway did not start; containers cannot reach the emulator")
    name = endpoints.endpoint(endpoints.config(("AllTraffic", endpoints.model("creds"), 1.0, 1)))
    answer = runtime_client.invoke_endpoint(EndpointName=name, Body=b'{"env": true}',
                                            ContentType="application/json")
    env = json.loads(answer["Body"].read())["env"]
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://169.254.170.2:")
    assert env["AWS_ENDPOINT_URL"].startswith("http://169.254.170.2:")
    assert env.get("AWS_ACCESS_KEY_ID") is None, "the host's credentials never reach a container"
