"""A Create call may hold its answer briefly, so a quick resource is seen settled at the first describe.

Clients poll long-running resources on fixed schedules built for AWS, where nothing settles in
seconds: botocore's waiters describe once and then sleep 30 s (endpoints), 60 s (processing,
transform) or 120 s (training); sagemaker-core's ``wait()`` (SDK v3 ``ModelTrainer.train``)
describes every 5 s; the SDK v2 log tailer describes a training job every 30 s once it has
seen it running. Here a trivial job ends in about a second and an endpoint is ready in
about as long, so the whole wait is the client's sleep.

DESIGN.md decision 8: a Create (and an Update, Stop or DeleteEndpoint) of a resource with a
status answers once that status has left its transitional value (``InProgress``,
``Creating``, ``Updating``, ``Stopping``, ``Deleting``), or when ``bound_seconds`` have passed,
whichever comes first. Nothing else changes: the resource is created and starts exactly as
without the hold, its record (status, SecondaryStatusTransitions, every timestamp) is the same,
and any other caller describing it meanwhile sees the real sequence (``InProgress``,
``Starting``, ``Downloading``, ...). The caller of the Create simply gets its answer later.
``SMEMU_HOLD_SECONDS=0`` turns it off.

The cost: the Create of a resource that takes longer than the bound answers ``bound_seconds``
late, which delays a script that launches many long jobs one after another. The default bound
is small for that reason (config.py).

The hold asks the control plane's own Describe handlers, so it knows operations and statuses,
not how services store or run anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.context import CallContext
from emulator.errors import ServiceError

Describe = Callable[[str, dict[str, Any], CallContext], Mapping[str, Any]]
"""``(Describe operation, request, ctx) -> answer``: the control plane's own handler."""


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
    """Statuses the hold waits past."""


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
"""Operations whose answer may be held, and the status that must settle first."""


class StatusHold:
    """Waits, after a successful operation of :data:`WATCHES`, for its resource's status to settle."""

    def __init__(self, bound_seconds: float, first_interval: float = 0.02, max_interval: float = 0.2) -> None:
        self.bound_seconds = bound_seconds
        """At most this long per call; 0 turns the hold off (SMEMU_HOLD_SECONDS)."""
        self.first_interval = first_interval
        self.max_interval = max_interval

    def settle(self, operation: str, request: Mapping[str, Any], ctx: CallContext, describe: Describe) -> None:
        """Return once the resource's status is no longer transitional, it is gone, or the bound has passed."""
        watch = WATCHES.get(operation)
        if watch is None or self.bound_seconds <= 0 or not request.get(watch.name):
            return
        deadline = time.monotonic() + self.bound_seconds
        interval = self.first_interval
        while True:
            try:
                status = describe(watch.describe, {watch.name: request[watch.name]}, ctx).get(watch.status)
            except ServiceError:  # gone (a deleted endpoint): nothing left to wait for
                return
            now = time.monotonic()
            if status not in watch.transitional or now >= deadline:
                return
            time.sleep(min(interval, deadline - now))
            interval = min(interval * 2, self.max_interval)
