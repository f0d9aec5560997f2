"""A front process: serves the edge port from one event loop (``python -m emulator.edge.front``).

Started by the control process (:mod:`.supervisor`) with the listening socket inherited and
its stdin/stdout as the channel (:mod:`.channel`). It reads the ``hello`` message, serves
until its stdin ends (the control process stopped or died) or SIGTERM, then stops accepting
and lets requests in flight finish for a few seconds. SIGINT is ignored: a Ctrl-C in a
terminal reaches the whole process group, and the control process decides when fronts stop.

Runs on uvloop when it is installed (a plain asyncio loop otherwise).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import re
import signal
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

from emulator.edge import channel
from emulator.edge.connection import ClientConnection, Request
from emulator.edge.forward import Forwarder
from emulator.edge.invoke import InvokeFastPath
from emulator.edge.limits import EdgeLimits
from emulator.edge.table import FrontRoute, FrontTable
from emulator.edge.upstream import ContainerPool

log = logging.getLogger("emulator.edge.front")

SWEEP_SECONDS = 1.0
REPORT_SECONDS = 0.2
"""Hits and invocations are reported in batches at most this old (the control process asks for
the rest before it makes a decision that depends on them)."""
STOP_GRACE_SECONDS = 5.0


class Front:
    """Everything one front process shares between its connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hello: dict[str, Any], channel_out: int) -> None:
        self.loop = loop
        self.settings = hello["settings"]
        self.index: int = hello["index"]
        self.limits = EdgeLimits.from_settings(self.settings)
        self.spool_dir = Path(hello["spool_dir"])
        self.table = FrontTable()
        self.connections: set[ClientConnection] = set()
        self._pools: dict[tuple[str, int], ContainerPool] = {}
        rules = [(name, low, high, re.compile(pattern, flags) if pattern is not None else None)
                 for name, low, high, pattern, flags in hello["header_rules"]]
        self.fast_path = InvokeFastPath(self, rules)
        self.forwarder = Forwarder(self, hello["control_path"])
        self._out = channel_out
        self._out_transport: asyncio.WriteTransport | None = None
        self._drains: dict[int, list[int]] = {}
        """route id -> drain tokens the control process waits on."""
        self.stopped = loop.create_future()
        self._request_ids = itertools.count(1)
        self._request_prefix = uuid.uuid4().hex[:20]
        self.served = 0
        """Invocations answered by this front's fast path."""
        self.forwarded = 0
        """Requests handed to the control process."""
        self._reported = (0, 0)
        self._hits: dict[tuple[str, str], list[Any]] = {}
        """(container id, TargetModel) -> [hits, last one's epoch time], not reported yet."""
        self._invocations: dict[tuple[str, str, str], list[Any]] = {}
        """(region, endpoint, variant) -> [invocations, successes, latency sum, min, max, 4xx, 5xx]."""
        self._batch_timer: asyncio.TimerHandle | None = None

    # -- requests ----------------------------------------------------------------------------

    def dispatch(self, request: Request, conn: ClientConnection) -> None:
        """Serve ``request`` here if the fast path can, else forward it to the control process."""
        try:
            served = self.fast_path.serve(request, conn)
        except Exception:  # a bug of ours: the control process serves the request instead
            log.exception("front %d: the invocation fast path failed on %r", self.index, request.url[:200])
            served = False
        if served:
            self.served += 1
        else:
            self.forwarded += 1
            self.forwarder.forward(request, conn)

    def forward(self, request: Request, conn: ClientConnection) -> None:
        """Forward ``request`` (used by the fast path when a container did not run it)."""
        self.served -= 1
        self.forwarded += 1
        self.forwarder.forward(request, conn)

    def request_id(self) -> str:
        """A new x-amzn-RequestId in UUID form: random per process, then a counter (cheaper than uuid4)."""
        prefix = self._request_prefix
        return f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-{next(self._request_ids):012x}"

    def pool(self, address: tuple[str, int]) -> ContainerPool:
        """The connection pool of a container address."""
        pool = self._pools.get(address)
        if pool is None:
            pool = self._pools[address] = ContainerPool(self.loop, address[0], address[1])
        return pool

    # -- the channel -------------------------------------------------------------------------

    def send(self, message: tuple[Any, ...]) -> None:
        """A message to the control process (written at once, in order)."""
        if self._out_transport is not None and not self._out_transport.is_closing():
            self._out_transport.write(channel.encode(message))

    def report_hit(self, container_id: str, target: str, when: float) -> None:
        """A multi-model cache hit served here (reported in the next batch)."""
        key = (container_id, target)
        pending = self._hits.get(key)
        if pending is None:
            self._hits[key] = [1, when]
        else:
            pending[0] += 1
            pending[1] = when
        self._batch_soon()

    def report_invocation(self, region: str, endpoint: str, variant: str, seconds: float, error: int | None) -> None:
        """An invocation that reached a container (the control process counts it as its own:
        Invocations, ModelLatency, Invocation4XXErrors / 5XXErrors)."""
        key = (region, endpoint, variant)
        stats = self._invocations.get(key)
        if stats is None:
            stats = self._invocations[key] = [0, 0, 0.0, seconds, seconds, 0, 0]
        stats[0] += 1
        if error is None:
            stats[1] += 1
            stats[2] += seconds
            stats[3] = min(stats[3], seconds)
            stats[4] = max(stats[4], seconds)
        elif 400 <= error < 500:
            stats[5] += 1
        else:
            stats[6] += 1
        self._batch_soon()

    def _batch_soon(self) -> None:
        if self._batch_timer is None:
            self._batch_timer = self.loop.call_later(REPORT_SECONDS, self.flush_reports)

    def flush_reports(self) -> None:
        """Send the hits and invocations not reported yet."""
        if self._batch_timer is not None:
            self._batch_timer.cancel()
            self._batch_timer = None
        if self._hits:
            hits, self._hits = self._hits, {}
            self.send(("hits", [(cid, target, count, when) for (cid, target), (count, when) in hits.items()]))
        if self._invocations:
            invocations, self._invocations = self._invocations, {}
            self.send(("invocations", [(*key, *stats) for key, stats in invocations.items()]))

    def received(self, message: tuple[Any, ...]) -> None:
        """A message from the control process."""
        kind = message[0]
        if kind == "routes":
            _, version, routes = message
            self.table.apply(version, routes)
            self._close_unused_pools()
            self.send(("applied", version))
            self._check_drains()
        elif kind == "placement":
            _, container_id, target, model, loaded = message
            self.table.place(container_id, target, model, loaded)
        elif kind == "flush":
            self.flush_reports()
            self.send(("flushed", message[1]))
        elif kind == "drain":
            _, token, route_id = message
            self._drains.setdefault(route_id, []).append(token)
            self._check_drains()
        else:
            log.warning("front %d: unknown message %r", self.index, kind)

    def _check_drains(self) -> None:
        for route_id in list(self._drains):
            route = self.table.inflight(route_id)
            if route is None:
                for token in self._drains.pop(route_id):
                    self.send(("drained", token))
            else:
                route.on_idle = self._route_idle

    def _route_idle(self, route: FrontRoute) -> None:
        route.on_idle = None
        self._check_drains()

    def _close_unused_pools(self) -> None:
        table = self.table
        routes = list(table.routes.values()) + list(table.retired.values())
        used = {c.address for r in routes for v in r.variants.values() for i in v.instances for c in i.containers}
        for address in [a for a in self._pools if a not in used]:
            self._pools.pop(address).close()

    # -- running -----------------------------------------------------------------------------

    async def run(self, listen_fd: int, channel_in: int) -> None:
        """Serve until the channel ends or SIGTERM."""
        loop = self.loop
        sock = socket.socket(fileno=listen_fd)
        server = await loop.create_server(lambda: ClientConnection(self), sock=sock, backlog=1024)
        self._out_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(self._out, "wb", 0))
        await loop.connect_read_pipe(lambda: _ChannelReader(self), os.fdopen(channel_in, "rb", 0))
        loop.add_signal_handler(signal.SIGTERM, self._stop)
        sweeper = loop.create_task(self._sweep())
        self.send(("ready", os.getpid()))
        await self.stopped
        server.close()
        self.flush_reports()
        sweeper.cancel()
        deadline = loop.time() + STOP_GRACE_SECONDS
        while any(c.busy for c in self.connections) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()

    def _stop(self) -> None:
        if not self.stopped.done():
            self.stopped.set_result(None)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = self.loop.time()
            for conn in list(self.connections):
                conn.check_timeouts(now)
            counts = (self.served, self.forwarded)
            if counts != self._reported:
                self._reported = counts
                self.send(("counts", *counts))


class _ChannelReader(asyncio.Protocol):
    """Reads the control process's messages; the end of the stream stops the front."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.frames = channel.FrameReader()

    def data_received(self, data: bytes) -> None:
        for message in self.frames.feed(data):
            self.front.received(message)

    def eof_received(self) -> bool | None:
        self.front._stop()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.front._stop()


def _read_hello(fd: int) -> dict[str, Any]:
    """The first message, read before the event loop starts."""
    frames = channel.FrameReader()
    while True:
        data = os.read(fd, 65536)
        if not data:
            raise SystemExit("the control process closed the channel before saying hello")
        messages = frames.feed(data)
        if messages:
            kind, hello = messages[0]
            if kind != "hello":
                raise SystemExit(f"expected hello from the control process, got {kind!r}")
            return dict(hello)


def main() -> int:
    """Entry point of a front process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel_in, channel_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a stray print must not corrupt the channel
    hello = _read_hello(channel_in)
    logging.basicConfig(level=hello.get("log_level", logging.WARNING), stream=sys.stderr,
                        format=f"%(asctime)s front-{hello['index']} %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    front = Front(loop, hello, channel_out)
    gc.freeze()  # what was loaded to start never becomes garbage: keep it out of every collection
    try:
        loop.run_until_complete(front.run(hello["listen_fd"], channel_in))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
