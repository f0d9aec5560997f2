"""One run of a training job's containers, from start to the last exit.

A spot job may run several attempts; every other job runs one. An attempt starts every
host's container, follows its logs, feeds its Pipe channels, and then waits on a single
queue for whichever comes first: a container exit, a control signal (StopTrainingJob, a spot
interruption, the emulator shutting down) or a deadline (MaxRuntimeInSeconds,
MaxWaitTimeInSeconds, a scheduled interruption, the next checkpoint sync). Nothing polls the
engine in a loop: each container has a thread blocked in ``wait``.

When the attempt has to end early, every container gets SIGTERM and, after the grace period
(120 s on AWS), SIGKILL; a failed host makes the attempt end for its peers the same way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from emulator.runtime.spec import ContainerExit, ContainerSpec, RuntimeBackend, RuntimeError_
from emulator.jobs.hosts import Host

log = logging.getLogger(__name__)

# Outcomes of an attempt.
COMPLETED = "completed"
FAILED = "failed"
STOPPED = "stopped"
MAX_RUNTIME = "max_runtime"
MAX_WAIT = "max_wait"
INTERRUPTED = "interrupted"
SHUTDOWN = "shutdown"

# Control signals (what the service sends a running job).
SIGNAL_STOP = "stop"
SIGNAL_INTERRUPT = "interrupt"
SIGNAL_SHUTDOWN = "shutdown"
_SIGNAL_OUTCOMES = {SIGNAL_STOP: STOPPED, SIGNAL_INTERRUPT: INTERRUPTED, SIGNAL_SHUTDOWN: SHUTDOWN}


@dataclass
class AttemptResult:
    """How an attempt ended."""

    outcome: str
    exits: dict[str, ContainerExit] = field(default_factory=dict)
    """Host name -> how its container ended (hosts that never started are absent)."""
    failed_hosts: list[str] = field(default_factory=list)
    """Hosts that exited non-zero on their own, in the order they did."""
    container_ids: dict[str, str] = field(default_factory=dict)
    ran_seconds: float = 0.0


@dataclass(frozen=True)
class Deadlines:
    """Seconds from the attempt's start (None: no such limit)."""

    max_runtime: float | None
    interrupt_after: float | None = None
    max_wait: float | None = None
    checkpoint_every: float | None = None


class Attempt:
    """Runs the hosts' containers until they end or something ends them."""

    def __init__(
        self,
        backend: RuntimeBackend,
        hosts: list[tuple[Host, ContainerSpec]],
        control: queue.Queue[tuple[str, object]],
        grace_seconds: float,
        deadlines: Deadlines,
    ) -> None:
        self.backend = backend
        self.hosts = hosts
        self.control = control
        self.grace_seconds = grace_seconds
        self.deadlines = deadlines
        self.result = AttemptResult(outcome=COMPLETED)
        self._token = object()  # tells this attempt's exit messages from stale ones

    def start_containers(self, on_started: Callable[[Host, str], None]) -> None:
        """Create and start every host's container; ``on_started`` follows logs etc."""
        for host, spec in self.hosts:
            container_id = self.backend.start(spec)
            self.result.container_ids[host.name] = container_id
            on_started(host, container_id)
            threading.Thread(
                target=self._wait_for, args=(host.name, container_id), name=f"smemu-wait-{host.name}", daemon=True
            ).start()

    def _wait_for(self, host_name: str, container_id: str) -> None:
        try:
            exit_ = self.backend.wait(container_id)
        except RuntimeError_ as exc:
            log.warning("waiting for %s failed: %s", host_name, exc)
            exit_ = ContainerExit(exit_code=-1)
        self.control.put(("exit", (self._token, host_name, exit_)))

    def wait(self, on_tick: Callable[[], None] | None = None) -> AttemptResult:
        """Block until every container has exited; returns the outcome."""
        started = time.monotonic()
        pending = set(self.result.container_ids)
        next_tick = self.deadlines.checkpoint_every
        ending: str | None = None
        while pending:
            now = time.monotonic() - started
            limits = {
                MAX_RUNTIME: self.deadlines.max_runtime,
                INTERRUPTED: self.deadlines.interrupt_after,
                MAX_WAIT: self.deadlines.max_wait,
            }
            if ending is None:
                for outcome, limit in limits.items():
                    if limit is not None and now >= limit:
                        ending = self._end(outcome)
                        break
            if on_tick is not None and next_tick is not None and now >= next_tick:
                on_tick()
                next_tick = now + (self.deadlines.checkpoint_every or 0)
            upcoming = [v for v in limits.values() if v is not None] if ending is None else []
            if on_tick is not None and next_tick is not None:
                upcoming.append(next_tick)
            timeout = min(max(min(upcoming, default=now + 5.0) - now, 0.01), 5.0)
            try:
                kind, payload = self.control.get(timeout=timeout)
            except queue.Empty:
                continue
            if kind == "exit":
                token, host_name, exit_ = cast("tuple[object, str, ContainerExit]", payload)
                if token is not self._token or host_name not in pending:
                    continue
                pending.discard(host_name)
                self.result.exits[host_name] = exit_
                if (exit_.exit_code != 0 or exit_.oom_killed) and ending is None:
                    self.result.failed_hosts.append(host_name)
                    ending = self._end(FAILED)
            elif kind in _SIGNAL_OUTCOMES and (ending is None or kind == SIGNAL_SHUTDOWN):
                ending = self._end(_SIGNAL_OUTCOMES[kind], kill=kind == SIGNAL_SHUTDOWN)
        self.result.ran_seconds = time.monotonic() - started
        self.result.outcome = ending or COMPLETED
        return self.result

    def _end(self, outcome: str, kill: bool = False) -> str:
        """End every still-running container: SIGTERM then SIGKILL after the grace (or kill now)."""
        running = [cid for name, cid in self.result.container_ids.items() if name not in self.result.exits]
        for container_id in running:
            target = self.backend.kill if kill else self.backend.stop
            args = (container_id,) if kill else (container_id, self.grace_seconds)
            threading.Thread(target=self._quietly, args=(target, *args), daemon=True).start()
        return outcome

    @staticmethod
    def _quietly(action: Callable[..., None], *args: object) -> None:
        try:
            action(*args)
        except RuntimeError_ as exc:
            log.warning("ending a container failed: %s", exc)
