"""HTTP/1.1 from a front to model containers: keep-alive connections, one exchange at a time.

The front's invocation path calls :meth:`ContainerPool.request` with the whole request as one
bytes object (one send; the event loop's TCP transports set TCP_NODELAY) and a callback that
gets the answer or the failure. Answers are parsed with httptools (Content-Length, chunked,
or read to close). Failures are the exceptions the runtime's error builders expect:
``TimeoutError`` when the exchange's deadline passes, :class:`ContainerUnreachable` when the
container refuses, resets or closes the connection before a complete answer. As every HTTP
client pool does, a request that fails on a reused idle connection before any byte of the
answer arrived is sent once more on a new connection (the container had closed it while idle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools

from emulator.edge.idle import IdleConnections
from emulator.hosting.container_http import ContainerUnreachable

Done = Callable[["UpstreamResponse | None", "BaseException | None"], None]
"""``(response, None)`` or ``(None, error)``."""


class UpstreamResponse:
    """A container's complete answer; ``truncated`` when the body went past the caller's limit."""

    __slots__ = ("body", "headers", "status", "truncated")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes, truncated: bool) -> None:
        self.status = status
        self.headers = headers
        """Lower-cased names; a repeated header keeps its last value."""
        self.body = body
        self.truncated = truncated


class _Exchange:
    """One request in flight: what to send, whom to tell (once), when to give up."""

    __slots__ = ("connection", "done", "expired", "max_body", "payload", "retried", "timer")

    def __init__(self, payload: bytes, max_body: int, done: Done) -> None:
        self.payload = payload
        self.max_body = max_body
        self.done = done
        self.timer: asyncio.TimerHandle | None = None
        self.connection: UpstreamConnection | None = None
        self.retried = False
        self.expired = False

    def finish(self, response: UpstreamResponse | None, error: BaseException | None) -> None:
        """Tell the caller, exactly once."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        done, self.done = self.done, _ignore
        done(response, error)


def _ignore(response: UpstreamResponse | None, error: BaseException | None) -> None:
    """What a finished exchange's callback becomes."""


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to a container, parsing the answer of the current exchange."""

    def __init__(self, pool: ContainerPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.reused = False
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._received = False
        self._status = 0
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._keep_alive = True
        self._framed = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ContainerUnreachable(f"not an HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.forget(self)
        exchange = self.exchange
        if exchange is None:
            return
        if self._headers_done and not self._framed:  # an answer delimited by the connection's end
            self._keep_alive = False
            self._finish(truncated=False)
            return
        if self.reused and not self._received and not exchange.retried:
            self.exchange = None
            exchange.retried = True
            self.pool.send(exchange)  # the container had closed this idle connection
            return
        self._fail(ContainerUnreachable("the container closed the connection without a complete answer"))

    # -- httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._status = parser.get_status_code()
        headers = self._headers
        self._framed = b"content-length" in headers or b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        connection = headers.get(b"connection", b"").lower()
        if parser.get_http_version() == "1.1":
            self._keep_alive = connection != b"close"
        else:
            self._keep_alive = connection == b"keep-alive"
        self._headers_done = True

    def on_body(self, chunk: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        self._size += len(chunk)
        self._body.append(chunk)
        if self._size > exchange.max_body:
            self._keep_alive = False
            self._finish(truncated=True)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:
            self._reset()  # an interim answer: the real one follows
            self._received = True
            return
        self._finish(truncated=False)

    # -- completing --------------------------------------------------------------------------

    def _finish(self, truncated: bool) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        self.exchange = None
        body = self._body
        response = UpstreamResponse(
            self._status, self._headers, body[0] if len(body) == 1 else b"".join(body), truncated
        )
        keep = self._keep_alive and not truncated
        self._reset()
        if keep and self.transport is not None:
            self.pool.release(self)
        elif self.transport is not None:
            self.transport.close()
        exchange.finish(response, None)

    def _fail(self, error: BaseException) -> None:
        exchange = self.exchange
        self.exchange = None
        if self.transport is not None:
            self.transport.close()
        if exchange is not None:
            exchange.finish(None, error)

    def start(self, exchange: _Exchange, reused: bool) -> None:
        """Send an exchange's request on this connection."""
        exchange.connection = self
        self.exchange = exchange
        self.reused = reused
        self.transport.write(exchange.payload)  # type: ignore[union-attr]


class ContainerPool:
    """Keep-alive connections to one container address, reused last-in first-out."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, max_idle: int = 64) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.host_header = f"{host}:{port}".encode()
        """The Host header value requests to this container carry."""
        self._idle: IdleConnections[UpstreamConnection] = IdleConnections(max_idle)
        self.closed = False

    def request(self, payload: bytes, timeout: float, max_body: int, done: Done) -> None:
        """Send ``payload`` (a complete request) and call ``done`` with the answer or the failure."""
        exchange = _Exchange(payload, max_body, done)
        exchange.timer = self.loop.call_later(timeout, _expire, exchange)
        self.send(exchange)

    def send(self, exchange: _Exchange) -> None:
        """Put an exchange on an idle connection, or on a new one."""
        connection = self._idle.take()
        if connection is not None:
            connection.start(exchange, reused=True)
            return
        self.loop.create_task(self._connect(exchange))

    async def _connect(self, exchange: _Exchange) -> None:
        try:
            _transport, connection = await self.loop.create_connection(
                lambda: UpstreamConnection(self), self.host, self.port
            )
        except OSError as exc:
            exchange.finish(None, ContainerUnreachable(str(exc) or type(exc).__name__))
            return
        if exchange.expired:
            self.release(connection)
            return
        connection.start(exchange, reused=False)

    def release(self, connection: UpstreamConnection) -> None:
        """A connection whose exchange completed and that may be reused."""
        self._idle.release(connection, keep=not self.closed)

    def forget(self, connection: UpstreamConnection) -> None:
        """A connection that closed: never hand it out again."""
        self._idle.forget(connection)

    def close(self) -> None:
        """The container left the table: close idle connections and keep none from now on."""
        self.closed = True
        self._idle.close()


def _expire(exchange: _Exchange) -> None:
    """An exchange's deadline passed: drop its connection (if any) and report a timeout."""
    exchange.timer = None
    exchange.expired = True
    connection = exchange.connection
    if connection is not None and connection.exchange is exchange:
        connection.exchange = None
        if connection.transport is not None:
            connection.transport.close()
    exchange.finish(None, TimeoutError("the container did not answer in time"))
