"""The SageMaker control plane: ``X-Amz-Target: SageMaker.<Op>`` -> a platform operation.

Handlers are found by name: an operation ``CreateTrainingJob`` is served by the first
registered service object with a method ``create_training_job(request, ctx)``. There is no
route table to keep in step with botocore's model. An operation no service implements, or
whose handler raises :class:`NotImplementedError` (for example a tag call on an ARN the
platform does not own), is stored by moto or refused, as coverage.py decides.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from botocore import xform_name

from emulator.context import CallContext
from emulator.gateway.hold import DESCRIBES, StatusHold

Handler = Callable[[dict[str, Any], CallContext], Mapping[str, Any]]


class ControlPlane:
    """Dispatch table from operation names to platform handlers."""

    def __init__(self, services: Iterable[object], operation_names: Iterable[str],
                 hold: StatusHold | None = None) -> None:
        self.hold = hold
        """Holds the first describe after a Create/Update/Stop until the resource's status settles (hold.py)."""
        self._handlers: dict[str, Handler] = {}
        services = list(services)
        for operation in operation_names:
            method = xform_name(operation)
            for service in services:
                handler = getattr(service, method, None)
                if callable(handler):
                    self._handlers[operation] = handler
                    break

    def handles(self, operation: str) -> bool:
        """Whether the platform executes this operation (else moto stores it, or it is refused)."""
        return operation in self._handlers

    @property
    def operations(self) -> list[str]:
        """The operations the platform executes, sorted."""
        return sorted(self._handlers)

    def call(self, operation: str, request: dict[str, Any], ctx: CallContext) -> Mapping[str, Any]:
        """Run one operation. Raises ServiceError subclasses, or NotImplementedError to fall through."""
        handler = self._handlers[operation]
        if self.hold is None:
            return handler(request, ctx)
        if operation in DESCRIBES:
            return self.hold.describe(operation, request, ctx, handler)
        result = handler(request, ctx)
        self.hold.changed(operation, request)
        return result
