"""The endpoint state machine, as plain data (research/inference-contract.md §5.4).

::

    CreateEndpoint -> Creating --(every container passes /ping)--> InService
                              \\--(download, image, ping failure)--> Failed (FailureReason)
    InService --UpdateEndpoint / UpdateEndpointWeightsAndCapacities--> Updating --> InService
    Updating --(new fleet fails)--> InService on the old config, with FailureReason
    InService | Updating --(containers vanished, e.g. the engine restarted)--> SystemUpdating
    SystemUpdating --> InService | Failed
    any --DeleteEndpoint--> Deleting --> (gone: DescribeEndpoint -> ValidationException)

Nothing here does I/O; the deployer asks :func:`check` before every status change, so an
impossible move (say, a bring-up finishing after DeleteEndpoint) is refused in one place.
"""

from __future__ import annotations

from enum import Enum


class EndpointStatus(str, Enum):
    """``EndpointStatus`` values of the botocore model."""

    OUT_OF_SERVICE = "OutOfService"
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"


S = EndpointStatus

TRANSITIONS: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    S.CREATING: frozenset({S.IN_SERVICE, S.FAILED, S.DELETING}),
    S.IN_SERVICE: frozenset({S.UPDATING, S.SYSTEM_UPDATING, S.DELETING}),
    S.UPDATING: frozenset({S.IN_SERVICE, S.ROLLING_BACK, S.SYSTEM_UPDATING, S.DELETING}),
    S.ROLLING_BACK: frozenset({S.IN_SERVICE, S.UPDATE_ROLLBACK_FAILED, S.DELETING}),
    S.SYSTEM_UPDATING: frozenset({S.IN_SERVICE, S.FAILED, S.DELETING}),
    S.FAILED: frozenset({S.DELETING}),
    S.UPDATE_ROLLBACK_FAILED: frozenset({S.DELETING}),
    S.OUT_OF_SERVICE: frozenset({S.DELETING, S.SYSTEM_UPDATING}),
    S.DELETING: frozenset(),
}
"""Allowed moves; a status maps to the statuses it may become."""

#: Statuses in which the endpoint has a fleet that answers invocations.
SERVING = frozenset({S.IN_SERVICE, S.UPDATING, S.SYSTEM_UPDATING, S.ROLLING_BACK})

#: Statuses in which work is under way; UpdateEndpoint is refused then.
IN_PROGRESS = frozenset({S.CREATING, S.UPDATING, S.SYSTEM_UPDATING, S.ROLLING_BACK, S.DELETING})


class InvalidTransition(Exception):
    """A status change the state machine does not allow."""

    def __init__(self, current: EndpointStatus, wanted: EndpointStatus) -> None:
        super().__init__(f"an endpoint cannot go from {current.value} to {wanted.value}")
        self.current = current
        self.wanted = wanted


def can_move(current: EndpointStatus | str, wanted: EndpointStatus | str) -> bool:
    """Whether ``current -> wanted`` is an allowed move."""
    return EndpointStatus(wanted) in TRANSITIONS[EndpointStatus(current)]


def check(current: EndpointStatus | str, wanted: EndpointStatus | str) -> EndpointStatus:
    """The new status, or :class:`InvalidTransition` when the move is not allowed."""
    now, then = EndpointStatus(current), EndpointStatus(wanted)
    if then not in TRANSITIONS[now]:
        raise InvalidTransition(now, then)
    return then


def can_update(current: EndpointStatus | str) -> bool:
    """UpdateEndpoint and UpdateEndpointWeightsAndCapacities need an InService endpoint."""
    return EndpointStatus(current) is S.IN_SERVICE


def can_delete(current: EndpointStatus | str) -> bool:
    """DeleteEndpoint is accepted in every status but Deleting (it cancels work in progress)."""
    return EndpointStatus(current) is not S.DELETING


def after_failed_update() -> EndpointStatus:
    """A failed update leaves the endpoint serving its old configuration (§5.3)."""
    return S.IN_SERVICE
