"""The first describe after a Create may wait briefly, so a quick resource is seen settled there.

Clients poll long-running resources on fixed schedules built for AWS, where nothing settles in
seconds: botocore's waiters describe once and then sleep 30 s (endpoints), 60 s (processing,
transform) or 120 s (training); sagemaker-core (SDK v3 ``ModelTrainer.train``) describes at
once and then every 5 s; the SDK v2 log tailer describes a running training job every 30 s.
Here a trivial job ends in about a second and an endpoint is ready in about as long, so the
whole wait is the client's next sleep.

DESIGN.md decision 8, as built: after a Create (or an Update, Stop or DeleteEndpoint) of a job
or endpoint, the *first* Describe of that resource answers once its status has left its
transitional value (``InProgress``, ``Creating``, ``Updating``, ``Stopping``, ``Deleting``), or
after ``bound_seconds``, whichever comes first. Why the first describe and not the Create
itself (measured, benchmarks/sdk_flows.py): both SDKs sleep before their first describe (v2's
``fit()`` 5 s, v2's and v3's ``deploy()`` 30 s), and a resource usually settles within that
sleep; holding the Create would add the resource's whole start-up time to those calls and
``bound_seconds`` to every launch of a long job, while holding the first describe costs nothing
when the resource has settled by then and saves the client's next sleep when it has not.

Nothing else changes: the Create answers at once, the resource starts and runs exactly as
without the hold, its record (status, SecondaryStatusTransitions, every timestamp) is the same,
and every other describe, by the same caller or anyone else, answers at once with the real
status (``InProgress``, ``Starting``, ``Downloading``, ...). ``SMEMU_HOLD_SECONDS=0`` turns it
off. The hold calls the control plane's own Describe handler: it knows operations and statuses,
not how services store or run anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.context import CallContext
from emulator.polling import poll_until

Handler = Callable[[dict[str, Any], CallContext], Mapping[str, Any]]

MARK_TTL_SECONDS = 300.0
"""A first describe later than this after the change is answered at once: the resource was not quick."""


@dataclass(frozen=True)
class Watch:
    """What settling means after one operation."""

    describe: str
    """The Describe operation that shows the status."""
    name: str
    """The request member naming the resource (the Describe takes the same member)."""
    status: str
    """The status member of the Describe answer."""
    transitional: frozenset[str]
    """Statuses the first describe waits past."""


def _watch(describe: str, name: str, status: str, *transitional: str) -> Watch:
    return Watch(describe, name, status, frozenset(transitional))


_TRAINING = ("DescribeTrainingJob", "TrainingJobName", "TrainingJobStatus")
_PROCESSING = ("DescribeProcessingJob", "ProcessingJobName", "ProcessingJobStatus")
_TRANSFORM = ("DescribeTransformJob", "TransformJobName", "TransformJobStatus")
_TUNING = ("DescribeHyperParameterTuningJob", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus")
_ENDPOINT = ("DescribeEndpoint", "EndpointName", "EndpointStatus")

WATCHES: dict[str, Watch] = {
    "CreateTrainingJob": _watch(*_TRAINING, "InProgress"),
    "StopTrainingJob": _watch(*_TRAINING, "Stopping"),
    "CreateProcessingJob": _watch(*_PROCESSING, "InProgress"),
    "StopProcessingJob": _watch(*_PROCESSING, "Stopping"),
    "CreateTransformJob": _watch(*_TRANSFORM, "InProgress"),
    "StopTransformJob": _watch(*_TRANSFORM, "Stopping"),
    "CreateHyperParameterTuningJob": _watch(*_TUNING, "InProgress"),
    "StopHyperParameterTuningJob": _watch(*_TUNING, "Stopping"),
    "CreateEndpoint": _watch(*_ENDPOINT, "Creating"),
    "UpdateEndpoint": _watch(*_ENDPOINT, "Updating"),
    "UpdateEndpointWeightsAndCapacities": _watch(*_ENDPOINT, "Updating"),
    "DeleteEndpoint": _watch(*_ENDPOINT, "Deleting"),
}
"""Operations after which the resource's first describe may wait, and the status that must settle."""

DESCRIBES: dict[str, str] = {watch.describe: watch.name for watch in WATCHES.values()}
"""Describe operations that may be held, and the request member naming the resource."""


class StatusHold:
    """Remembers changed resources and holds the first describe of each until its status settles."""

    def __init__(self, bound_seconds: float, first_interval: float = 0.02, max_interval: float = 0.2) -> None:
        self.bound_seconds = bound_seconds
        """At most this long per first describe; 0 turns the hold off (SMEMU_HOLD_SECONDS)."""
        self.first_interval = first_interval
        self.max_interval = max_interval
        self._marks: dict[tuple[str, str], tuple[Watch, float]] = {}
        self._lock = threading.Lock()

    def changed(self, operation: str, request: Mapping[str, Any]) -> None:
        """Note a successful change: the resource's next first describe may be held."""
        watch = WATCHES.get(operation)
        name = request.get(watch.name) if watch is not None else None
        if watch is None or not name or self.bound_seconds <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._marks) > 256:
                self._marks = {k: v for k, v in self._marks.items() if v[1] > now}
            self._marks[(watch.describe, str(name).lower())] = (watch, now + MARK_TTL_SECONDS)

    def pending(self, describe: str, name: str) -> bool:
        """Whether the next describe of this resource would be held (not yet claimed)."""
        with self._lock:
            mark = self._marks.get((describe, name.lower()))
        return mark is not None and mark[1] > time.monotonic()

    def describe(self, operation: str, request: dict[str, Any], ctx: CallContext,
                 handler: Handler) -> Mapping[str, Any]:
        """Answer a Describe: at once, unless it is the first since a change and the status is transitional."""
        name = str(request.get(DESCRIBES.get(operation, ""), ""))
        with self._lock:
            mark = self._marks.pop((operation, name.lower()), None)
        answer = handler(request, ctx)
        if mark is None or mark[1] <= time.monotonic() or self.bound_seconds <= 0:
            return answer
        watch = mark[0]
        if answer.get(watch.status) not in watch.transitional:
            return answer
        latest = [answer]

        def settled() -> bool:
            latest[0] = handler(request, ctx)  # a deleted endpoint's ValidationException is its settled answer
            return latest[0].get(watch.status) not in watch.transitional

        poll_until(settled, self.bound_seconds, self.first_interval, backoff=2, max_interval=self.max_interval,
                   wait_first=True)
        return latest[0]
