"""The status hold's rules with fake handlers (emulator/gateway/hold.py) and its place in the control plane."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.context import CallContext
from emulator.errors import ValidationException
from emulator.gateway.control import ControlPlane
from emulator.gateway.hold import StatusHold

CTX = CallContext(region="us-east-1", account_id="123456789012")
JOB = {"TrainingJobName": "Job"}


class Statuses:
    """A Describe handler answering the given statuses in turn (the last one forever)."""

    def __init__(self, *statuses: str | Exception) -> None:
        self.statuses = list(statuses)
        self.calls = 0

    def __call__(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self.calls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, Exception):
            raise status
        return {"TrainingJobStatus": status, "EndpointStatus": status}


def _hold(bound: float = 30) -> StatusHold:
    return StatusHold(bound, first_interval=0.001)


def test_the_first_describe_after_a_create_waits_for_the_status_to_settle() -> None:
    hold, describe = _hold(), Statuses("InProgress", "InProgress", "Completed")
    hold.changed("CreateTrainingJob", JOB)
    assert hold.pending("DescribeTrainingJob", "job")
    assert hold.describe("DescribeTrainingJob", {"TrainingJobName": "JOB"}, CTX, describe)["TrainingJobStatus"] == \
        "Completed"
    assert describe.calls == 3 and not hold.pending("DescribeTrainingJob", "job")


def test_later_describes_answer_at_once_with_the_real_status() -> None:
    hold = _hold()
    hold.changed("CreateTrainingJob", JOB)
    hold.describe("DescribeTrainingJob", JOB, CTX, Statuses("Completed"))
    describe = Statuses("InProgress", "Completed")
    assert hold.describe("DescribeTrainingJob", JOB, CTX, describe)["TrainingJobStatus"] == "InProgress"
    assert describe.calls == 1


def test_gives_up_at_the_bound() -> None:
    hold, describe = _hold(0.05), Statuses("Creating")
    hold.changed("CreateEndpoint", {"EndpointName": "e"})
    assert hold.describe("DescribeEndpoint", {"EndpointName": "e"}, CTX, describe)["EndpointStatus"] == "Creating"
    assert describe.calls > 1


def test_a_deleted_endpoint_answers_with_its_error() -> None:
    hold = _hold()
    hold.changed("DeleteEndpoint", {"EndpointName": "e"})
    with pytest.raises(ValidationException):
        hold.describe("DescribeEndpoint", {"EndpointName": "e"}, CTX,
                      Statuses("Deleting", ValidationException("Could not find endpoint")))


def test_off_or_unwatched_operations_are_never_held() -> None:
    off = _hold(0)
    off.changed("CreateTrainingJob", JOB)
    assert not off.pending("DescribeTrainingJob", "Job")
    on = _hold()
    on.changed("CreateModel", {"ModelName": "m"})
    on.changed("CreateTrainingJob", {})
    assert on._marks == {}


class Service:
    def __init__(self) -> None:
        self.statuses = ["InProgress", "Completed"]
        self.describes = 0

    def create_training_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        if request.get("bad"):
            raise ValidationException("bad request")
        return {"TrainingJobArn": "arn"}

    def describe_training_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self.describes += 1
        return {"TrainingJobStatus": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}


def test_the_control_plane_answers_the_create_at_once_and_holds_the_first_describe() -> None:
    service = Service()
    control = ControlPlane([service], ["CreateTrainingJob", "DescribeTrainingJob"], hold=_hold())
    assert control.call("CreateTrainingJob", JOB, CTX) == {"TrainingJobArn": "arn"}
    assert service.describes == 0  # the Create itself waits for nothing
    assert control.call("DescribeTrainingJob", JOB, CTX) == {"TrainingJobStatus": "Completed"}
    with pytest.raises(ValidationException):
        control.call("CreateTrainingJob", {**JOB, "bad": True}, CTX)
    assert not control.hold.pending("DescribeTrainingJob", "Job")  # a refused Create marks nothing
