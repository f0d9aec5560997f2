"""Endpoint container output -> CloudWatch Logs ``/aws/sagemaker/Endpoints/<name>``.

One follower thread per container reads its output through the runtime backend and queues
the lines; one shipper thread writes them in batches, so a chatty container costs one
CloudWatch write per batch instead of one per line, and nothing of this runs on the
invocation path. Streams are named as SageMaker names them: ``<variant>/<instance id>``,
plus ``/<container hostname>`` for multi-container models.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from emulator import cloudwatch

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25


def stream_name(variant: str, instance_id: str, hostname: str | None = None) -> str:
    """``<variant>/<instance id>`` or, for a container of a multi-container model, with ``/<hostname>``."""
    return f"{variant}/{instance_id}" + (f"/{hostname}" if hostname else "")


def last_event_seconds(account_id: str, region: str, group: str, stream: str) -> float | None:
    """Timestamp of the newest event already in a stream, so a re-adopted container's
    output (which the engine replays from the start) is not written twice."""
    try:
        from moto.logs.models import logs_backends

        events = logs_backends[account_id][region].groups[group].streams[stream].events
        return max(e.timestamp for e in events) / 1000.0 if events else None
    except (KeyError, AttributeError, ValueError):
        return None


@dataclass(frozen=True)
class _Destination:
    account_id: str
    region: str
    group: str
    stream: str


class LogShipper:
    """Follows containers and ships their lines to CloudWatch Logs in batches."""

    def __init__(self) -> None:
        self._queue: deque[tuple[_Destination, float, str]] = deque()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._ship_forever, name="endpoint-log-shipper", daemon=True)
        self._thread.start()

    def follow(
        self,
        backend: Any,
        container_id: str,
        account_id: str,
        region: str,
        group: str,
        stream: str,
        skip_until: float | None = None,
    ) -> None:
        """Start following one container (until it stops or the shipper stops).

        ``skip_until``: drop lines stamped at or before this epoch time (already shipped).
        """
        destination = _Destination(account_id, region, group, stream)
        thread = threading.Thread(
            target=self._follow,
            args=(backend, container_id, destination, skip_until),
            name=f"logs-{stream}",
            daemon=True,
        )
        thread.start()

    def _follow(
        self, backend: Any, container_id: str, destination: _Destination, skip_until: float | None
    ) -> None:
        try:
            for timestamp, line in backend.logs(container_id, follow=True):
                if self._stopped.is_set():
                    return
                if skip_until is not None and timestamp <= skip_until:
                    continue
                self._queue.append((destination, timestamp, line.rstrip("\n")))
                self._wake.set()
        except Exception:  # the container went away mid-read: nothing more to ship
            log.debug("log follower for %s ended", destination.stream, exc_info=True)

    def _ship_forever(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait()
            self._stopped.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write everything queued so far."""
        batches: dict[_Destination, list[tuple[float, str]]] = defaultdict(list)
        while True:
            try:
                destination, timestamp, line = self._queue.popleft()
            except IndexError:
                break
            batches[destination].append((timestamp, line))
        for destination, lines in batches.items():
            try:
                cloudwatch.put_log_lines(
                    destination.account_id, destination.region, destination.group, destination.stream, lines
                )
            except Exception:
                log.exception("shipping endpoint logs to %s failed", destination.stream)

    def stop(self) -> None:
        """Ship what is queued and stop following (containers keep running)."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
