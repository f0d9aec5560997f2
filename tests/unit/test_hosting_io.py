"""Model archives, the connection pool and routing choices, against real sockets and files."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from emulator.hosting.container_http import ConnectionPool, ContainerUnreachable
from emulator.hosting.model_data import (
    ModelDataError,
    UnsafeArchive,
    prefix_key_problem,
    safe_extract,
    stage_model_data,
)
from emulator.hosting.plan import ModelData, VariantPlan
from emulator.hosting.routing import EndpointRoute, VariantRoute
from tests.unit.test_hosting_fakes import FakeS3


def _archive(path: Path, *members: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            if member.isreg():
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
            else:
                archive.addfile(member)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (_member("/etc/cron.d/evil"), "absolute path"),
        (_member("../outside"), "'..' path component"),
        (_member("a/../../outside"), "'..' path component"),
        (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link to an absolute path"),
        (_member("d/link", tarfile.SYMTYPE, "../../x"), "pointing outside the model folder"),
        (_member("hard", tarfile.LNKTYPE, "../x"), "hard link pointing outside"),
        (_member("dev", tarfile.CHRTYPE), "device or FIFO"),
        (_member("fifo", tarfile.FIFOTYPE), "device or FIFO"),
    ],
)
def test_unsafe_archives_are_refused_whole(tmp_path: Path, member: tarfile.TarInfo, problem: str) -> None:
    archive = _archive(tmp_path / "model.tar.gz", _member("fine.txt"), member)
    target = tmp_path / "model"
    with pytest.raises(UnsafeArchive, match=problem):
        safe_extract(archive, target)
    assert not (target / "fine.txt").exists()


def test_safe_archive_with_inner_links_extracts(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "m.tar.gz",
        _member("code/inference.py"),
        _member("weights/w.bin"),
        _member("code/w", tarfile.SYMTYPE, "../weights/w.bin"),
    )
    safe_extract(archive, tmp_path / "model")
    assert (tmp_path / "model" / "code" / "w").read_bytes() == b"x"


def test_not_a_tar_is_a_model_data_error(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"not a tar at all")
    with pytest.raises(ModelDataError, match="not a valid tar archive"):
        safe_extract(tmp_path / "junk", tmp_path / "model")


def test_uncompressed_prefix_and_single_object(tmp_path: Path) -> None:
    s3 = FakeS3()
    s3.objects.update({("b", "p/config.json"): b"{}", ("b", "p/weights/part1"): b"1", ("b", "other"): b"no"})
    stage_model_data(s3, ModelData("prefix", "s3://b/p/"), tmp_path / "a", "container_1", 10)
    assert sorted(
        p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*") if p.is_file()
    ) == ["config.json", "weights/part1"]
    stage_model_data(s3, ModelData("object", "s3://b/p/config.json"), tmp_path / "b", "container_1", 10)
    assert (tmp_path / "b" / "config.json").read_bytes() == b"{}"
    s3.objects[("b", "p/weights")] = b"clash"
    with pytest.raises(ModelDataError, match="both a file and a folder"):
        stage_model_data(s3, ModelData("prefix", "s3://b/p/"), tmp_path / "c", "container_1", 10)
    assert prefix_key_problem("dir/") == "is a 0-byte folder object"
    assert prefix_key_problem("a/../b") is not None and prefix_key_problem("a/b") is None


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: ClassVar[set[int]] = set()

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _KeepAlive.connections.add(id(self.connection))
        body = b"ok"
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body)


@pytest.fixture()
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pool_reuses_connections_with_nodelay(server: ThreadingHTTPServer) -> None:
    _KeepAlive.connections.clear()
    pool = ConnectionPool("127.0.0.1", server.server_address[1])
    for _ in range(20):
        assert pool.request("POST", "/invocations", b"x", {}, 5).body == b"ok"
    assert len(_KeepAlive.connections) == 1
    conn = pool._idle[0]
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_pool_retries_a_stale_connection_once(server: ThreadingHTTPServer) -> None:
    pool = ConnectionPool("127.0.0.1", server.server_address[1])
    pool.request("POST", "/invocations", b"x", {}, 5)
    pool._idle[0].sock.shutdown(socket.SHUT_RDWR)  # as if the container closed it while idle
    assert pool.request("POST", "/invocations", b"x", {}, 5).body == b"ok"
    refused = ConnectionPool("127.0.0.1", 1)
    with pytest.raises(ContainerUnreachable):
        refused.request("POST", "/invocations", b"x", {}, 1)


def _variant(name: str, weight: float) -> VariantRoute:
    plan = VariantPlan(
        name=name,
        model_name="m",
        weight=weight,
        instance_count=1,
        instance_type=None,
        mode="Single",
        containers=(),
    )
    return VariantRoute(plan=plan, weight=weight, instances=())


def test_weighted_choice_is_proportional_and_skips_zero_weights() -> None:
    route = EndpointRoute("ep", [_variant("a", 2.0), _variant("zero", 0.0), _variant("b", 1.0)])
    picks = Counter(route.choose_variant(i / 3000).name for i in range(3000))  # type: ignore[union-attr]
    assert picks == {"a": 2000, "b": 1000}
    assert EndpointRoute("ep", [_variant("z", 0.0)]).choose_variant() is None


def test_drain_waits_for_requests_in_flight() -> None:
    route = EndpointRoute("ep", [])
    route.enter()
    assert route.drain(0.05) is False
    threading.Timer(0.05, route.leave).start()
    assert route.drain(5) is True


class _Canned:
    """A one-connection-at-a-time socket server that answers every request with fixed bytes."""

    def __init__(self, answer: bytes, close: bool = False, delay: float = 0.0) -> None:
        self.answer, self.close, self.delay = answer, close, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import time

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                while True:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = int(
                        next(
                            (
                                line.split(b":")[1]
                                for line in head.split(b"\r\n")
                                if line.lower().startswith(b"content-length")
                            ),
                            b"0",
                        )
                    )
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    time.sleep(self.delay)
                    conn.sendall(self.answer)
                    if self.close:
                        break


@pytest.mark.parametrize(
    ("answer", "body", "reused"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\nContent-Length: 3\r\n\r\na,b", b"a,b", True),
        (
            (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"2\r\nab\r\n1;ext=1\r\nc\r\n0\r\nTrailer: x\r\n\r\n"
            ),
            b"abc",
            True,
        ),
        (b"HTTP/1.1 204 No Content\r\nContent-Type: text/csv\r\n\r\n", b"", True),
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/csv\r\n\r\nuntil-close", b"until-close", False),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
            False,
        ),
    ],
)
def test_lean_client_reads_every_framing(answer: bytes, body: bytes, reused: bool) -> None:
    server = _Canned(answer, close=not reused)
    pool = ConnectionPool("127.0.0.1", server.port)
    for _ in range(3):
        response = pool.request("POST", "/invocations", b"x", {"Accept": "text/csv"}, 5)
        assert response.body == body
        assert response.headers.get("Content-Type") == "text/csv"
    assert server.accepted == (1 if reused else 3)


def test_lean_client_limits_body_and_time() -> None:
    big = _Canned(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100)
    response = ConnectionPool("127.0.0.1", big.port).request("POST", "/", b"", {}, 5, max_body=10)
    assert response.truncated and len(response.body) == 11
    slow = _Canned(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", delay=1.0)
    with pytest.raises(TimeoutError):
        ConnectionPool("127.0.0.1", slow.port).request("POST", "/", b"", {}, 0.2)
    garbage = _Canned(b"SSH-2.0-nope\r\n\r\n")
    with pytest.raises(ContainerUnreachable, match="not an HTTP response"):
        ConnectionPool("127.0.0.1", garbage.port).request("POST", "/", b"", {}, 5)
