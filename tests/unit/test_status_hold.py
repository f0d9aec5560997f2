"""The status hold's rules with a fake Describe (emulator/gateway/hold.py) and its place in the control plane."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.context import CallContext
from emulator.errors import ValidationException
from emulator.gateway.control import ControlPlane
from emulator.gateway.hold import StatusHold

CTX = CallContext(region="us-east-1", account_id="123456789012")


class Statuses:
    """A Describe handler answering the given statuses in turn (the last one forever)."""

    def __init__(self, *statuses: str | Exception) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, operation: str, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self.calls.append((operation, request))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, Exception):
            raise status
        return {"TrainingJobStatus": status, "EndpointStatus": status}


def test_waits_until_the_status_leaves_its_transitional_value() -> None:
    describe = Statuses("InProgress", "InProgress", "Completed")
    StatusHold(30, first_interval=0.001).settle("CreateTrainingJob", {"TrainingJobName": "j"}, CTX, describe)
    assert describe.calls == [("DescribeTrainingJob", {"TrainingJobName": "j"})] * 3


def test_gives_up_at_the_bound() -> None:
    describe = Statuses("Creating")
    StatusHold(0.05, first_interval=0.001).settle("CreateEndpoint", {"EndpointName": "e"}, CTX, describe)
    assert 1 < len(describe.calls) and {c[0] for c in describe.calls} == {"DescribeEndpoint"}


def test_a_resource_that_is_gone_ends_the_wait() -> None:
    describe = Statuses("Deleting", ValidationException("Could not find endpoint"))
    StatusHold(30, first_interval=0.001).settle("DeleteEndpoint", {"EndpointName": "e"}, CTX, describe)
    assert len(describe.calls) == 2


def test_off_or_unwatched_operations_never_describe() -> None:
    describe = Statuses("InProgress")
    StatusHold(0).settle("CreateTrainingJob", {"TrainingJobName": "j"}, CTX, describe)
    StatusHold(30).settle("CreateModel", {"ModelName": "m"}, CTX, describe)
    assert describe.calls == []


class Service:
    def __init__(self) -> None:
        self.status = "InProgress"

    def create_training_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        if request.get("bad"):
            raise ValidationException("bad request")
        return {"TrainingJobArn": "arn"}

    def describe_training_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        status, self.status = self.status, "Completed"
        return {"TrainingJobStatus": status}


def test_the_control_plane_holds_after_the_handler_and_not_after_an_error() -> None:
    service = Service()
    control = ControlPlane([service], ["CreateTrainingJob", "DescribeTrainingJob"],
                           hold=StatusHold(30, first_interval=0.001))
    assert control.call("CreateTrainingJob", {"TrainingJobName": "j"}, CTX) == {"TrainingJobArn": "arn"}
    assert service.status == "Completed"  # described until it settled
    service.status = "InProgress"
    with pytest.raises(ValidationException):
        control.call("CreateTrainingJob", {"TrainingJobName": "j", "bad": True}, CTX)
    assert service.status == "InProgress"  # an error is answered at once
