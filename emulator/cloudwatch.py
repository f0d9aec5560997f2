"""CloudWatch Logs as SageMaker writes them, straight into moto's in-process logs backend.

The platform writes container output where SageMaker puts it (``/aws/sagemaker/TrainingJobs``,
``/aws/sagemaker/Endpoints/<name>``, ...), so ``estimator.fit(logs=True)``, ``aws logs`` and
``smemu logs`` read it back through the ordinary CloudWatch Logs API on the edge port. Going
through the backend object rather than HTTP keeps a chatty container from costing a request
per line. Each batch is journaled (emulator/awsstate) as the direct write ``logs.put_log_events``,
so logs survive a restart like everything else moto keeps.
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
    from emulator.awsstate import direct_write

    direct_write("logs.put_log_events", {"account_id": account_id, "region": region, "group": group,
                                         "stream": stream, "events": events})
    return len(events)


def apply_log_events(account_id: str, region: str, group: str, stream: str, events: list[dict[str, Any]]) -> None:
    """The write itself (also what a replay of the journal calls): group and stream made when missing."""
    backend = _backend(account_id, region)
    with _lock:
        _ensure_stream(backend, group, stream)
        backend.put_log_events(group, stream, events)


def stream_name(prefix: str, started: float | None = None) -> str:
    """``<prefix>-<epoch seconds>``: the stream naming SageMaker uses for training hosts."""
    return f"{prefix}-{int(started if started is not None else time.time())}"
