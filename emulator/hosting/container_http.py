"""HTTP/1.1 to model containers: a keep-alive connection pool with a lean client.

The invocation path is hot, and ``http.client`` spends more time parsing a response's
headers (through the ``email`` package) than loopback takes to carry it. This client does
only what the serving contract needs: one ``sendall`` of the request (headers and body
together, TCP_NODELAY on, so no Nagle stall), then the status line, headers, and a body by
Content-Length, chunked encoding, or connection close. The whole exchange has one deadline.

Streaming responses (InvokeEndpointWithResponseStream) are read incrementally with
``http.client`` on a connection of their own (:func:`open_stream`).
"""

from __future__ import annotations

import http.client
import socket
import time
from collections import deque
from dataclasses import dataclass

_RECV = 65536
_MAX_HEAD = 64 * 1024


class ContainerUnreachable(Exception):
    """The container refused, reset or closed the connection before answering completely."""


class Headers(dict[str, str]):
    """Response headers with lower-cased names; ``get`` ignores the case of its key."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class ContainerResponse:
    """A container's complete answer; ``truncated`` when the body exceeded ``max_body``."""

    status: int
    headers: Headers
    body: bytes
    truncated: bool = False


class _Closed(Exception):
    """The peer closed the connection; ``started`` tells whether any answer byte had arrived."""

    def __init__(self, started: bool) -> None:
        super().__init__("the container closed the connection")
        self.started = started


class _Connection:
    """A socket and the bytes received on it but not yet consumed."""

    __slots__ = ("buffer", "received", "sock")

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.received = False
        """Whether any byte of the current answer arrived (then a failure is not retried)."""

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass

    def _fill(self, deadline: float, started: bool) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the container did not answer in time")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(_RECV)
        if not chunk:
            raise _Closed(started or bool(self.buffer))
        self.received = True
        self.buffer += chunk

    def read_until(self, marker: bytes, deadline: float, limit: int, started: bool = True) -> bytes:
        start = 0
        while True:
            found = self.buffer.find(marker, start)
            if found >= 0:
                data = bytes(self.buffer[:found])
                del self.buffer[: found + len(marker)]
                return data
            if len(self.buffer) > limit:
                raise ContainerUnreachable("the container's response headers are too large")
            start = max(0, len(self.buffer) - len(marker) + 1)
            self._fill(deadline, started)

    def read_exact(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            self._fill(deadline, True)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_to_close(self, deadline: float, limit: int) -> bytes:
        try:
            while len(self.buffer) <= limit:
                self._fill(deadline, True)
        except _Closed:
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _request_bytes(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def _read_response(conn: _Connection, deadline: float, max_body: int) -> tuple[ContainerResponse, bool]:
    """The response and whether the connection may be reused."""
    while True:
        head = conn.read_until(b"\r\n\r\n", deadline, _MAX_HEAD, started=False)
        status_line, *lines = head.split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ContainerUnreachable(f"not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        if status != 100:
            break
    headers = Headers()
    for line in lines:
        name, _, value = line.partition(b":")
        key = name.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    connection = (headers.get("connection") or "").lower()
    keep_alive = connection != "close" if parts[0] == b"HTTP/1.1" else connection == "keep-alive"
    truncated = False
    if status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in (headers.get("transfer-encoding") or "").lower():
        pieces, total = [], 0
        while True:
            size = int(conn.read_until(b"\r\n", deadline, _MAX_HEAD).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while conn.read_until(b"\r\n", deadline, _MAX_HEAD):
                    pass  # trailers
                break
            pieces.append(conn.read_exact(size, deadline))
            conn.read_exact(2, deadline)
            total += size
            if total > max_body:
                truncated, keep_alive = True, False
                break
        body = b"".join(pieces)
    elif headers.get("content-length") is not None:
        length = int(headers["content-length"])
        if length > max_body:
            body, truncated, keep_alive = conn.read_exact(min(length, max_body + 1), deadline), True, False
        else:
            body = conn.read_exact(length, deadline)
    else:
        body, keep_alive = conn.read_to_close(deadline, max_body), False
        truncated = len(body) > max_body
    return ContainerResponse(status, headers, body, truncated), keep_alive


class ConnectionPool:
    """Keep-alive connections to one container port, reused last-in first-out.

    A connection that sat idle may have been closed by the container; a request that fails
    on a reused connection before any byte of the answer arrived is retried once on a new
    one, which is what every HTTP client pool does (urllib3 included).
    """

    def __init__(self, host: str, port: int, max_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._host_header = f"{host}:{port}"
        self._idle: deque[_Connection] = deque()

    def request(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float,
        max_body: int = 6 * 1024 * 1024,
    ) -> ContainerResponse:
        """One exchange within ``timeout`` seconds.

        Raises ``TimeoutError`` (the container is slow) or :class:`ContainerUnreachable`.
        """
        deadline = time.monotonic() + timeout
        payload = _request_bytes(method, path, self._host_header, headers, body)
        for attempt in (0, 1):
            reused = True
            try:
                conn = self._idle.pop()
            except IndexError:
                reused = False
                try:
                    conn = _Connection(self.host, self.port, max(0.001, deadline - time.monotonic()))
                except TimeoutError:
                    raise
                except OSError as exc:
                    raise ContainerUnreachable(str(exc) or type(exc).__name__) from exc
            conn.received = False
            try:
                conn.sock.sendall(payload)
                response, keep_alive = _read_response(conn, deadline, max_body)
            except TimeoutError:
                conn.close()
                raise
            except (_Closed, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if reused and attempt == 0 and not conn.received:
                    continue  # a keep-alive connection the container had closed while idle
                raise ContainerUnreachable(
                    "the container closed the connection without a complete answer"
                ) from exc
            except (OSError, ValueError) as exc:
                conn.close()
                raise ContainerUnreachable(str(exc) or type(exc).__name__) from exc
            if keep_alive and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def idle(self) -> int:
        """Connections waiting for reuse."""
        return len(self._idle)

    def close(self) -> None:
        """Close every idle connection (the container is going away)."""
        while True:
            try:
                self._idle.pop().close()
            except IndexError:
                break


def open_stream(
    host: str, port: int, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """A request on a connection of its own whose response the caller reads incrementally.

    Raises ``TimeoutError`` or :class:`ContainerUnreachable`; the caller closes the connection.
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.request(method, path, body=body, headers=headers)
        return conn, conn.getresponse()
    except TimeoutError:
        conn.close()
        raise
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise ContainerUnreachable(str(exc) or type(exc).__name__) from exc
