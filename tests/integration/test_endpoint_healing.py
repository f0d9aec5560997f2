"""Endpoints heal, with real containers: kill an InService endpoint's container (and later
make its replacement stop answering /ping) and see the instance replaced, invocations recover,
and the event in DescribeEndpoint-visible status, CloudWatch Logs and the emulator's views."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from emulator.hosting.service import HostingService
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import Endpoints, poll

pytestmark = pytest.mark.docker


@pytest.fixture()
def quick_health_checks(emulator: Any) -> Iterator[HostingService]:
    """The session emulator's hosting service checking instances every 0.5 s (5 s by default)."""
    service = next(s for s in emulator.platform.services if isinstance(s, HostingService))
    saved = service.health.interval
    service.health.interval = 0.5
    try:
        yield service
    finally:
        service.health.interval = saved


def fleet(endpoint_url: str, name: str) -> dict[str, Any]:
    """The endpoint's fleet as the dashboard and `smemu status` see it."""
    with urllib.request.urlopen(f"{endpoint_url}/_smemu/api/resources/endpoint/{name}") as answer:
        return dict(json.loads(answer.read())["Fleet"])


def instance_ids(endpoint_url: str, name: str) -> list[str]:
    (variant,) = fleet(endpoint_url, name)["Active"]["Variants"]
    return [i["InstanceId"] for i in variant["Instances"]]


def invoke_until_recovered(runtime_client: Any, name: str, old_host: str) -> tuple[str, set[str]]:
    """Invoke until a new instance answers; the host that answered and every error code seen on the way."""
    errors: set[str] = set()

    def answered_by_new_instance() -> str | None:
        try:
            body = runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")
        except ClientError as exc:
            errors.add(exc.response["Error"]["Code"])
            return None
        host = str(json.loads(body["Body"].read())["host"])
        return host if host != old_host else None

    return poll(answered_by_new_instance, timeout=90, interval=0.2, what="an answer from a replacement"), errors


def test_a_killed_container_and_a_hung_one_are_replaced_and_invocations_recover(
    quick_health_checks: HostingService, sagemaker_client: Any, runtime_client: Any, logs_client: Any,
    s3_client: Any, bucket: str, role_arn: str, endpoint_url: str
) -> None:
    engine = docker.from_env()
    image = build_sample_image("serving", client=engine)
    with Endpoints(sagemaker_client, s3_client, bucket, image, engine, role_arn) as endpoints:
        name = endpoints.endpoint(endpoints.config(("AllTraffic", endpoints.model("m"), 1.0, 1)))
        first_host = json.loads(runtime_client.invoke_endpoint(
            EndpointName=name, Body=b"{}", ContentType="application/json")["Body"].read())["host"]
        (first,) = instance_ids(endpoint_url, name)
        (container,) = engine.containers.list(filters={"label": [f"smemu.name={name}",
                                                                  f"smemu.instance={first}"]})

        container.kill()  # SIGKILL: the model server dies without a word
        second_host, errors = invoke_until_recovered(runtime_client, name, first_host)
        assert errors <= {"ServiceUnavailable", "ModelError"}, errors  # AWS's answers while it is replaced
        (second,) = instance_ids(endpoint_url, name)
        assert second != first
        described = sagemaker_client.describe_endpoint(EndpointName=name)
        assert described["EndpointStatus"] == "InService"
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
        assert engine.containers.list(all=True, filters={"label": f"smemu.instance={first}"}) == []
        events = [e["Message"] for e in fleet(endpoint_url, name)["Events"]]
        assert events[:2] == [
            (f"instance {first} of variant AllTraffic failed its health check: its primary container exited with "
             "code 137. Replacing it."),
            f"instance {second} of variant AllTraffic replaced instance {first} and is InService.",
        ]
        group = f"/aws/sagemaker/Endpoints/{name}"

        def stream_lines(instance: str) -> list[str]:
            found = logs_client.get_log_events(logGroupName=group, logStreamName=f"AllTraffic/{instance}",
                                               startFromHead=True)["events"]
            return [e["message"] for e in found]

        assert f"[sagemaker-emulator] {events[0]}" in stream_lines(first)
        assert f"[sagemaker-emulator] {events[1]}" in stream_lines(second)

        # A model server that still runs but no longer answers /ping is replaced too.
        runtime_client.invoke_endpoint(EndpointName=name, Body=b'{"ping_fail": true}', ContentType="application/json")
        third_host, _errors = invoke_until_recovered(runtime_client, name, second_host)
        (third,) = instance_ids(endpoint_url, name)
        assert third not in (first, second) and third_host not in (first_host, second_host)
        message = fleet(endpoint_url, name)["Events"][2]["Message"]
        assert message.startswith(f"instance {second} of variant AllTraffic failed its health check: its primary "
                                  "container did not answer GET /ping with 200 in 3 checks in a row")
        assert "HTTP 503" in message
