"""One client connection on the edge port: HTTP/1.1 parsing, transport limits, dispatch.

A :class:`ClientConnection` parses requests with httptools, enforces :mod:`.limits` while the
head and body arrive, keeps the body in memory (or, past :data:`SPOOL_BYTES`, in a file
under the spool folder), and hands each complete request to the front's dispatcher: the
invocation fast path answers it from the routing table, anything else is forwarded to the
control process. Requests are answered in order, one at a time; a client that pipelines
more than a few is not read from until it has caught up.

Timeouts are enforced by the front's sweeper (:meth:`ClientConnection.check_timeouts`,
about once a second), so the hot path sets no timer per request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools

from emulator.edge.limits import edge_error
from emulator.gateway.http_policy import INVOKE_MAX_BODY, S3_MAX_BODY, Refusal, refusal, render

if TYPE_CHECKING:
    from emulator.edge.front import Front

log = logging.getLogger(__name__)

SPOOL_BYTES = 1024 * 1024
"""A request body larger than this goes to a file instead of memory."""
MAX_PIPELINED = 8
"""Complete requests queued on one connection before the front stops reading from it."""

_IDLE, _HEAD, _BODY, _DONE = range(4)
_SCOPE_END = b"/aws4_request"
_QUERY_SCOPE = re.compile(rb"X-Amz-Credential=[^&]*?(?:%2F|/)\d{8}(?:%2F|/)[^&%/]+(?:%2F|/)([^&%/]+)", re.IGNORECASE)


class TextHeaders(Mapping[str, str]):
    """A request's headers as text (lower-cased names), decoded only when the policy asks for one."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[bytes, bytes]) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> str:
        return self._raw[key.lower().encode("latin-1")].decode("latin-1")

    def get(self, key: str, default: Any = None) -> Any:  # the policy's only call: no exception per miss
        value = self._raw.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._raw

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name in self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def rendered(refused: Refusal) -> bytes:
    """The edge policy's refusal as a complete response (it closes the connection)."""
    status, headers, body = render(refused)
    lines = [f"HTTP/1.1 {status}\r\n".encode()]
    lines.extend(f"{name}: {value}\r\n".encode("latin-1", "replace") for name, value in headers)
    if not any(name.lower() == "content-length" for name, _ in headers):
        lines.append(f"Content-Length: {len(body)}\r\n".encode())
    return b"".join(lines) + b"\r\n" + body


class HeadTooLarge(Exception):
    """The request line and headers passed the limit (raised inside the parser's callbacks)."""


class Request:
    """One parsed request: method, target, headers (raw and by lower-cased name), body."""

    __slots__ = (
        "chunks", "head_size", "headers", "keep_alive", "limit", "method", "path", "raw_headers", "region",
        "repeated", "service", "size", "spool", "url", "version",
    )

    def __init__(self) -> None:
        self.method = b""
        self.url = b""
        self.path = ""
        """The URL's path, percent-decoded (what WSGI calls PATH_INFO)."""
        self.version = "1.1"
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers: dict[bytes, bytes] = {}
        self.repeated = False
        """Whether a header name occurred twice (its values are joined with ", ")."""
        self.keep_alive = True
        self.head_size = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.spool: IO[bytes] | None = None
        self.service = b""
        """The AWS service of the SigV4 credential scope (header or presigned query), if any."""
        self.region = b""
        """The region of the Authorization header's credential scope, if any."""
        self.limit = 0
        """The most body bytes this request may carry (S3: 5 GiB; others: SMEMU_MAX_REQUEST_BYTES)."""

    @property
    def body(self) -> bytes | None:
        """The body when it is in memory (None when it was spooled to a file)."""
        if self.spool is not None:
            return None
        chunks = self.chunks
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def discard(self) -> None:
        """Delete a spooled body."""
        if self.spool is not None:
            self.spool.close()
            self.spool = None


def scope_parts(authorization: bytes) -> tuple[bytes, bytes]:
    """``(region, service)`` of a SigV4 Authorization header (``.../<region>/<service>/aws4_request``),
    or ``(b"", b"")``. Found with ``find``/``rfind`` rather than a regular expression: every
    request pays for it."""
    end = authorization.find(_SCOPE_END)
    if end < 0:
        return b"", b""
    start = authorization.rfind(b"/", 0, end)
    if start < 0:
        return b"", b""
    region_start = authorization.rfind(b"/", 0, start)
    region = authorization[region_start + 1 : start] if region_start >= 0 else b""
    return region, authorization[start + 1 : end].lower()


class ClientConnection(asyncio.Protocol):
    """A client's connection to one front."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.loop = front.loop
        self.limits = front.limits
        self.transport: asyncio.Transport | None = None
        self.peer = b""
        self.parser = httptools.HttpRequestParser(self)
        self.request: Request | None = None
        self.pending: deque[Request] = deque()
        self.busy = False
        self.state = _IDLE
        self.since = 0.0
        """When the current state began (head: first byte; body and idle: last activity)."""
        self.head_bytes = 0
        self.write_paused = False
        self.on_resume: Any = None
        """Called when the client drains what was written (the relay of a forwarded answer)."""
        self.on_lost: Any = None
        """Called when the client goes away while an answer is being relayed."""
        self._reading_paused = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"{peer[0]}:{peer[1]}".encode()
        self.since = self.loop.time()
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        self.transport = None
        if self.request is not None:
            self.request.discard()
        for request in self.pending:
            request.discard()
        self.pending.clear()
        if self.on_lost is not None:
            lost, self.on_lost = self.on_lost, None
            lost()

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == _IDLE or state == _HEAD:
            self.head_bytes += len(data)
        elif state == _BODY:
            self.since = self.loop.time()
        try:
            self.parser.feed_data(data)
        except HeadTooLarge:
            self.refuse_head()
            return
        except httptools.HttpParserUpgrade:
            self.reject(400, "BadRequest", "Protocol upgrades are not supported on this port.")
            return
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self.refuse_head()
            else:  # e.g. the spool's disk is full: say so rather than drop the connection
                log.error("reading a request failed: %s", exc.__context__ or exc)
                self.reject(503, "ServiceUnavailable", f"The emulator could not read the request: {exc.__context__}")
            return
        except httptools.HttpParserError as exc:
            self.reject(400, "BadRequest", f"Malformed HTTP request: {exc}.")
            return
        if self.state == _HEAD and self.head_bytes > self.limits.max_header_bytes:
            self.refuse_head()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.on_resume is not None:
            self.on_resume()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.request = Request()
        self.state = _HEAD
        self.since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        request = self.request
        assert request is not None
        request.url += url
        request.head_size += len(url)
        if request.head_size > self.limits.max_header_bytes:
            raise HeadTooLarge()

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.request
        assert request is not None
        request.head_size += len(name) + len(value) + 4
        if request.head_size > self.limits.max_header_bytes:
            raise HeadTooLarge()
        request.raw_headers.append((name, value))
        key = name.lower()
        headers = request.headers
        if key in headers:
            request.repeated = True
            headers[key] = headers[key] + b", " + value
        else:
            headers[key] = value

    def on_headers_complete(self) -> None:
        request = self.request
        assert request is not None
        parser = self.parser
        request.method = parser.get_method()
        request.version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        self.state = _BODY
        self.head_bytes = 0
        self.since = self.loop.time()
        headers = request.headers
        authorization = headers.get(b"authorization")
        region, service = scope_parts(authorization) if authorization is not None else (b"", b"")
        request.region = region
        if not service and b"x-amz-credential=" in request.url.lower():
            found = _QUERY_SCOPE.search(request.url)
            service = found.group(1).lower() if found is not None else b""
        request.service = service
        request.path = unquote(request.url.split(b"?", 1)[0].decode("latin-1"))
        refused = refusal(self.front.settings, request.method.decode("latin-1"), request.path, TextHeaders(headers))
        if refused is not None:  # Host, Origin, /moto-api, Content-Length: before a byte of the body
            self._refuse(rendered(refused), request)
            return
        # A body without Content-Length is held to the same sizes as it arrives.
        maybe_s3 = service == b"s3" or (not service and b"x-amz-target" not in headers)
        request.limit = S3_MAX_BODY if maybe_s3 else max(self.limits.max_request_bytes, INVOKE_MAX_BODY)
        if headers.get(b"expect", b"").lower() == b"100-continue" and request.version == "1.1":
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        request = self.request
        if request is None or self.state != _BODY:
            return
        request.size += len(chunk)
        if request.size > request.limit:
            self._too_large(request, request.size)
            return
        if request.spool is not None:
            request.spool.write(chunk)
        elif request.size > SPOOL_BYTES:
            spool = tempfile.TemporaryFile(dir=self.front.spool_dir, prefix="body-")  # noqa: SIM115 - closed by Request.discard
            for piece in request.chunks:
                spool.write(piece)
            spool.write(chunk)
            request.chunks = []
            request.spool = spool
        else:
            request.chunks.append(chunk)

    def on_message_complete(self) -> None:
        request = self.request
        if request is None or self.state != _BODY:
            return
        if self.transport is None or self.transport.is_closing():
            request.discard()
            return
        self.request = None
        self.state = _DONE
        if request.spool is not None:
            request.spool.flush()
            request.spool.seek(0)
        self.pending.append(request)
        if len(self.pending) >= MAX_PIPELINED and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        if not self.busy:
            self._next()

    # -- limits ------------------------------------------------------------------------------

    def _too_large(self, request: Request, size: int) -> None:
        """Refuse (and close) a body that grew past its size, with the policy's answer for that size."""
        headers = TextHeaders({**request.headers, b"content-length": str(size).encode()})
        refused = refusal(self.front.settings, request.method.decode("latin-1"), request.path, headers)
        if refused is not None:
            self._refuse(rendered(refused), request)
            return
        message = f"The request body ({size} bytes or more) is larger than this emulator reads."
        self._refuse(edge_error(413, "RequestEntityTooLarge", message), request)

    def _refuse(self, response: bytes, request: Request | None) -> None:
        if request is not None:
            request.discard()
        self.request = None
        self.state = _DONE
        self.close_with(response)

    def refuse_head(self) -> None:
        """431: the request line and headers are larger than allowed."""
        limit = self.limits.max_header_bytes
        message = f"The request line and headers exceed the emulator's limit of {limit} bytes (SMEMU_MAX_HEADER_BYTES)."
        self._refuse(edge_error(431, "RequestHeaderFieldsTooLarge", message), self.request)

    def reject(self, status: int, code: str, message: str) -> None:
        """Answer an error and close (the request cannot be read further)."""
        self._refuse(edge_error(status, code, message), self.request)

    def close_with(self, response: bytes) -> None:
        """Write a last answer (unless an answer is being written already) and close."""
        transport = self.transport
        if transport is None:
            return
        if not self.busy:
            transport.write(response)
        transport.close()

    def check_timeouts(self, now: float) -> None:
        """Close a connection whose client is too slow, or idle for too long (the sweeper calls it)."""
        state = self.state
        limits = self.limits
        if self.busy:
            return
        if state == _HEAD and now - self.since > limits.header_timeout:
            self.reject(408, "RequestTimeout", f"The request head did not arrive within {limits.header_timeout:g} s "
                        "(SMEMU_REQUEST_HEADER_TIMEOUT_SECONDS).")
        elif state == _BODY and now - self.since > limits.body_timeout:
            self.reject(408, "RequestTimeout", f"The request body stalled for more than {limits.body_timeout:g} s "
                        "(SMEMU_REQUEST_BODY_TIMEOUT_SECONDS).")
        elif state in (_IDLE, _DONE) and now - self.since > limits.keepalive_timeout and self.transport is not None:
            self.transport.close()

    # -- answering ---------------------------------------------------------------------------

    def _next(self) -> None:
        """Dispatch the next complete request, if any."""
        if not self.pending:
            return
        request = self.pending.popleft()
        if self._reading_paused and len(self.pending) < MAX_PIPELINED // 2 and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        self.busy = True
        self.front.dispatch(request, self)

    def respond(self, request: Request, response: bytes, keep_alive: bool = True) -> None:
        """Write a complete answer to ``request`` and go on with the next one (or close)."""
        transport = self.transport
        if transport is None:
            request.discard()
            self.busy = False
            return
        transport.write(response)
        self.finish(request, keep_alive)

    def finish(self, request: Request, keep_alive: bool) -> None:
        """The answer to ``request`` is written: close, or wait for (or serve) the next request."""
        request.discard()
        self.busy = False
        self.on_resume = None
        self.on_lost = None
        transport = self.transport
        if transport is None:
            return
        if not (keep_alive and request.keep_alive):
            transport.close()
            return
        if self.state == _DONE:
            self.state = _IDLE
            self.since = self.loop.time()
        if self.pending:
            self._next()
