"""Requests a front does not serve, handed to the control process and its answer relayed.

The control process listens on a private Unix socket (only its own fronts connect to it).
A front sends it the request exactly as it arrived, with three changes: the body, complete
already (in memory or spooled to a file), goes with a Content-Length instead of chunked
transfer coding; hop-by-hop headers (Connection, Keep-Alive, Transfer-Encoding, Expect, TE,
Upgrade) are dropped, since the front answered ``100 Continue`` itself; and
``X-Smemu-Client`` carries the client's address (a client's own value is dropped). Because
the body is complete before the control process sees the request, a slow upload never
holds one of its worker threads.

The answer is relayed byte for byte as it arrives (so multi-GiB S3 downloads and response
streams flow through without being held), with back-pressure: reading from the control
process pauses while the client is slow to take what was written. httptools parses the
relayed bytes only to know where the answer ends, so the connection can be reused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import IO, TYPE_CHECKING

import httptools

from emulator.edge.connection import ClientConnection, Request
from emulator.edge.idle import IdleConnections
from emulator.edge.limits import edge_error

if TYPE_CHECKING:
    from emulator.edge.front import Front

log = logging.getLogger(__name__)

CLIENT_HEADER = b"x-smemu-client"
"""Carries the client's ``address:port`` to the control process."""
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"expect",
     b"proxy-connection", b"content-length", CLIENT_HEADER}
)
_CHUNK = 1024 * 1024


class ControlConnection(asyncio.Protocol):
    """A connection to the control process, relaying one answer at a time to a client."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.transport: asyncio.Transport | None = None
        self.client: ClientConnection | None = None
        self.request: Request | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = False
        self.relayed = 0
        self.keep_alive = True
        self.framed = False
        self.headers_done = False
        self.reused = False
        self.retried = False
        self._drained: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reading_paused = False
        """Reading from the control process is paused until the client takes what was relayed."""

    def begin(self, request: Request, client: ClientConnection, reused: bool, retried: bool) -> None:
        """Relay the answer to ``request`` to ``client``."""
        self.client = client
        self.request = request
        self.reused = reused
        self.retried = retried
        self.head_only = request.method == b"HEAD"
        self.relayed = 0
        self.keep_alive = True
        self.framed = False
        self.headers_done = False
        self._resume()  # the last answer may have ended while its client was slow to take it
        client.on_resume = self._client_resumed
        client.on_lost = self._client_lost

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:
            return
        self.relayed += len(data)
        if client.transport is not None:
            client.transport.write(data)
            if client.write_paused and self.transport is not None and not self._reading_paused:
                self._reading_paused = True
                self.transport.pause_reading()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.forwarder.forget(self)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        client, request = self.client, self.request
        if client is None or request is None:
            return
        if self.relayed == 0:
            self._detach()
            if self.reused and not self.retried:
                self.forwarder.retry(request, client)  # the control process had closed it while idle
            else:
                client.respond(request, edge_error(503, "ServiceUnavailable", "The emulator's control process "
                                                   "closed the connection without an answer; try again."), False)
            return
        if self.headers_done and not self.framed:
            self.keep_alive = False
            self.on_message_complete()  # an answer delimited by the end of the connection
            return
        self._abort()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"connection":
            if value.lower() == b"close":
                self.keep_alive = False
        elif name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.parser.get_http_version() != "1.1":
            self.keep_alive = False
        if self.head_only:
            self.on_message_complete()

    def on_message_complete(self) -> None:
        client, request = self.client, self.request
        if client is None or request is None:
            return
        self._detach()
        if self.keep_alive and self.transport is not None and not self.head_only:
            self.forwarder.release(self)
        elif self.transport is not None:
            self.transport.close()
        client.finish(request, self.keep_alive)

    # -- relaying ----------------------------------------------------------------------------

    def _detach(self) -> None:
        client = self.client
        if client is not None:
            client.on_resume = None
            client.on_lost = None
        self.client = self.request = None

    def _client_resumed(self) -> None:
        self._resume()

    def _resume(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def _client_lost(self) -> None:
        """The client went away mid-answer: this connection's state is unknown, close it."""
        request = self.request
        self._detach()
        if request is not None:
            request.discard()
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        """A broken relay: close both sides (the client sees a truncated answer, not a wrong one)."""
        client, request = self.client, self.request
        self._detach()
        if self.transport is not None:
            self.transport.close()
        if client is not None and request is not None:
            client.finish(request, False)

    async def drained(self) -> None:
        """Wait until the control process took what was written (flow control for big bodies)."""
        if self._write_paused and self.transport is not None:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
            self._drained = None


class Forwarder:
    """Sends requests to the control process over a pool of kept-alive Unix-socket connections."""

    def __init__(self, front: Front, path: str, max_idle: int = 32) -> None:
        self.front = front
        self.loop = front.loop
        self.path = path
        self._idle: IdleConnections[ControlConnection] = IdleConnections(max_idle)

    def forward(self, request: Request, client: ClientConnection) -> None:
        """Hand ``request`` to the control process and relay its answer to ``client``."""
        self.loop.create_task(self._send(request, client))

    def retry(self, request: Request, client: ClientConnection) -> None:
        """Send again on a new connection (the reused one was closed before any answer)."""
        if request.spool is not None and not request.spool.closed:
            request.spool.seek(0)
        self.loop.create_task(self._send(request, client, retried=True))

    async def _send(self, request: Request, client: ClientConnection, retried: bool = False) -> None:
        try:
            connection, reused = await self._connection(fresh=retried)
        except OSError as exc:
            log.error("cannot reach the control process at %s: %s", self.path, exc)
            client.respond(request, edge_error(503, "ServiceUnavailable", "The emulator's control process is not "
                                               "answering; try again."), False)
            return
        if client.transport is None:
            self.release(connection)
            request.discard()
            return
        transport = connection.transport
        assert transport is not None
        connection.begin(request, client, reused, retried)
        transport.write(self._head(request, client))
        body = request.body
        if body is not None:
            if body:
                transport.write(body)
            return
        await self._send_spool(connection, request.spool)

    async def _send_spool(self, connection: ControlConnection, spool: IO[bytes] | None) -> None:
        assert spool is not None
        while True:
            try:
                chunk = spool.read(_CHUNK)
            except ValueError:  # the answer came (and the spool went) before the whole body was sent
                return
            if not chunk or connection.transport is None:
                return
            connection.transport.write(chunk)
            await connection.drained()

    def _head(self, request: Request, client: ClientConnection) -> bytes:
        version = b"HTTP/1.1" if request.version == "1.1" else b"HTTP/1.0"
        lines = [request.method, b" ", request.url, b" ", version, b"\r\n"]
        for name, value in request.raw_headers:
            if name.lower() not in _HOP_BY_HOP:
                lines += (name, b": ", value, b"\r\n")
        if request.size or b"content-length" in request.headers or b"transfer-encoding" in request.headers:
            lines += (b"Content-Length: ", str(request.size).encode(), b"\r\n")
        lines += (b"X-Smemu-Client: ", client.peer, b"\r\n\r\n")
        return b"".join(lines)

    async def _connection(self, fresh: bool) -> tuple[ControlConnection, bool]:
        connection = None if fresh else self._idle.take()
        if connection is not None:
            return connection, True
        _transport, connection = await self.loop.create_unix_connection(lambda: ControlConnection(self), self.path)
        return connection, False

    def release(self, connection: ControlConnection) -> None:
        """A connection whose answer is complete and that may carry the next request."""
        self._idle.release(connection)

    def forget(self, connection: ControlConnection) -> None:
        """A connection that closed: never hand it out again."""
        self._idle.forget(connection)
