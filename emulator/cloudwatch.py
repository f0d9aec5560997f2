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
from collections.abc import Iterable
from typing import Any, NamedTuple

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
    The events of one call are put in time order, as PutLogEvents requires: a container's stdout
    and stderr, or its lines and the platform's own, may arrive slightly out of order, and one
    event out of place would make CloudWatch refuse the whole batch.
    """
    events = sorted(
        ({"timestamp": int(ts * 1000), "message": message} for ts, message in lines if message),
        key=lambda event: event["timestamp"],
    )
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


# -- reading logs back, and metrics (the dashboard's and `smemu logs`' sources) -------------------


def stream_names(account_id: str, region: str, group: str, prefix: str = "") -> list[str]:
    """Names of the streams of ``group`` that start with ``prefix`` (none when the group does not exist)."""
    backend = _backend(account_id, region)
    with _lock:
        found = backend.groups.get(group)
        names = list(found.streams) if found is not None else []
    return sorted(name for name in names if name.startswith(prefix))


def read_events(
    account_id: str, region: str, group: str, stream: str, start: int = 0, limit: int = 1000
) -> list[tuple[float, str]]:
    """Events ``start`` .. ``start + limit`` of a stream, as ``(epoch seconds, message)``, in write order."""
    backend = _backend(account_id, region)
    with _lock:
        found = backend.groups.get(group)
        log_stream = found.streams.get(stream) if found is not None else None
        events = log_stream.events[start : start + limit] if log_stream is not None else []
    return [(event.timestamp / 1000.0, str(event.message)) for event in events]


def _cloudwatch(account_id: str, region: str) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account_id][region]


def put_metric_values(
    account_id: str,
    region: str,
    namespace: str,
    values: Iterable[tuple[str, float, float, dict[str, str]]],
) -> None:
    """Put ``(metric name, value, epoch seconds, dimensions)`` datapoints into CloudWatch metrics.

    Journaled (emulator/awsstate) as the direct write ``cloudwatch.put_metric_values``.
    """
    from emulator.awsstate import direct_write

    points = [[name, value, ts, dict(dims)] for name, value, ts, dims in values]
    if points:
        direct_write("cloudwatch.put_metric_values", {"account_id": account_id, "region": region,
                                                      "namespace": namespace, "points": points})


def apply_metric_values(account_id: str, region: str, namespace: str, points: list[list[Any]]) -> None:
    """The write itself (also what a replay of the journal calls)."""
    import datetime as dt

    data = [
        {
            "MetricName": name,
            "Value": value,
            "Timestamp": dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None),
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())],
        }
        for name, value, ts, dims in points
    ]
    _cloudwatch(account_id, region).put_metric_data(namespace, data)


class MetricPoint(NamedTuple):
    """One datapoint: a single value, or a statistic set counted as its samples."""

    name: str
    dimensions: dict[str, str]
    timestamp: float
    mean: float
    samples: float
    unit: str

    @property
    def total(self) -> float:
        """The sum of the samples (``mean * samples``)."""
        return self.mean * self.samples


def metric_points(account_id: str, region: str, namespace: str, dimensions: dict[str, str]) -> list[MetricPoint]:
    """Every datapoint in ``namespace`` carrying ``dimensions``, oldest first."""
    import datetime as dt

    points = []
    for datum in list(_cloudwatch(account_id, region).metric_data):
        if datum.namespace != namespace:
            continue
        dims = {d.name: d.value for d in datum.dimensions}
        if any(dims.get(k) != v for k, v in dimensions.items()):
            continue
        stamp = datum.timestamp
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        count = float(getattr(datum, "sample_count", 1.0)) or 1.0
        mean = float(datum.sum) / count if hasattr(datum, "sum") else float(getattr(datum, "value", 0.0))
        points.append(MetricPoint(str(datum.name), dims, stamp.timestamp(), mean, count, str(datum.unit or "None")))
    points.sort(key=lambda p: p.timestamp)
    return points
