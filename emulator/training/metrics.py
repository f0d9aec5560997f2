"""``AlgorithmSpecification.MetricDefinitions``: regexes over the job's log lines.

SageMaker scans every stdout/stderr line of every host with each definition's regex; the
first capture group (or the whole match when the regex has none) is the value. The last
numeric value of each metric becomes its ``FinalMetricDataList`` entry (DOC training-metrics).
A value that is not a number is skipped, as it could not be a metric's float. Every value is
also kept for CloudWatch (namespace ``/aws/sagemaker/TrainingJobs``, dimension
``TrainingJobName``, where SageMaker publishes them and the SDK's TrainingJobAnalytics reads
them); the job's log flusher puts them there with :func:`publish_series`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from typing import Any

log = logging.getLogger(__name__)


class MetricCollector:
    """Applies the job's metric regexes to log lines and keeps each metric's last value."""

    def __init__(self, definitions: list[dict[str, Any]]) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for definition in definitions:
            try:
                self._patterns.append((str(definition["Name"]), re.compile(str(definition["Regex"]))))
            except re.error as exc:  # AWS accepts the request too; the metric just never matches
                log.warning("metric %s: regex %r does not compile: %s", definition.get("Name"),
                            definition.get("Regex"), exc)
        self._latest: dict[str, tuple[float, float]] = {}
        self._series: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def feed(self, timestamp: float, line: str) -> None:
        """Look for every metric in one log line."""
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if match is None:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if math.isnan(value) or math.isinf(value):
                continue
            with self._lock:
                self._latest[name] = (value, timestamp)
                self._series.append((name, value, timestamp))

    def take_series(self) -> list[tuple[str, float, float]]:
        """``(metric, value, epoch seconds)`` of every match since the last call, in order."""
        with self._lock:
            taken, self._series = self._series, []
        return taken

    def final_metrics(self) -> list[dict[str, Any]]:
        """``FinalMetricDataList``: each metric's last value, in definition order."""
        with self._lock:
            latest = dict(self._latest)
        seen: list[str] = []
        for name, _ in self._patterns:
            if name in latest and name not in seen:
                seen.append(name)
        return [{"MetricName": n, "Value": latest[n][0], "Timestamp": latest[n][1]} for n in seen]


METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"


def publish_series(collector: MetricCollector, account_id: str, region: str, job_name: str) -> None:
    """Put the values matched since the last call into CloudWatch metrics (dimension TrainingJobName)."""
    series = collector.take_series()
    if series:
        from emulator import cloudwatch

        dimensions = {"TrainingJobName": job_name}
        cloudwatch.put_metric_values(account_id, region, METRIC_NAMESPACE,
                                     [(name, value, ts, dimensions) for name, value, ts in series])
