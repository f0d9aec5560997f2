"""The training job state machine, without Docker or HTTP."""

from __future__ import annotations

import pytest

from emulator.training import lifecycle


def _new() -> dict:
    return lifecycle.start({}, now=100.0)


def test_happy_path_statuses_messages_and_times() -> None:
    record = _new()
    assert (record["TrainingJobStatus"], record["SecondaryStatus"]) == ("InProgress", "Starting")
    lifecycle.move(record, "Starting", 101.0, lifecycle.PREPARING_INSTANCES)  # same status: message only
    assert len(record["SecondaryStatusTransitions"]) == 1
    assert record["SecondaryStatusTransitions"][0]["StatusMessage"] == "Preparing the instances for training"
    for now, status in enumerate(["Downloading", "Training", "Uploading", "Completed"], start=102):
        lifecycle.move(record, status, float(now))
    transitions = record["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert [t["StatusMessage"] for t in transitions[1:]] == [
        "Downloading input data", "Training image download completed. Training in progress.",
        "Uploading generated training model", "Training job completed"]
    assert transitions[0]["EndTime"] == transitions[1]["StartTime"] == 102.0
    assert transitions[-1]["EndTime"] == transitions[-1]["StartTime"], "a final entry is closed at once"
    assert record["TrainingJobStatus"] == "Completed" and lifecycle.is_terminal(record)
    assert record["LastModifiedTime"] == 105.0


@pytest.mark.parametrize(("path", "primary"), [
    (["Downloading", "Training", "Stopping", "Stopped"], "Stopped"),
    (["Downloading", "Training", "Uploading", "MaxRuntimeExceeded"], "Stopped"),
    (["Downloading", "Training", "Interrupted", "MaxWaitTimeExceeded"], "Stopped"),
    (["Downloading", "Training", "Interrupted", "Starting", "Downloading", "Training", "Failed"], "Failed"),
    (["Failed"], "Failed"),
    (["Stopping", "Failed"], "Failed"),
])
def test_allowed_paths_end_in_their_primary_status(path: list[str], primary: str) -> None:
    record = _new()
    for status in path:
        lifecycle.move(record, status, 1.0)
    assert record["TrainingJobStatus"] == primary
    assert [t["Status"] for t in record["SecondaryStatusTransitions"]] == ["Starting", *path]


def test_forbidden_moves_and_terminal_states() -> None:
    record = _new()
    with pytest.raises(lifecycle.TransitionError):
        lifecycle.move(record, "Completed", 1.0)
    with pytest.raises(lifecycle.TransitionError):
        lifecycle.move(record, "NoSuchStatus", 1.0)
    lifecycle.move(record, "Failed", 2.0)
    assert not lifecycle.can_move(record, "Failed") and not lifecycle.can_move(record, "Starting")
    with pytest.raises(lifecycle.TransitionError):
        lifecycle.move(record, "Failed", 3.0)
    stopping = lifecycle.move(_new(), "Stopping", 1.0)
    assert not lifecycle.can_move(stopping, "Uploading"), "a stop wins over the runner's next step"


def test_stop_refusal_and_finish_times() -> None:
    record = _new()
    assert lifecycle.stop_refusal(record) is None
    lifecycle.move(record, "Stopping", 1.0)
    assert lifecycle.stop_refusal(record) == "The request was rejected because the training job is in status Stopping."
    record["TrainingStartTime"] = 10.0
    lifecycle.finish(record, 10.2)
    assert (record["TrainingTimeInSeconds"], record["BillableTimeInSeconds"]) == (1, 1)
    lifecycle.finish(record, 70.0, billable_seconds=25.4)
    assert (record["TrainingTimeInSeconds"], record["BillableTimeInSeconds"], record["TrainingEndTime"]) == (60, 25, 70.0)
    never_started = lifecycle.finish(_new(), 5.0)
    assert "TrainingTimeInSeconds" not in never_started and never_started["TrainingEndTime"] == 5.0


def test_every_secondary_status_has_a_primary_and_an_exit_table() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    enum = set(model.shape_for("SecondaryStatus").enum)
    assert set(lifecycle.PRIMARY) <= enum
    assert set(lifecycle.PRIMARY.values()) <= set(model.shape_for("TrainingJobStatus").enum)
    assert {s for targets in lifecycle.ALLOWED.values() for s in targets} <= set(lifecycle.PRIMARY)
