"""The edge's data plane for real: front processes, the private socket, limits, supervision.

Most tests use an emulator of their own (``smemu serve`` as a child process, or an
EmulatorServer with tight limits), because they kill processes or tune limits; the
invocation tests use the session's emulator with real containers.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from emulator.config import load_settings
from emulator.hosting.multi_model import model_name
from emulator.server import EmulatorServer
from tests.conftest import free_port, make_client, unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import Endpoints, docker_client, model_archive, poll

ROOT = Path(__file__).resolve().parents[2]


def health(port: int) -> dict[str, Any]:
    """GET /_smemu/health on a fresh connection (raises when nothing answers in 5 s)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/_smemu/health")
        response = conn.getresponse()
        assert response.status == 200
        return dict(json.loads(response.read()))
    finally:
        conn.close()


def served_by_fronts(port: int) -> int:
    return sum(front["served"] for front in health(port)["data_plane"]["fronts"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture()
def own_emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    """An emulator with tight transport limits, no container gateway (no containers here)."""
    settings = load_settings({}).with_overrides(
        home=tmp_path / "home", port=free_port(), host="127.0.0.1", container_gateway=False, edge_workers=2,
        request_header_timeout_seconds=2.0, request_body_timeout_seconds=2.0, max_header_bytes=8192,
        max_request_bytes=1024 * 1024,
    )
    server = EmulatorServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def test_120_stalled_uploads_leave_health_and_the_control_plane_answering(own_emulator: EmulatorServer) -> None:
    port = own_emulator.port
    stalled = []
    try:
        for n in range(120):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"PUT /bucket/key-%d HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500000\r\n\r\n" % n
                         + b"x" * 1000)
            stalled.append(sock)
        started = time.monotonic()
        assert health(port)["status"] == "ok"
        assert make_client("sagemaker", f"http://127.0.0.1:{port}").list_endpoints()["Endpoints"] == []
        assert time.monotonic() - started < 5
        # Their slowness is theirs alone: each gets 408 once its body stalls past the limit.
        stalled[0].settimeout(10)
        answer = stalled[0].recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ") and b"SMEMU_REQUEST_BODY_TIMEOUT_SECONDS" in answer
    finally:
        for sock in stalled:
            sock.close()


def test_a_slow_head_gets_408_and_an_oversized_one_431(own_emulator: EmulatorServer) -> None:
    port = own_emulator.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"GET /_smemu/health HTTP/1.1\r\nHost: localhost\r\n")
        answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ") and b"SMEMU_REQUEST_HEADER_TIMEOUT_SECONDS" in answer
        assert slow.recv(4096) == b""  # and the connection is closed
    with socket.create_connection(("127.0.0.1", port), timeout=10) as large:
        large.sendall(b"GET /_smemu/health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 10000 + b"\r\n\r\n")
        answer = large.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431 ") and b"SMEMU_MAX_HEADER_BYTES" in answer


def test_bodies_over_the_limit_are_refused_before_they_are_sent(own_emulator: EmulatorServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", own_emulator.port, timeout=10)
    conn.putrequest("POST", "/")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.putheader("X-Amz-Target", "SageMaker.ListEndpoints")
    conn.endheaders()
    response = conn.getresponse()  # answered without the 50 MB being sent
    assert response.status == 413 and response.getheader("x-amzn-ErrorType") == "RequestEntityTooLargeException"
    assert "SMEMU_MAX_REQUEST_BYTES" in json.loads(response.read())["message"]
    conn.close()
    # S3 keeps AWS's own limit of 5 GiB per PUT, and its own error.
    s3 = make_client("s3", f"http://127.0.0.1:{own_emulator.port}")
    s3.create_bucket(Bucket="limits")
    two_mib = b"z" * (2 * 1024 * 1024)
    s3.put_object(Bucket="limits", Key="two-mib", Body=two_mib)
    assert s3.get_object(Bucket="limits", Key="two-mib")["Body"].read() == two_mib


def test_the_fronts_die_with_the_emulator_even_on_kill_9(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SMEMU_HOME": str(tmp_path / "home"), "SMEMU_PORT": str(port),
           "SMEMU_CONTAINER_GATEWAY": "0", "SMEMU_EDGE_WORKERS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        fronts = poll(lambda: _front_pids(port), 60, 0.2, "the emulator and its fronts to answer")
        assert len(fronts) == 2 and all(alive(pid) for pid in fronts)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        poll(lambda: not any(alive(pid) for pid in fronts), 10, 0.05, "the fronts to exit")
        with socket.socket() as sock:  # and the port is free again
            sock.bind(("127.0.0.1", port))
    finally:
        if process.poll() is None:
            process.kill()


def _front_pids(port: int) -> list[int] | None:
    try:
        return [front["pid"] for front in health(port)["data_plane"]["fronts"]]
    except OSError:
        return None


def test_a_front_that_dies_is_replaced_and_a_second_emulator_cannot_share_the_port(
    own_emulator: EmulatorServer, tmp_path: Path
) -> None:
    port = own_emulator.port
    before = {front["index"]: front["pid"] for front in health(port)["data_plane"]["fronts"]}
    os.kill(before[0], signal.SIGKILL)

    def replaced() -> bool:
        fronts = health(port)["data_plane"]["fronts"]
        return all(f["alive"] for f in fronts) and fronts[0]["pid"] != before[0]

    poll(replaced, 30, 0.1, "front 0 to be started again")
    for _ in range(20):  # every connection is answered again, whichever front takes it
        assert health(port)["status"] == "ok"
    second = load_settings({}).with_overrides(home=tmp_path / "second", port=port, host="127.0.0.1",
                                              container_gateway=False)
    with pytest.raises(OSError):
        EmulatorServer(second).start()


def test_without_fronts_the_control_process_serves_the_edge_port_itself(tmp_path: Path) -> None:
    settings = load_settings({}).with_overrides(home=tmp_path / "home", port=free_port(), host="127.0.0.1",
                                                container_gateway=False, edge_workers=0)
    server = EmulatorServer(settings).start()
    try:
        assert "data_plane" not in health(server.port) and server.supervisor is None
        assert make_client("sagemaker", f"http://127.0.0.1:{server.port}").list_endpoints()["Endpoints"] == []
    finally:
        server.stop()


# -- invocations served by the fronts (the session's emulator, real containers) ----------------


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    return docker_client()


@pytest.fixture()
def endpoints(sagemaker_client: Any, s3_client: Any, bucket: str, engine: docker.DockerClient,
              role_arn: str) -> Iterator[Endpoints]:
    with Endpoints(sagemaker_client, s3_client, bucket, build_sample_image("serving", client=engine), engine,
                   role_arn) as made:
        yield made


def test_invocations_are_served_by_the_fronts(
    endpoints: Endpoints, runtime_client: Any, emulator: Any
) -> None:
    name = endpoints.endpoint(endpoints.config(("AllTraffic", endpoints.model("fronted"), 1.0, 2)))
    before = served_by_fronts(emulator.port)
    hosts = set()
    for _ in range(40):
        answer = runtime_client.invoke_endpoint(EndpointName=name, Body=b'{"n": 1}', ContentType="application/json")
        echo = json.loads(answer["Body"].read())
        assert (echo["model"], answer["InvokedProductionVariant"]) == ("fronted", "AllTraffic")
        hosts.add(echo["host"])
    assert len(hosts) == 2  # round-robin over both instances
    poll(lambda: served_by_fronts(emulator.port) >= before + 40, 10, 0.2, "the fronts' counts")


def test_warm_multi_model_hits_are_served_by_the_fronts_and_counted(
    sagemaker_client: Any, s3_client: Any, bucket: str, runtime_client: Any, emulator: Any,
    engine: docker.DockerClient, role_arn: str,
) -> None:
    prefix = f"s3://{bucket}/{unique_name('mme')}/"
    key = prefix[len(f"s3://{bucket}/"):]
    s3_client.put_object(Bucket=bucket, Key=f"{key}a.tar.gz", Body=model_archive("a"))
    with Endpoints(sagemaker_client, s3_client, bucket, build_sample_image("multi_model", client=engine), engine,
                   role_arn) as made:
        model = made.model(Mode="MultiModel", ModelDataUrl=prefix)
        name = made.endpoint(made.config(("AllTraffic", model, 1.0, 1)))
        cold = json.loads(runtime_client.invoke_endpoint(EndpointName=name, TargetModel="a.tar.gz", Body=b"{}")
                          ["Body"].read())
        assert cold["model"] == model_name("a.tar.gz")
        before = served_by_fronts(emulator.port)
        for _ in range(10):
            runtime_client.invoke_endpoint(EndpointName=name, TargetModel="a.tar.gz", Body=b"{}")["Body"].read()
        poll(lambda: served_by_fronts(emulator.port) >= before + 10, 10, 0.2, "the fronts' counts")
        conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
        conn.request("GET", f"/_smemu/endpoints/{name}/models")
        view = json.loads(conn.getresponse().read())
        assert (view["Stats"]["Hits"], view["Stats"]["Misses"], view["Stats"]["Loads"]) == (10, 1, 1)
