"""A front process's request handling, driven through its asyncio protocols with fake transports.

No sockets and no processes: bytes go into ``ClientConnection.data_received`` as a client's
would, what the front writes to the container and to the client is captured, and container
answers are fed back through ``UpstreamConnection.data_received``. The real thing (processes,
sockets, containers) is tests/integration/test_edge.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.config import Settings
from emulator.edge.connection import ClientConnection
from emulator.edge.front import Front
from emulator.edge.supervisor import invoke_header_rules
from emulator.edge.upstream import UpstreamConnection
from emulator.hosting.data_plane import FORWARD, SERVE_DIRECT, SERVE_MULTI_MODEL, SERVE_SINGLE

AUTH = b"AWS4-HMAC-SHA256 Credential=AK/20260101/eu-west-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0"


class FakeTransport:
    """Collects what a protocol writes; remembers whether it was closed or paused."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def take(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data


def variant(
    name: str, serve: str, containers: int = 1, instances: int = 1, weight: float = 1.0, port: int = 9000
) -> dict[str, Any]:
    return {
        "name": name,
        "weight": weight,
        "serve": serve,
        "instances": [
            {
                "id": f"i-{name}-{i}",
                "containers": [
                    {"hostname": "primary" if containers == 1 else f"c{c}", "container_id": f"{name}-{i}-{c}",
                     "host": "127.0.0.1", "port": port + 10 * i + c}
                    for c in range(containers)
                ],
            }
            for i in range(instances)
        ],
    }


class Harness:
    """A front with a routing table, one client connection, and fake container connections."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        hello = {"settings": Settings(home=tmp_path, **settings), "index": 0, "spool_dir": str(tmp_path),
                 "header_rules": invoke_header_rules(), "control_path": str(tmp_path / "control.sock")}
        self.front = Front(self.loop, hello, channel_out=-1)
        self.sent: list[tuple[Any, ...]] = []
        self.front.send = self.sent.append  # type: ignore[method-assign]
        self.forwarded: list[tuple[Any, bytes | None]] = []
        """Requests handed to the control process, with the spooled body's bytes (if spooled)."""
        self.front.forwarder.forward = self._forward  # type: ignore[method-assign]
        self.upstreams: dict[int, tuple[UpstreamConnection, FakeTransport]] = {}
        self.client = FakeTransport()
        self.conn = ClientConnection(self.front)
        self.conn.connection_made(self.client)  # type: ignore[arg-type]

    def _forward(self, request: Any, conn: ClientConnection) -> None:
        """Stands in for the relay: records the request, answers nothing, frees the connection."""
        spooled = request.spool.read() if request.spool is not None else None
        self.forwarded.append((request, spooled))
        conn.finish(request, True)

    def publish(self, version: int, routes: dict[str, dict[str, Any]]) -> None:
        self.front.received(("routes", version, routes))
        for address in {c["port"] for r in routes.values() for v in r["variants"] for i in v["instances"]
                        for c in i["containers"]}:
            pool = self.front.pool(("127.0.0.1", address))
            if address not in self.upstreams:
                upstream, transport = UpstreamConnection(pool), FakeTransport()
                upstream.connection_made(transport)  # type: ignore[arg-type]
                pool.release(upstream)
                self.upstreams[address] = (upstream, transport)

    def invoke(self, name: str = "ep", body: bytes = b'{"x": 1}', headers: dict[str, str] | None = None,
               auth: bytes = AUTH, path: str | None = None) -> None:
        lines = [f"POST {path or f'/endpoints/{name}/invocations'} HTTP/1.1".encode(), b"Host: localhost:4570",
                 b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
        if auth:
            lines.append(b"Authorization: " + auth)
        lines.extend(f"{k}: {v}".encode() for k, v in (headers or {}).items())
        self.conn.data_received(b"\r\n".join(lines) + b"\r\n\r\n" + body)

    def container_request(self) -> tuple[int, bytes]:
        """The one container that was sent a request, and the request."""
        found = [(port, t.take()) for port, (_u, t) in self.upstreams.items() if t.written]
        assert len(found) == 1, found
        return found[0]

    def answer(self, port: int, response: bytes) -> None:
        self.upstreams[port][0].data_received(response)

    def client_response(self) -> tuple[int, dict[str, str], bytes]:
        data = self.client.take()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    made.publish(1, {"ep": {"id": 7, "name": "Ep", "variants": [variant("AllTraffic", SERVE_SINGLE)]}})
    yield made
    made.loop.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Amzn-SageMaker-Custom-Attributes: c=1\r\n" \
     b"Content-Length: 7\r\n\r\n{\"y\":2}"


def test_a_single_container_invocation_is_served_with_sagemakers_headers(harness: Harness) -> None:
    harness.invoke(headers={"Accept": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "a=b",
                            "X-Amzn-SageMaker-Inference-Id": "inf-1"})
    assert harness.forwarded == []
    port, request = harness.container_request()
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /invocations HTTP/1.1\r\n") and body == b'{"x": 1}'
    for line in (b"Content-Type: application/json", b"Accept: application/json", b"Content-Length: 8",
                 b"X-Amzn-SageMaker-Custom-Attributes: a=b", b"X-Amzn-SageMaker-Inference-Id: inf-1"):
        assert line in head.split(b"\r\n")
    assert b"authorization" not in head.lower()  # the client's credentials never reach a container
    harness.answer(port, OK)
    status, headers, body = harness.client_response()
    assert (status, body) == (200, b'{"y":2}')
    assert headers["content-type"] == "application/json"
    assert headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert headers["x-amzn-sagemaker-custom-attributes"] == "c=1"
    assert len(headers["x-amzn-requestid"]) == 36


def test_keep_alive_requests_reuse_the_container_connection(harness: Harness) -> None:
    for _ in range(3):
        harness.invoke()
        port, _request = harness.container_request()
        harness.answer(port, OK)
        assert harness.client_response()[0] == 200
    assert len(harness.upstreams) == 1 and not harness.client.closed


@pytest.mark.parametrize(
    ("case", "invoke"),
    [
        ("unknown endpoint", {"name": "other"}),
        ("unsigned", {"auth": b""}),
        ("signed for another service", {"auth": AUTH.replace(b"/sagemaker/", b"/s3/")}),
        ("unknown variant", {"headers": {"X-Amzn-SageMaker-Target-Variant": "nope"}}),
        ("hostname on a single-container endpoint", {"headers": {"X-Amzn-SageMaker-Target-Container-Hostname": "a"}}),
        ("target model on a single-model endpoint", {"headers": {"X-Amzn-SageMaker-Target-Model": "m.tar.gz"}}),
        ("custom attributes too long", {"headers": {"X-Amzn-SageMaker-Custom-Attributes": "x" * 1025}}),
        ("inference id breaks its pattern", {"headers": {"X-Amzn-SageMaker-Inference-Id": "a\tb"}}),
        ("a header the fast path does not serve", {"headers": {"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"}}),
        ("empty body", {"body": b""}),
        ("streaming operation", {"path": "/endpoints/ep/invocations-response-stream"}),
        ("asynchronous operation", {"path": "/endpoints/ep/async-invocations"}),
        ("escaped name", {"path": "/endpoints/e%70/invocations"}),
    ],
)
def test_what_the_control_process_must_answer_is_forwarded_untouched(
    harness: Harness, case: str, invoke: dict[str, Any]
) -> None:
    harness.invoke(**invoke)
    assert len(harness.forwarded) == 1, case
    assert all(not t.written for _u, t in harness.upstreams.values())


def test_variants_a_front_does_not_serve_are_forwarded(tmp_path: Path) -> None:
    made = Harness(tmp_path)
    made.publish(1, {"ep": {"id": 1, "name": "ep", "variants": [variant("serial", FORWARD, containers=2)]}})
    made.invoke()
    assert len(made.forwarded) == 1


def test_direct_invocation_reaches_the_named_container(tmp_path: Path) -> None:
    made = Harness(tmp_path)
    made.publish(1, {"ep": {"id": 1, "name": "ep", "variants": [variant("v", SERVE_DIRECT, containers=2)]}})
    made.invoke(headers={"X-Amzn-SageMaker-Target-Container-Hostname": "c1"})
    port, _request = made.container_request()
    assert port == 9001
    made.answer(port, OK)
    assert made.client_response()[0] == 200
    made.invoke(headers={"X-Amzn-SageMaker-Target-Container-Hostname": "c9"})
    made.invoke()  # Direct without a hostname: the control process words the error
    assert len(made.forwarded) == 2


def test_weights_and_target_variant(tmp_path: Path) -> None:
    made = Harness(tmp_path)
    made.publish(1, {"ep": {"id": 1, "name": "ep", "variants": [
        variant("a", SERVE_SINGLE, weight=3.0, port=9000), variant("b", SERVE_SINGLE, weight=1.0, port=9100),
        variant("z", SERVE_SINGLE, weight=0.0, port=9200)]}})
    route = made.front.table.routes["ep"]
    drawn = [route.choose_variant().name for _ in range(4000)]  # type: ignore[union-attr]
    assert 2800 <= drawn.count("a") <= 3200 and "z" not in drawn  # 3:1, sd ~27
    made.invoke(headers={"X-Amzn-SageMaker-Target-Variant": "z"})  # weight 0, still reachable by name
    port, _request = made.container_request()
    assert port == 9200


def test_a_failing_container_is_a_model_error_in_sagemakers_words(harness: Harness) -> None:
    harness.invoke()
    port, _request = harness.container_request()
    harness.answer(port, b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom")
    status, headers, body = harness.client_response()
    error = json.loads(body)
    assert (status, headers["x-amzn-errortype"], error["__type"]) == (424, "ModelError", "ModelError")
    assert (error["OriginalStatusCode"], error["OriginalMessage"]) == (500, "boom")
    assert error["Message"].startswith('Received server error (500) from primary with message "boom". See https://'
                                       "eu-west-1.console.aws.amazon.com/cloudwatch/")
    assert error["LogStreamArn"] == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/Ep"


def test_a_container_that_closes_the_connection_is_a_model_error(harness: Harness) -> None:
    harness.invoke()
    port, _request = harness.container_request()
    upstream, _transport = harness.upstreams[port]
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    upstream.connection_lost(None)
    status, _headers, body = harness.client_response()
    assert status == 424 and "could not load the entire response body" in json.loads(body)["Message"]


def test_a_multi_model_target_is_served_only_where_it_is_loaded(tmp_path: Path) -> None:
    made = Harness(tmp_path)
    made.publish(1, {"ep": {"id": 1, "name": "ep", "variants": [variant("v", SERVE_MULTI_MODEL, instances=2)]}})
    made.invoke(headers={"X-Amzn-SageMaker-Target-Model": "m1.tar.gz"})
    assert len(made.forwarded) == 1  # cold: the control process downloads and loads it
    made.front.received(("placement", "v-1-0", "m1.tar.gz", "abc123", True))
    made.invoke(headers={"X-Amzn-SageMaker-Target-Model": "m1.tar.gz"})
    port, request = made.container_request()
    assert port == 9010 and request.startswith(b"POST /models/abc123/invoke HTTP/1.1\r\n")
    assert b"X-Amzn-SageMaker-Target-Model: m1.tar.gz" in request
    made.answer(port, OK)
    assert made.client_response()[0] == 200
    assert [m for m in made.sent if m[0] == "hits"] == []  # reported in a batch...
    made.front.received(("flush", 5))  # ...or at once when the control process asks
    hits = [m for m in made.sent if m[0] in ("hits", "flushed")]
    assert hits[0][0] == "hits" and hits[0][1][0][:3] == ("v-1-0", "m1.tar.gz", 1) and hits[1] == ("flushed", 5)
    made.invoke(headers={"X-Amzn-SageMaker-Target-Model": "m1.tar.gz"})
    port, _request = made.container_request()
    made.answer(port, OK)
    assert made.client_response()[0] == 200
    made.loop.run_until_complete(asyncio.sleep(0.3))  # the batch goes out on its own, too
    assert [m[1][0][2] for m in made.sent if m[0] == "hits"] == [1, 1]
    # The container lost it (404): not run, so the control process gets the request to load it again.
    made.invoke(headers={"X-Amzn-SageMaker-Target-Model": "m1.tar.gz"})
    port, _request = made.container_request()
    made.answer(port, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert len(made.forwarded) == 2 and made.client.take() == b""
    made.front.received(("placement", "v-1-0", "m1.tar.gz", "abc123", False))
    made.invoke(headers={"X-Amzn-SageMaker-Target-Model": "m1.tar.gz"})
    assert len(made.forwarded) == 3


def test_a_retired_route_drains_before_the_control_process_is_told(harness: Harness) -> None:
    harness.invoke()
    port, _request = harness.container_request()
    harness.publish(2, {"ep": {"id": 8, "name": "Ep", "variants": [variant("AllTraffic", SERVE_SINGLE)]}})
    assert ("applied", 2) in harness.sent
    harness.front.received(("drain", 41, 7))
    assert ("drained", 41) not in harness.sent  # one request still on the old fleet
    harness.answer(port, OK)
    assert ("drained", 41) in harness.sent and harness.client_response()[0] == 200
    harness.front.received(("drain", 42, 8))
    assert ("drained", 42) in harness.sent  # nothing in flight on the new route


def test_header_limit_answers_431_and_closes(tmp_path: Path) -> None:
    made = Harness(tmp_path, max_header_bytes=1024)
    made.invoke(headers={"X-Padding": "p" * 2000})
    status, headers, body = made.client_response()
    assert (status, headers["x-amzn-errortype"]) == (431, "RequestHeaderFieldsTooLarge")
    assert "SMEMU_MAX_HEADER_BYTES" in json.loads(body)["message"] and made.client.closed


def test_a_head_that_never_ends_is_cut_at_the_limit(tmp_path: Path) -> None:
    made = Harness(tmp_path, max_header_bytes=1024)
    made.conn.data_received(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 4096)
    assert made.client_response()[0] == 431 and made.client.closed


def test_declared_bodies_over_the_limit_are_refused_before_they_are_read(tmp_path: Path) -> None:
    made = Harness(tmp_path, max_request_bytes=1000)
    made.conn.data_received(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: SageMaker.ListModels\r\n"
                            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (7 * 1024 * 1024))
    status, headers, body = made.client_response()  # the edge policy's answer, no 100 Continue first
    assert (status, headers["x-amzn-errortype"]) == (413, "RequestEntityTooLargeException")
    assert "SMEMU_MAX_REQUEST_BYTES" in json.loads(body)["message"] and made.client.closed


def test_an_oversize_invocation_is_refused_before_it_is_read(harness: Harness) -> None:
    harness.conn.data_received(b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: localhost\r\nAuthorization: "
                               + AUTH + b"\r\nContent-Length: %d\r\n\r\n" % (6 * 1024 * 1024 + 1))
    status, headers, body = harness.client_response()
    assert (status, headers["x-amzn-errortype"]) == (400, "ValidationError") and "oversize" in body.decode()
    assert harness.forwarded == [] and harness.client.closed


def test_a_foreign_host_is_refused_by_the_edge_policy(harness: Harness) -> None:
    harness.conn.data_received(b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: evil.example\r\nAuthorization: "
                               + AUTH + b"\r\nContent-Length: 2\r\n\r\n{}")
    status, _headers, body = harness.client_response()
    assert status == 403 and b"DNS rebinding" in body
    assert harness.forwarded == [] and all(not t.written for _u, t in harness.upstreams.values())


def test_chunked_bodies_over_the_limit_are_refused_as_they_pass_it(tmp_path: Path) -> None:
    made = Harness(tmp_path, max_request_bytes=1000)
    made.conn.data_received(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: SageMaker.ListModels\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n")
    made.conn.data_received(b"1000\r\n" + b"x" * 4096 + b"\r\n")
    assert made.client.take() == b""
    for _ in range(7):  # past 6 MiB: the policy's limit for a body of that size
        made.conn.data_received(b"100000\r\n" + b"x" * (1024 * 1024) + b"\r\n")
    status, headers, _body = made.client_response()
    assert (status, headers["x-amzn-errortype"]) == (413, "RequestEntityTooLargeException") and made.client.closed


def test_s3_bodies_have_s3s_five_gib_limit_and_error(tmp_path: Path) -> None:
    made = Harness(tmp_path, max_request_bytes=1000)
    s3_auth = AUTH.replace(b"/sagemaker/", b"/s3/")
    made.conn.data_received(b"PUT /bucket/key HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + s3_auth
                            + b"\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
    assert len(made.forwarded) == 1 and made.forwarded[0][0].size == 5000  # S3 is not held to the general limit
    made.conn.data_received(b"PUT /bucket/key HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + s3_auth
                            + b"\r\nContent-Length: " + str(5 * 1024**3 + 1).encode() + b"\r\n\r\n")
    status, _headers, body = made.client_response()
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in body and b"<MaxSizeAllowed>5368709120<" in body


def test_expect_100_continue_is_answered_by_the_front(harness: Harness) -> None:
    harness.conn.data_received(b"PUT /bucket/key HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert harness.client.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    harness.conn.data_received(b"abc")
    assert harness.forwarded[0][0].size == 3 and harness.forwarded[0][0].chunks == [b"abc"]


def test_large_bodies_are_spooled_to_a_file(harness: Harness, tmp_path: Path) -> None:
    body = b"y" * (3 * 1024 * 1024)
    harness.conn.data_received(b"PUT /b/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(body))
    for start in range(0, len(body), 65536):
        harness.conn.data_received(body[start : start + 65536])
    ((request, spooled),) = harness.forwarded
    assert request.size == len(body) and request.chunks == [] and spooled == body


@pytest.mark.parametrize(
    ("stage", "data", "setting"),
    [
        ("head", b"GET / HTTP/1.1\r\nHost: localhost\r\n", "SMEMU_REQUEST_HEADER_TIMEOUT_SECONDS"),
        ("body", b"PUT /b/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc", "SMEMU_REQUEST_BODY_TIMEOUT_SECONDS"),
    ],
)
def test_slow_clients_get_408_and_are_disconnected(tmp_path: Path, stage: str, data: bytes, setting: str) -> None:
    made = Harness(tmp_path, request_header_timeout_seconds=5, request_body_timeout_seconds=5)
    made.conn.data_received(data)
    now = made.loop.time()
    made.conn.check_timeouts(now + 4)
    assert made.client.take() == b"" and not made.client.closed
    made.conn.check_timeouts(now + 6)
    status, _headers, body = made.client_response()
    assert status == 408 and setting in json.loads(body)["message"] and made.client.closed


def test_idle_keep_alive_connections_are_closed(harness: Harness) -> None:
    harness.invoke()
    port, _request = harness.container_request()
    harness.answer(port, OK)
    harness.client.take()
    now = harness.loop.time()
    harness.conn.check_timeouts(now + 70)
    assert not harness.client.closed
    harness.conn.check_timeouts(now + 80)
    assert harness.client.closed


def test_malformed_requests_get_400(harness: Harness) -> None:
    harness.conn.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    assert harness.client_response()[0] == 400 and harness.client.closed


def test_pipelined_requests_are_answered_in_order(harness: Harness) -> None:
    one = (b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + AUTH
           + b"\r\nContent-Length: 1\r\n\r\n")
    harness.conn.data_received(one + b"1" + one + b"2")
    port, first = harness.container_request()
    assert first.endswith(b"\r\n\r\n1")
    harness.answer(port, OK)
    port, second = harness.container_request()  # sent only once the first was answered
    assert second.endswith(b"\r\n\r\n2")
    harness.answer(port, OK)
    data = harness.client.take()
    assert data.count(b"HTTP/1.1 200 OK") == 2


def test_invocations_are_reported_for_the_control_processs_metrics(harness: Harness) -> None:
    harness.invoke()
    port, _request = harness.container_request()
    harness.answer(port, OK)
    harness.invoke(headers={"X-Amzn-SageMaker-Target-Variant": "AllTraffic"})
    port, _request = harness.container_request()
    harness.answer(port, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    assert harness.client.take().count(b"HTTP/1.1 ") == 2 and all(m[0] != "invocations" for m in harness.sent)
    harness.front.received(("flush", 9))
    ((_, batches),) = [m for m in harness.sent if m[0] == "invocations"]
    ((region, endpoint, variant, count, successes, total, low, high, client, server),) = batches
    assert (region, endpoint, variant, count, successes, client, server) == ("eu-west-1", "Ep", "AllTraffic", 2, 1, 0, 1)
    assert 0 <= low == high == total < 5


def test_reported_invocations_become_the_same_metrics_as_served_ones() -> None:
    from emulator.hosting.invoke import InvocationMetrics
    from emulator.hosting.multi_model_metrics import MetricsPublisher

    publisher = MetricsPublisher(lambda region: None)
    metrics = InvocationMetrics(publisher)
    metrics.record("us-east-1", "ep", "v", 0.002, None)
    metrics.merge([("us-east-1", "ep", "v", 3, 2, 0.010, 0.004, 0.006, 1, 0)])
    pending = publisher._pending
    assert pending[("us-east-1", "ep", "v", "Invocations", "None")] == [4.0, 4.0, 1.0, 1.0]
    assert pending[("us-east-1", "ep", "v", "ModelLatency", "Microseconds")] == pytest.approx(
        [3.0, 12000.0, 2000.0, 6000.0])
    assert pending[("us-east-1", "ep", "v", "Invocation4XXErrors", "None")] == [1.0, 1.0, 1.0, 1.0]
    assert ("us-east-1", "ep", "v", "Invocation5XXErrors", "None") not in pending
    publisher.stop()


def test_a_relay_that_ended_while_its_client_was_slow_does_not_stall_the_next_one(harness: Harness) -> None:
    from emulator.edge.forward import ControlConnection

    upstream, transport = ControlConnection(harness.front.forwarder), FakeTransport()
    upstream.connection_made(transport)  # type: ignore[arg-type]
    request = harness.conn  # the client connection the answer is relayed to
    first = _forwarded_request(harness)
    upstream.begin(first, request, reused=False, retried=False)
    request.write_paused = True  # the client has not taken what was written yet
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert transport.paused  # back-pressure: the control process waits for the client...
    second = _forwarded_request(harness)
    upstream.begin(second, request, reused=True, retried=False)
    assert not transport.paused  # ...but the connection's next answer is read again


def _forwarded_request(harness: Harness) -> Any:
    harness.conn.data_received(b"GET /bucket/key HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return harness.forwarded[-1][0]
