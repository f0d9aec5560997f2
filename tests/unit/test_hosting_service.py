"""HostingService end to end over the in-process fake backend: lifecycle, routing, updates,
failures, restart re-adoption. No Docker; every status change is awaited with a deadline."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.context import CallContext
from emulator.errors import ModelError, ValidationError, ValidationException
from emulator.hosting.service import HostingService
from tests.unit.test_hosting_fakes import FakeBackend, FakePlatform, FakeS3, wait_for

CTX = CallContext(region="us-east-1", account_id="123456789012")


class Harness:
    """A HostingService on a fake platform and backend, with helpers to build endpoints."""

    def __init__(
        self, home: Path, backend: FakeBackend | None = None, s3: FakeS3 | None = None, **settings: Any
    ) -> None:
        self.backend = backend or FakeBackend()
        self.s3 = s3 or FakeS3()
        self.platform = FakePlatform(home, self.s3, container_stop_grace_seconds=0, **settings)
        self.platform.backend = self.backend
        self.service = HostingService(self.platform, self.backend)
        self.runtime = self.service.edge_handlers().runtime_handler()
        """What the edge calls for sagemaker-runtime operations."""
        self.service.start()

    def model(self, name: str, env: dict[str, str] | None = None, image: str = "img", **extra: Any) -> None:
        container = {"Image": image, "Environment": env or {}, **extra}
        self.service.create_model({"ModelName": name, "PrimaryContainer": container}, CTX)

    def config(self, name: str, *variants: tuple[str, str, float, int], **extra: Any) -> None:
        self.service.create_endpoint_config(
            {
                "EndpointConfigName": name,
                "ProductionVariants": [
                    {
                        "VariantName": v,
                        "ModelName": m,
                        "InitialVariantWeight": w,
                        "InitialInstanceCount": n,
                        "InstanceType": "ml.m5.large",
                    }
                    for v, m, w, n in variants
                ],
                **extra,
            },
            CTX,
        )

    def endpoint(self, name: str, config: str, status: str = "InService") -> dict[str, Any]:
        self.service.create_endpoint({"EndpointName": name, "EndpointConfigName": config}, CTX)
        return self.wait_status(name, status)

    def wait_status(self, name: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            record = self.service.describe_endpoint({"EndpointName": name}, CTX)
            return record if record["EndpointStatus"] == status else None

        return wait_for(reached, timeout)

    def invoke(self, name: str, body: bytes = b"{}", **headers: Any) -> dict[str, Any]:
        return dict(
            self.runtime("InvokeEndpoint", {"EndpointName": name, "Body": body, **headers}, CTX)
        )

    def echo(self, name: str, body: bytes = b"{}", **headers: Any) -> dict[str, Any]:
        return json.loads(self.invoke(name, body, **headers)["Body"])

    def delete(self, name: str) -> None:
        self.service.delete_endpoint({"EndpointName": name}, CTX)

        def gone() -> bool:
            try:
                self.service.describe_endpoint({"EndpointName": name}, CTX)
            except ValidationException:
                return True
            return False

        wait_for(gone)


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.service.stop()


def test_endpoint_lifecycle_and_invoke(harness: Harness) -> None:
    harness.model("m1", {"FAKE_NAME": "one"})
    harness.config("c1", ("AllTraffic", "m1", 1.0, 1))
    created = harness.service.create_endpoint({"EndpointName": "Ep-1", "EndpointConfigName": "c1"}, CTX)
    assert created["EndpointArn"].endswith(":endpoint/ep-1")
    record = harness.wait_status("Ep-1", "InService")
    variant = record["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 1 and variant["CurrentWeight"] == 1.0
    assert variant["DeployedImages"][0]["SpecifiedImage"] == "img"
    answer = harness.invoke(
        "Ep-1",
        b"hello",
        ContentType="text/plain",
        Accept="application/json",
        CustomAttributes="trace=1",
        InferenceId="id-7",
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "trace=1"
    assert answer["ContentType"] == "application/json"
    echo = json.loads(answer["Body"])
    assert echo == {
        **echo,
        "name": "one",
        "content_type": "text/plain",
        "accept": "application/json",
        "custom_attributes": "trace=1",
        "inference_id": "id-7",
        "body": "hello",
    }
    spec = harness.backend.started[0]
    assert spec.command == ["serve"] and spec.expose_ports == [8080]
    assert spec.environment["SAGEMAKER_SAFE_PORT_RANGE"] == "21000-21999"
    assert "SAGEMAKER_BIND_TO_PORT" not in spec.environment
    assert spec.folders[0].target == "/opt/ml/model" and spec.folders[0].read_only
    assert spec.labels["smemu.name"] == "Ep-1" and spec.labels["smemu.kind"] == "endpoint"
    listed = harness.service.list_endpoints({"StatusEquals": "InService"}, CTX)["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["Ep-1"]
    with pytest.raises(ValidationException, match="Cannot create already existing endpoint"):
        harness.service.create_endpoint({"EndpointName": "ep-1", "EndpointConfigName": "c1"}, CTX)
    # The SDK deletes the config (and the model) before the endpoint: it keeps serving.
    harness.service.delete_endpoint_config({"EndpointConfigName": "c1"}, CTX)
    harness.service.delete_model({"ModelName": "m1"}, CTX)
    assert harness.echo("Ep-1")["name"] == "one"
    harness.delete("Ep-1")
    assert harness.backend.running_for("Ep-1") == []
    with pytest.raises(ValidationError, match="Endpoint Ep-1 of account 123456789012 not found."):
        harness.invoke("Ep-1")
    with pytest.raises(
        ValidationException,
        match='Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep-1"',
    ):
        harness.service.describe_endpoint({"EndpointName": "Ep-1"}, CTX)


def test_container_that_exits_fails_the_endpoint_with_its_logs(harness: Harness) -> None:
    harness.model("m", {"FAKE_EXIT": "1"})
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    record = harness.endpoint("bad", "c", status="Failed")
    reason = record["FailureReason"]
    assert reason.startswith(
        "The primary container for production variant AllTraffic did not pass the ping "
        "health check. Please check CloudWatch logs for this endpoint."
    )
    assert "exited with code 3" in reason and "fatal: asked to exit" in reason
    assert harness.backend.running_for("bad") == []
    harness.delete("bad")


def test_never_healthy_container_fails_after_the_startup_deadline(tmp_path: Path) -> None:
    h = Harness(tmp_path, endpoint_startup_timeout_seconds=0.5)
    try:
        h.model("m", {"FAKE_PING_FAIL": "1"})
        h.config("c", ("AllTraffic", "m", 1.0, 1))
        reason = h.endpoint("sick", "c", status="Failed")["FailureReason"]
        assert "ContainerStartupHealthCheckTimeoutInSeconds (0.5 s); last answer: HTTP 503" in reason
    finally:
        h.service.stop()


def test_missing_image_fails_naming_it(harness: Harness) -> None:
    harness.model("m", image="missing/image:1")
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    assert "missing/image:1" in harness.endpoint("noimg", "c", status="Failed")["FailureReason"]


def _tar(files: dict[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type, info.linkname = tarfile.SYMTYPE, symlink[1]
            archive.addfile(info)
    return buffer.getvalue()


def test_model_data_is_extracted_and_malicious_archives_refused(harness: Harness) -> None:
    harness.s3.objects[("b", "good/model.tar.gz")] = _tar({"weights.bin": b"1", "code/inference.py": b"x"})
    harness.s3.objects[("b", "evil/model.tar.gz")] = _tar(
        {"ok.txt": b"1"}, symlink=("link", "../../etc/passwd")
    )
    harness.model("good", ModelDataUrl="s3://b/good/model.tar.gz")
    harness.model("evil", ModelDataUrl="s3://b/evil/model.tar.gz")
    harness.model("absent", ModelDataUrl="s3://b/absent/model.tar.gz")
    harness.config("cg", ("AllTraffic", "good", 1.0, 1))
    harness.config("ce", ("AllTraffic", "evil", 1.0, 1))
    harness.config("ca", ("AllTraffic", "absent", 1.0, 1))
    harness.endpoint("good", "cg")
    assert harness.echo("good")["model_files"] == ["inference.py", "weights.bin"]
    reason = harness.endpoint("evil", "ce", status="Failed")["FailureReason"]
    assert 'archive member "link" is a symbolic link pointing outside the model folder' in reason
    reason = harness.endpoint("absent", "ca", status="Failed")["FailureReason"]
    assert reason.startswith(
        'Failed to download model data for container "container_1" from URL: "s3://b/absent/model.tar.gz".'
    )


def test_weighted_routing_target_variant_and_round_robin(harness: Harness) -> None:
    harness.model("ma", {"FAKE_NAME": "a"})
    harness.model("mb", {"FAKE_NAME": "b"})
    harness.config("c", ("A", "ma", 4.0, 2), ("B", "mb", 1.0, 1))
    harness.endpoint("split", "c")
    counts = {"A": 0, "B": 0}
    instances: set[str] = set()
    for _ in range(1000):
        answer = harness.invoke("split")
        counts[answer["InvokedProductionVariant"]] += 1
        echo = json.loads(answer["Body"])
        assert echo["name"] == answer["InvokedProductionVariant"].lower()
        if echo["name"] == "a":
            instances.add(echo["instance"])
    assert 740 <= counts["A"] <= 860  # 80 % +- 6 sigma (sigma = 12.6)
    assert len(instances) == 2
    assert all(harness.echo("split", TargetVariant="B")["name"] == "b" for _ in range(20))
    with pytest.raises(ValidationError, match='variant "C"'):
        harness.invoke("split", TargetVariant="C")


def test_model_errors_timeouts_and_payload_limit(tmp_path: Path) -> None:
    h = Harness(tmp_path, invocation_timeout_seconds=0.5)
    try:
        h.model("m")
        h.config("c", ("AllTraffic", "m", 1.0, 1))
        h.endpoint("err", "c")
        with pytest.raises(ModelError) as failed:
            h.invoke("err", b'{"status": 500}')
        err = failed.value
        assert err.status == 424 and err.original_status_code == 500
        assert err.original_message == '{"error": "asked to fail"}'
        assert err.message.startswith('Received server error (500) from primary with message "{"error"')
        assert (
            err.log_stream_arn == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/err"
        )
        with pytest.raises(ModelError, match=r"Received client error \(404\)"):
            h.invoke("err", b'{"status": 404}')
        with pytest.raises(ModelError, match="timed out") as slow:
            h.invoke("err", b'{"sleep": 2}')
        assert slow.value.original_status_code == 0
        assert h.echo("err", b"after")["body"] == "after"  # the pool recovered
        with pytest.raises(ValidationError, match="has oversize body"):
            h.invoke("err", b"x" * (6 * 1024 * 1024 + 1))
        with pytest.raises(ValidationError, match="not a multi-model endpoint"):
            h.invoke("err", TargetModel="a.tar.gz")
    finally:
        h.service.stop()


def test_serial_pipeline_and_direct_invocation(harness: Harness) -> None:
    containers = [
        {"Image": "img", "Environment": {"SMEMU_SAMPLE_TRANSFORM": "upper"}},
        {"Image": "img", "Environment": {"SMEMU_SAMPLE_TRANSFORM": "reverse"}},
    ]
    harness.service.create_model({"ModelName": "pipe", "Containers": containers}, CTX)
    harness.service.create_model(
        {
            "ModelName": "direct",
            "InferenceExecutionConfig": {"Mode": "Direct"},
            "Containers": [
                {"Image": "img", "ContainerHostname": "first", "Environment": {"FAKE_NAME": "1"}},
                {"Image": "img", "ContainerHostname": "second", "Environment": {"FAKE_NAME": "2"}},
            ],
        },
        CTX,
    )
    harness.config("cp", ("AllTraffic", "pipe", 1.0, 1))
    harness.config("cd", ("AllTraffic", "direct", 1.0, 1))
    harness.endpoint("pipe", "cp")
    harness.endpoint("direct", "cd")
    answer = harness.invoke("pipe", b"abc", ContentType="text/plain", Accept="text/final")
    assert answer["Body"] == b"CBA" and answer["ContentType"] == "text/final"
    ports = sorted(
        s.environment["SAGEMAKER_BIND_TO_PORT"]
        for s in harness.backend.started
        if s.labels["smemu.name"] == "pipe"
    )
    assert ports == ["8080", "8081"]
    assert harness.echo("direct", TargetContainerHostname="second")["name"] == "2"
    assert harness.echo("direct", TargetContainerHostname="first")["container"] == "first"
    with pytest.raises(ValidationError, match="specify TargetContainerHostname"):
        harness.invoke("direct")
    with pytest.raises(ValidationError, match="third is not a container"):
        harness.invoke("direct", TargetContainerHostname="third")
    with pytest.raises(ValidationError, match="not configured for direct invocation"):
        harness.invoke("pipe", TargetContainerHostname="container-1")


def test_update_endpoint_under_load_drops_nothing(harness: Harness) -> None:
    harness.model("old", {"FAKE_NAME": "old"})
    harness.model("new", {"FAKE_NAME": "new"})
    harness.config("c-old", ("AllTraffic", "old", 1.0, 1))
    harness.config("c-new", ("AllTraffic", "new", 1.0, 2))
    harness.endpoint("bg", "c-old")
    failures: list[Exception] = []
    seen: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                seen.append(harness.echo("bg")["name"])
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                failures.append(exc)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        harness.service.update_endpoint({"EndpointName": "bg", "EndpointConfigName": "c-new"}, CTX)
        updating = harness.service.describe_endpoint({"EndpointName": "bg"}, CTX)
        assert updating["EndpointStatus"] == "Updating"
        assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "c-new"
        record = harness.wait_status("bg", "InService")
        wait_for(lambda: seen and seen[-1] == "new")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert record["EndpointConfigName"] == "c-new" and "PendingDeploymentSummary" not in record
    assert record["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    wait_for(lambda: len(harness.backend.running_for("bg")) == 2)


def test_failed_update_keeps_the_old_fleet(harness: Harness) -> None:
    harness.model("ok", {"FAKE_NAME": "ok"})
    harness.model("broken", {"FAKE_EXIT": "1"})
    harness.config("c-ok", ("AllTraffic", "ok", 1.0, 1))
    harness.config("c-broken", ("AllTraffic", "broken", 1.0, 1))
    harness.endpoint("keep", "c-ok")
    harness.service.update_endpoint({"EndpointName": "keep", "EndpointConfigName": "c-broken"}, CTX)
    record = wait_for(
        lambda: (
            (r := harness.service.describe_endpoint({"EndpointName": "keep"}, CTX))["EndpointStatus"]
            == "InService"
            and "FailureReason" in r
            and r
        )
    )
    assert record["EndpointConfigName"] == "c-ok"
    assert harness.echo("keep")["name"] == "ok"


def test_weights_and_capacities(harness: Harness) -> None:
    harness.model("m", {"FAKE_NAME": "m"})
    harness.config("c", ("A", "m", 1.0, 1), ("B", "m", 1.0, 1))
    harness.endpoint("wc", "c")
    with pytest.raises(ValidationException, match='variant name\\(s\\) "Z" is/are not present'):
        harness.service.update_endpoint_weights_and_capacities(
            {"EndpointName": "wc", "DesiredWeightsAndCapacities": [{"VariantName": "Z", "DesiredWeight": 1}]},
            CTX,
        )
    harness.service.update_endpoint_weights_and_capacities(
        {
            "EndpointName": "wc",
            "DesiredWeightsAndCapacities": [
                {"VariantName": "A", "DesiredWeight": 0.0, "DesiredInstanceCount": 2}
            ],
        },
        CTX,
    )
    record = harness.wait_status("wc", "InService")
    summary = {v["VariantName"]: v for v in record["ProductionVariants"]}
    assert summary["A"]["CurrentWeight"] == 0.0 and summary["A"]["CurrentInstanceCount"] == 2
    assert {harness.invoke("wc")["InvokedProductionVariant"] for _ in range(30)} == {"B"}
    assert len({harness.echo("wc", TargetVariant="A")["instance"] for _ in range(4)}) == 2


def test_restart_readopts_running_endpoints(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.model("m", {"FAKE_NAME": "kept"})
    first.config("c", ("AllTraffic", "m", 1.0, 1))
    first.endpoint("kept", "c")
    first.service.stop()
    first.platform.store.close()
    second = Harness(tmp_path, backend=first.backend, s3=first.s3)
    try:
        assert (
            second.service.describe_endpoint({"EndpointName": "kept"}, CTX)["EndpointStatus"] == "InService"
        )
        assert second.echo("kept")["name"] == "kept"
        assert len(first.backend.running_for("kept")) == 1  # adopted, not restarted
        second.delete("kept")
        assert first.backend.running_for("kept") == []
    finally:
        second.service.stop()


def test_restart_relaunches_vanished_containers(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.model("m", {"FAKE_NAME": "again"})
    first.config("c", ("AllTraffic", "m", 1.0, 1))
    first.endpoint("again", "c")
    first.service.stop()
    first.platform.store.close()
    for container in list(first.backend.containers):
        first.backend.remove(container)
    second = Harness(tmp_path, backend=first.backend, s3=first.s3)
    try:
        second.wait_status("again", "InService")
        assert second.echo("again")["name"] == "again"
    finally:
        second.service.stop()


def test_serverless_idles_out_and_cold_starts(tmp_path: Path) -> None:
    h = Harness(tmp_path, serverless_idle_seconds=0.3)
    try:
        h.model("m", {"FAKE_NAME": "sl"})
        h.service.create_endpoint_config(
            {
                "EndpointConfigName": "c",
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": "m",
                        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
                    }
                ],
            },
            CTX,
        )
        record = h.endpoint("sl", "c")
        assert record["ProductionVariants"][0]["CurrentServerlessConfig"]["MemorySizeInMB"] == 2048
        assert h.backend.started[0].memory_bytes == 2048 * 1024 * 1024
        wait_for(lambda: h.backend.running_for("sl") == [])
        assert h.echo("sl")["name"] == "sl"  # cold start
        assert len(h.backend.running_for("sl")) == 1
        with pytest.raises(ValidationError, match="oversize"):
            h.invoke("sl", b"x" * (4 * 1024 * 1024 + 1))
    finally:
        h.service.stop()


def test_streaming_round_trip_parsed_by_botocore(harness: Harness) -> None:
    from botocore.eventstream import EventStreamBuffer

    harness.model("m")
    harness.model("plain", {"FAKE_NO_STREAM_PATH": "1"})
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    harness.config("cp", ("AllTraffic", "plain", 1.0, 1))
    harness.endpoint("st", "c")
    harness.endpoint("st-plain", "cp")
    response = harness.service.streamer.handle(
        "InvokeEndpointWithResponseStream",
        {"EndpointName": "st", "Body": b"x", "CustomAttributes": "a=1"},
        CTX,
    )
    assert response.headers["X-Amzn-SageMaker-Content-Type"] == "text/plain"
    assert response.headers["x-Amzn-Invoked-Production-Variant"] == "AllTraffic"
    buffer = EventStreamBuffer()
    assert response.status == 200
    for frame in response.body:
        buffer.add_data(frame)
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages] == ["PayloadPart"] * len(messages)
    assert b"".join(m.payload for m in messages) == b"one two three"
    fallback = harness.service.streamer.handle(
        "InvokeEndpointWithResponseStream", {"EndpointName": "st-plain", "Body": b"{}"}, CTX
    )
    assert b"".join(fallback.body)  # answered by POST /invocations
    with pytest.raises(ModelError):
        harness.service.streamer.handle(
            "InvokeEndpointWithResponseStream", {"EndpointName": "st", "Body": b'{"status": 500}'}, CTX
        )


def test_async_inference_and_data_capture(harness: Harness) -> None:
    harness.model("m", {"FAKE_NAME": "async"})
    harness.config(
        "ca",
        ("AllTraffic", "m", 1.0, 1),
        AsyncInferenceConfig={
            "OutputConfig": {"S3OutputPath": "s3://out/results", "S3FailurePath": "s3://out/failures"}
        },
    )
    harness.config(
        "cc",
        ("AllTraffic", "m", 1.0, 1),
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "s3://cap/data",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )
    harness.endpoint("asy", "ca")
    record = harness.endpoint("cap", "cc")
    assert record["DataCaptureConfig"]["CaptureStatus"] == "Started"
    harness.s3.objects[("in", "req.json")] = b'{"x": 1}'
    harness.s3.objects[("in", "bad.json")] = b'{"status": 500}'
    answer = harness.runtime(
        "InvokeEndpointAsync",
        {"EndpointName": "asy", "InputLocation": "s3://in/req.json", "ContentType": "application/json"},
        CTX,
    )
    assert answer["OutputLocation"] == f"s3://out/results/{answer['InferenceId']}.out"
    failed = harness.runtime(
        "InvokeEndpointAsync",
        {"EndpointName": "asy", "InputLocation": "s3://in/bad.json", "InferenceId": "bad-1"},
        CTX,
    )
    assert failed["FailureLocation"] == "s3://out/failures/bad-1-error.out"
    output = wait_for(lambda: harness.s3.objects.get(("out", f"results/{answer['InferenceId']}.out")))
    assert json.loads(output)["body"] == '{"x": 1}'
    assert (
        wait_for(lambda: harness.s3.objects.get(("out", "failures/bad-1-error.out")))
        == b'{"error": "asked to fail"}'
    )
    with pytest.raises(ValidationError, match="asynchronous"):
        harness.invoke("asy")
    harness.invoke("cap", b"a,b", ContentType="text/csv", InferenceId="cap-1")
    key = wait_for(lambda: [k for b, k in harness.s3.objects if b == "cap"])[0]
    assert key.startswith("data/cap/AllTraffic/") and key.endswith(".jsonl")
    line = json.loads(harness.s3.objects[("cap", key)].splitlines()[0])
    assert line["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "a,b",
        "encoding": "CSV",
    }
    assert line["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert line["eventMetadata"]["inferenceId"] == "cap-1" and line["eventVersion"] == "0"


def test_restart_fails_an_endpoint_whose_fleet_was_never_recorded(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.platform.store.insert(
        "endpoint",
        "orphan",
        {
            "EndpointName": "orphan",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/orphan",
            "EndpointStatus": "Creating",
            "CreationTime": 1.0,
            "LastModifiedTime": 1.0,
        },
        1.0,
    )
    first.service.stop()
    first.platform.store.close()
    second = Harness(tmp_path, backend=first.backend)
    try:
        record = second.service.describe_endpoint({"EndpointName": "orphan"}, CTX)
        assert record["EndpointStatus"] == "Failed" and "Delete the endpoint" in record["FailureReason"]
        second.delete("orphan")
    finally:
        second.service.stop()


def test_updates_need_an_in_service_endpoint(harness: Harness) -> None:
    harness.model("m", {"FAKE_PING_FAIL": "1"})
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    harness.service.create_endpoint({"EndpointName": "busy", "EndpointConfigName": "c"}, CTX)
    with pytest.raises(ValidationException, match='Cannot update in-progress endpoint "arn:aws:sagemaker:'):
        harness.service.update_endpoint({"EndpointName": "busy", "EndpointConfigName": "c"}, CTX)
    with pytest.raises(ValidationException, match="Cannot update in-progress endpoint"):
        harness.service.update_endpoint_weights_and_capacities(
            {
                "EndpointName": "busy",
                "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredWeight": 1.0}],
            },
            CTX,
        )
    with pytest.raises(ValidationException, match="Could not find endpoint configuration"):
        harness.service.create_endpoint({"EndpointName": "other", "EndpointConfigName": "nope"}, CTX)
    harness.delete("busy")  # deleting cancels the bring-up in progress
    assert harness.backend.running_for("busy") == []
