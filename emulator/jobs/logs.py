"""Container output to CloudWatch Logs, one stream per host, as the SageMaker SDK expects.

Shared by every kind of job; each names its group (``/aws/sagemaker/TrainingJobs``,
``/aws/sagemaker/ProcessingJobs``, ``/aws/sagemaker/TransformJobs``). Streams are
``<job>/<host>-<epoch seconds>`` (for training the epoch of the host's first start; a spot
restart keeps writing to the same stream, so the SDK's tailer, which expects exactly one
stream per host, keeps following it). Each host has a reader thread on the runtime's log
stream; lines are batched and written by one flusher thread per job, so a chatty container
costs one write per batch and a quiet one still shows up within a fraction of a second.
Every line also goes through the job's metric regexes, when it has any.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from emulator import cloudwatch
from emulator.runtime.spec import RuntimeBackend, RuntimeError_

log = logging.getLogger(__name__)

_FLUSH_SECONDS = 0.25
_MAX_BATCH = 5000

LogSource = Callable[[], Iterator[tuple[float, str]]]


class LineObserver(Protocol):
    """Sees every log line (a training job's MetricDefinitions regexes)."""

    def feed(self, timestamp: float, line: str) -> None: ...


def stream_for(job_name: str, host_name: str, started: float) -> str:
    """``<job>/<host>-<epoch seconds>`` (``<host>``: ``algo-<n>``, or a transform instance id)."""
    return cloudwatch.stream_name(f"{job_name}/{host_name}", started)


class JobLogs:
    """Collects every host's lines and writes them to CloudWatch Logs in batches."""

    def __init__(
        self, account_id: str, region: str, metrics: LineObserver | None, group: str,
        on_flush: Callable[[], None] | None = None,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.metrics = metrics
        self.group = group
        """The CloudWatch Logs group, e.g. ``/aws/sagemaker/ProcessingJobs``."""
        self.on_flush = on_flush
        """Called after every flush (a training job puts its metric values into CloudWatch then)."""
        self._buffers: dict[str, list[tuple[float, str]]] = {}
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="smemu-logs-flush", daemon=True)
        self._flusher.start()

    def follow(self, stream: str, source: LogSource) -> None:
        """Start a reader thread that copies ``source``'s lines into ``stream`` until it ends."""
        with self._lock:
            self._buffers.setdefault(stream, [])
        reader = threading.Thread(target=self._read, args=(stream, source), name="smemu-logs-read", daemon=True)
        self._readers.append(reader)
        reader.start()

    def add_line(self, stream: str, line: str) -> None:
        """A line from the platform itself (not a container) into a host's stream."""
        self._append(stream, time.time(), line)

    def _append(self, stream: str, timestamp: float, line: str) -> None:
        with self._lock:
            self._buffers.setdefault(stream, []).append((timestamp, line))

    def _read(self, stream: str, source: LogSource) -> None:
        try:
            for timestamp, line in source():
                if self.metrics is not None:
                    self.metrics.feed(timestamp, line)
                self._append(stream, timestamp, line)
        except Exception:  # the job must finish even if a log stream breaks
            log.exception("reading logs for %s failed", stream)

    def wait_readers(self, timeout: float = 10.0) -> None:
        """Wait until every reader has seen its container's last line."""
        deadline = time.monotonic() + timeout
        for reader in list(self._readers):
            reader.join(max(0.0, deadline - time.monotonic()))

    def flush(self) -> None:
        """Write every buffered line now."""
        with self._lock:
            batches = {s: lines for s, lines in self._buffers.items() if lines}
            for stream in batches:
                self._buffers[stream] = []
        for stream, lines in batches.items():
            for start in range(0, len(lines), _MAX_BATCH):
                try:
                    cloudwatch.put_log_lines(self.account_id, self.region, self.group, stream,
                                             lines[start : start + _MAX_BATCH])
                except Exception:
                    log.exception("writing %d log lines to %s failed", len(lines), stream)
        if self.on_flush is not None:
            try:
                self.on_flush()
            except Exception:
                log.exception("after writing the logs of %s", self.group)

    def _flush_loop(self) -> None:
        while not self._stop.wait(_FLUSH_SECONDS):
            self.flush()

    def close(self) -> None:
        """Wait for the readers, write what is left and stop the flusher."""
        self.wait_readers()
        self._stop.set()
        self._flusher.join(2.0)
        self.flush()



def release(backend: RuntimeBackend, labels: dict[str, str], logs: JobLogs | None, work: Path, what: str) -> None:
    """The end of any job: remove its containers, networks and volumes, finish its logs, delete its scratch.

    Failures are logged, never raised, so the job still gets its terminal status.
    """
    try:
        backend.remove_labelled(labels)
    except RuntimeError_ as exc:
        log.warning("removing the containers of %s failed: %s", what, exc)
    if logs is not None:
        try:
            logs.close()
        except Exception:
            log.exception("closing the logs of %s failed", what)
    shutil.rmtree(work, ignore_errors=True)
