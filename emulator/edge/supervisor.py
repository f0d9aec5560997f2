"""The control process's side of the data plane: start the fronts, keep them current, restart them.

:class:`EdgeSupervisor` starts one front per listening socket (``python -m emulator.edge.front``,
the socket inherited) and talks to each over its stdin/stdout (:mod:`.channel`). It is the
routing table's observer (``emulator/hosting/routing.py``):

* **Publication.** Every change of the table is published as a new *version* holding every
  live route (``emulator/hosting/publication.py``). ``table_changed`` returns once every live
  front answered ``applied`` for that version (or after :data:`APPLY_TIMEOUT`, with a
  warning), so when the deployer sets an endpoint InService, or retires a fleet, the fronts
  already route by the new table.
* **Drain.** Before a retired fleet is stopped the deployer calls ``drain(route)``: each
  front answers ``drained`` once no request it sent to that route is in flight.
* **Placements** of multi-model TargetModels are forwarded as they change; the **hits** and
  **invocations** the fronts served come back in batches (at most 0.2 s old) and go to
  ``on_hits`` and ``on_invocations``, where hosting counts them as its own. Before the
  control process serves a multi-model invocation itself, or shows a cache, it calls
  :meth:`EdgeSupervisor.catch_up`, which asks every front for the hits it has not reported and
  waits for them, so a model's last use is known before anything is evicted.

A front that exits unexpectedly is started again with the current table and placements. The
fronts' stdin is their lifeline: when the control process exits, even by kill -9, they see
the end of the stream and stop.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.edge import channel
from emulator.hosting.data_plane import Placement
from emulator.hosting.publication import table_snapshot
from emulator.hosting.routing import EndpointRoute, RoutingTable

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
APPLY_TIMEOUT = 10.0
CATCH_UP_TIMEOUT = 2.0
RESTART_DELAY = 0.5
RESTART_DELAY_MAX = 30.0
"""A front that keeps dying young is restarted less and less often (0.5 s, 1 s, ... 30 s)."""
YOUNG = 5.0

Hits = list[tuple[str, str, int, float]]
"""``(container id, TargetModel, count, last used as epoch seconds)``."""
Invocations = list[tuple[Any, ...]]
"""``(region, endpoint, variant, invocations, successes, latency sum, min, max, 4xx, 5xx)``
(latencies in seconds, of the successes)."""


class FrontProcess:
    """One front: its process, its channel and what it has acknowledged."""

    def __init__(self, index: int, proc: subprocess.Popen[bytes], restart_delay: float = RESTART_DELAY) -> None:
        self.index = index
        self.proc = proc
        self.started = time.monotonic()
        self.restart_delay = restart_delay
        """How long to wait before starting this front again should it exit."""
        self.applied = 0
        self.served = 0
        self.forwarded = 0
        self.ready = threading.Event()
        self.alive = True
        self.write_lock = threading.Lock()
        self.frames = channel.FrameReader()
        assert proc.stdout is not None
        self.out_fd = proc.stdout.fileno()
        os.set_blocking(self.out_fd, False)

    def send(self, message: tuple[Any, ...]) -> None:
        """Write a message to the front (a dead front is skipped)."""
        if not self.alive:
            return
        data = channel.encode(message)
        with self.write_lock:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.alive = False


class EdgeSupervisor:
    """Starts, feeds and restarts the front processes (the routing table's observer)."""

    def __init__(
        self,
        settings: Any,
        sockets: list[Any],
        control_path: str,
        spool_dir: Path,
        header_rules: list[tuple[bytes, int, int, str | None, int]],
    ) -> None:
        self.settings = settings
        self.sockets = sockets
        self.control_path = control_path
        self.spool_dir = spool_dir
        self.header_rules = header_rules
        self.on_hits: Callable[[Hits], None] | None = None
        self.on_invocations: Callable[[Invocations], None] | None = None
        self.fronts: list[FrontProcess] = []
        self.version = 0
        self._routes: dict[str, dict[str, Any]] = {}
        self._placements: dict[tuple[str, str], Placement] = {}
        self._publish_lock = threading.Lock()
        self._state = threading.Condition()
        self._drained: dict[int, set[int]] = {}
        """drain token -> indexes of fronts that have not answered yet."""
        self._flushed: dict[int, set[int]] = {}
        """flush token -> indexes of fronts that have not reported their hits yet."""
        self._tokens = itertools.count(1)
        self._stopping = threading.Event()
        self._readers: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EdgeSupervisor:
        """Start every front and wait until each accepts connections."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for index in range(len(self.sockets)):
            self._spawn(index)
        deadline = time.monotonic() + START_TIMEOUT
        for front in self.fronts:
            if not front.ready.wait(max(0.0, deadline - time.monotonic())) or not front.alive:
                self.stop()
                raise RuntimeError(f"front process {front.index} of the edge did not start (see its output above)")
        return self

    def _spawn(self, index: int, restart_delay: float = RESTART_DELAY) -> FrontProcess:
        sock = self.sockets[index]
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.edge.front"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=[sock.fileno()],
            close_fds=True,
        )
        front = FrontProcess(index, proc, restart_delay)
        hello = {
            "settings": self.settings,
            "index": index,
            "listen_fd": sock.fileno(),
            "control_path": self.control_path,
            "spool_dir": str(self.spool_dir),
            "header_rules": self.header_rules,
            "log_level": logging.getLogger("emulator").getEffectiveLevel() or logging.WARNING,
        }
        front.send(("hello", hello))
        with self._publish_lock:
            front.send(("routes", self.version, self._routes))
            for placement in list(self._placements.values()):
                front.send(("placement", placement.container_id, placement.target, placement.model, True))
            if index < len(self.fronts):
                self.fronts[index] = front
            else:
                self.fronts.append(front)
        reader = threading.Thread(target=self._read, args=(front,), name=f"edge-front-{index}", daemon=True)
        reader.start()
        self._readers.append(reader)
        return front

    def stop(self) -> None:
        """Close every front's channel (they stop), wait briefly, then kill what is left."""
        self._stopping.set()
        for front in self.fronts:
            front.alive = False
            try:
                if front.proc.stdin is not None:
                    front.proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + 10.0
        for front in self.fronts:
            try:
                front.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                front.proc.kill()
                front.proc.wait()
        with self._state:
            self._state.notify_all()

    # -- reading what fronts say --------------------------------------------------------------

    def _read(self, front: FrontProcess) -> None:
        while True:
            try:
                readable, _, _ = select.select([front.out_fd], [], [], 0.5)
            except (OSError, ValueError):
                break
            if not readable:
                if front.proc.poll() is not None and not self._drain_pipe(front):
                    break
                continue
            if not self._drain_pipe(front):
                break
        self._front_exited(front)

    def _drain_pipe(self, front: FrontProcess) -> bool:
        """Read and apply whatever the front has written; False at the end of its output."""
        while True:
            try:
                data = os.read(front.out_fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            for message in front.frames.feed(data):
                self._handle(front, message)

    def _handle(self, front: FrontProcess, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            front.ready.set()
        elif kind == "applied":
            with self._state:
                front.applied = max(front.applied, int(message[1]))
                self._state.notify_all()
        elif kind == "drained":
            with self._state:
                self._drained.get(int(message[1]), set()).discard(front.index)
                self._state.notify_all()
        elif kind == "flushed":
            with self._state:
                self._flushed.get(int(message[1]), set()).discard(front.index)
                self._state.notify_all()
        elif kind == "counts":
            front.served, front.forwarded = int(message[1]), int(message[2])
        elif kind in ("hits", "invocations"):
            apply = self.on_hits if kind == "hits" else self.on_invocations
            if apply is not None:
                try:
                    apply(message[1])
                except Exception:  # a bad report must not stop the reader
                    log.exception("applying the %s reported by front %d failed", kind, front.index)
        else:
            log.warning("front %d said something unknown: %r", front.index, kind)

    def _front_exited(self, front: FrontProcess) -> None:
        front.alive = False
        front.ready.set()
        with self._state:
            for waiting in (*self._drained.values(), *self._flushed.values()):
                waiting.discard(front.index)
            self._state.notify_all()
        if self._stopping.is_set():
            return
        code = front.proc.wait()
        young = time.monotonic() - front.started < YOUNG
        delay = min(front.restart_delay * 2, RESTART_DELAY_MAX) if young else RESTART_DELAY
        log.error("front process %d of the edge exited with code %s; starting it again in %g s",
                  front.index, code, delay)
        if self._stopping.wait(delay):
            return
        replacement = self._spawn(front.index, delay)
        if not replacement.ready.wait(START_TIMEOUT):
            log.error("front process %d did not start again", front.index)

    def catch_up(self) -> None:
        """Have every front report the hits it has not reported yet, and apply them (before a
        multi-model decision, or a view of the cache)."""
        token = next(self._tokens)
        with self._state:
            self._flushed[token] = {f.index for f in self.fronts if f.alive}
        try:
            for front in self.fronts:
                front.send(("flush", token))
            self._wait(lambda: not self._flushed[token], CATCH_UP_TIMEOUT, "their multi-model hits")
        finally:
            with self._state:
                self._flushed.pop(token, None)

    # -- what hosting calls (TableObserver, placements) -----------------------------------------

    def table_changed(self, table: RoutingTable) -> None:
        """Publish the table as it is now and wait until every live front applied it."""
        with self._publish_lock:
            self.version += 1
            version = self.version
            self._routes = table_snapshot(table.routes())
            containers = {c["container_id"] for r in self._routes.values() for v in r["variants"]
                          for i in v["instances"] for c in i["containers"]}
            for key in [k for k in self._placements if k[0] not in containers]:
                del self._placements[key]
            message = ("routes", version, self._routes)
            for front in self.fronts:
                front.send(message)
        self._wait(lambda: all(f.applied >= version for f in self.fronts if f.alive), APPLY_TIMEOUT,
                   f"routing table version {version}")

    def drain(self, route: EndpointRoute, timeout: float) -> bool:
        """Wait until no front has a request in flight on ``route``; False on timeout."""
        token = next(self._tokens)
        with self._state:
            self._drained[token] = {f.index for f in self.fronts if f.alive}
        try:
            for front in self.fronts:
                front.send(("drain", token, route.id))
            return self._wait(lambda: not self._drained[token], timeout, f"requests on endpoint {route.name}")
        finally:
            with self._state:
                self._drained.pop(token, None)

    def placement(self, placement: Placement) -> None:
        """A multi-model TargetModel was loaded into (or unloaded from) a container."""
        key = (placement.container_id, placement.target)
        with self._publish_lock:
            if placement.loaded:
                self._placements[key] = placement
            else:
                self._placements.pop(key, None)
            message = ("placement", placement.container_id, placement.target, placement.model, placement.loaded)
            for front in self.fronts:
                front.send(message)

    def describe(self, _name: str = "") -> dict[str, Any]:
        """What ``/_smemu/health`` shows about the data plane (a platform view; the name is unused)."""
        return {
            "fronts": [
                {"index": f.index, "pid": f.proc.pid, "alive": f.alive, "applied": f.applied, "served": f.served,
                 "forwarded": f.forwarded}
                for f in self.fronts
            ],
            "version": self.version,
        }

    def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> bool:
        deadline = time.monotonic() + timeout
        with self._state:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    if not self._stopping.is_set():
                        log.warning("the edge's front processes did not confirm %s within %g s", what, timeout)
                    return False
                self._state.wait(remaining)
        return True


def invoke_header_rules() -> list[tuple[bytes, int, int, str | None, int]]:
    """InvokeEndpoint's header members' rules from botocore's model, for the fronts' fast path:
    ``(lower-cased header, min length, max length, Python regex or None, regex flags)``."""
    from emulator.gateway.protocol import load_service_model
    from emulator.gateway.validation import java_pattern

    operation = load_service_model("sagemaker-runtime").operation_model("InvokeEndpoint")
    rules = []
    for member in operation.input_shape.members.values():
        if member.serialization.get("location") != "header":
            continue
        meta = member.metadata
        pattern = java_pattern(meta["pattern"]) if "pattern" in meta else None
        rules.append((
            member.serialization["name"].lower().encode(),
            int(meta.get("min", 0)),
            int(meta.get("max", 1 << 30)),
            pattern.pattern if pattern is not None else None,
            int(pattern.flags) if pattern is not None else 0,
        ))
    return rules
