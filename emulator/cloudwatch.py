"""CloudWatch Logs as SageMaker writes them, straight into moto's in-process logs backend.

The platform writes container output where SageMaker puts it (``/aws/sagemaker/TrainingJobs``,
``/aws/sagemaker/Endpoints/<name>``, ...), so ``estimator.fit(logs=True)``, ``aws logs`` and
``smemu logs`` read it back through the ordinary CloudWatch Logs API on the edge port. Going
through the backend object rather than HTTP keeps a chatty container from costing a request
per line.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable

_lock = threading.Lock()


def _backend(account_id: str, region: str) -> Any:
    from moto.logs.models import logs_backends

    return logs_backends[account_id][region]


def _ensure_stream(backend: Any, group: str, stream: str) -> None:
    if group not in backend.groups:
        backend.create_log_group(group, {})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)


def put_log_lines(
    account_id: str,
    region: str,
    group: str,
    stream: str,
    lines: Iterable[tuple[float, str]],
) -> int:
    """Append ``(epoch seconds, message)`` lines to a stream, creating group and stream.

    Returns the number of events written. Empty messages are skipped (CloudWatch rejects them).
    """
    events = [
        {"timestamp": int(ts * 1000), "message": message}
        for ts, message in lines
        if message
    ]
    if not events:
        return 0
    backend = _backend(account_id, region)
    with _lock:
        _ensure_stream(backend, group, stream)
        backend.put_log_events(group, stream, events)
    return len(events)


def stream_name(prefix: str, started: float | None = None) -> str:
    """``<prefix>-<epoch seconds>``: the stream naming SageMaker uses for training hosts."""
    return f"{prefix}-{int(started if started is not None else time.time())}"


def read_lines(account_id: str, region: str, group: str, prefix: str, start: dict[str, int]) -> list[tuple[float, str]]:
    """New ``(epoch seconds, message)`` lines of every stream of ``group`` whose name starts with ``prefix``.

    ``start`` maps stream names to how many events were read before; it is advanced, so
    calling again returns only lines written since (the tuner follows its training jobs so).
    """
    backend = _backend(account_id, region)
    found: list[tuple[float, str]] = []
    with _lock:
        log_group = backend.groups.get(group)
        if log_group is None:
            return found
        for name, stream in list(log_group.streams.items()):
            if not name.startswith(prefix):
                continue
            events = list(stream.events)
            for event in events[start.get(name, 0):]:
                found.append((event.timestamp / 1000.0, event.message))
            start[name] = len(events)
    return sorted(found)
