"""CloudWatch metrics of multi-model endpoints, where SageMaker publishes them.

SageMaker publishes, per endpoint and variant (dimensions ``EndpointName``, ``VariantName``,
namespace ``AWS/SageMaker``; developer guide "CloudWatch Metrics for Multi-Model Endpoint
Deployments"): ``ModelCacheHit`` (1 per invocation whose model was loaded, 0 otherwise; the
Average is the hit ratio), ``ModelLoadingWaitTime``, ``ModelDownloadingTime``,
``ModelLoadingTime``, ``ModelUnloadingTime`` (microseconds) and ``LoadedModelCount`` (per
instance). The emulator aggregates datapoints in memory and puts them, as StatisticValues,
into the CloudWatch service on its own edge port (moto) about once a second, from one
background thread started on first use. Publishing is best-effort: a failure is logged and
the datapoints are dropped, never slowing an invocation down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
_BATCH = 20

Key = tuple[str, str, str, str, str]
"""``(region, endpoint, variant, metric, unit)``."""
Gauge = tuple[str, str, str, str, float]
"""``(region, endpoint, variant, metric, value)`` sampled at each flush (unit None)."""


class MetricsPublisher:
    """Aggregates datapoints and puts them into CloudWatch periodically."""

    def __init__(
        self,
        client_for: Callable[[str], Any],
        interval: float = 1.0,
        gauges: Callable[[], list[Gauge]] | None = None,
    ) -> None:
        self.client_for = client_for
        """A CloudWatch client for a region."""
        self.interval = interval
        self.gauges = gauges
        self._pending: dict[Key, list[float]] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, region: str, endpoint: str, variant: str, metric: str, value: float, unit: str) -> None:
        """One datapoint (aggregated with others of the same metric until the next flush)."""
        key = (region, endpoint, variant, metric, unit)
        with self._lock:
            found = self._pending.get(key)
            if found is None:
                self._pending[key] = [1.0, value, value, value]
            else:
                found[0] += 1
                found[1] += value
                found[2] = min(found[2], value)
                found[3] = max(found[3], value)
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(target=self._run, name="mme-metrics", daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Put everything pending (and the gauges); returns how many metric datums were sent."""
        for region, endpoint, variant, metric, value in self.gauges() if self.gauges else []:
            self.record(region, endpoint, variant, metric, value, "None")
        with self._lock:
            pending, self._pending = self._pending, {}
        by_region: dict[str, list[dict[str, Any]]] = {}
        now = time.time()
        for (region, endpoint, variant, metric, unit), (count, total, low, high) in pending.items():
            by_region.setdefault(region, []).append(
                {
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": variant},
                    ],
                    "Timestamp": now,
                    "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
                    "Unit": unit,
                }
            )
        sent = 0
        for region, data in by_region.items():
            try:
                client = self._clients.get(region)
                if client is None:  # making a boto3 client costs 0.1-0.3 s: once per region
                    client = self._clients[region] = self.client_for(region)
                for start in range(0, len(data), _BATCH):
                    client.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + _BATCH])
                    sent += len(data[start : start + _BATCH])
            except Exception as exc:  # noqa: BLE001 - metrics are best-effort
                log.debug("publishing multi-model metrics to CloudWatch failed: %s", exc)
        return sent

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.flush()

    def stop(self) -> None:
        """Stop the background thread after a last flush."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self.flush()
