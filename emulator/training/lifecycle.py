"""The training job state machine: statuses, secondary statuses and their messages.

Pure data plus functions over a job record (the DescribeTrainingJob dict), tested without
Docker. The runner decides *when* a job moves; this module decides *whether* it may, what
the primary status becomes, and what SecondaryStatusTransitions look like afterwards.

How SageMaker reports it (research/training-contract.md §4):

* the primary ``TrainingJobStatus`` follows from the secondary one (``PRIMARY``);
* every visit of a secondary status is one entry of ``SecondaryStatusTransitions`` with
  ``StartTime``, ``StatusMessage`` and, once left, ``EndTime`` (a spot restart visits
  Starting again, so the list can hold a status twice);
* the message of the current entry may change without a new entry (Starting: "Starting the
  training job", then "Preparing the instances for training"); the SageMaker SDK prints a
  line each time the last entry's message changes.

Typical paths::

    Starting -> Downloading -> Training -> Uploading -> Completed
    ... -> Training -> Failed
    ... -> Training -> Stopping -> Stopped                      (StopTrainingJob)
    ... -> Training -> Uploading -> MaxRuntimeExceeded          (primary: Stopped)
    ... -> Training -> Interrupted -> Starting -> ... -> Completed   (spot)
    ... -> Interrupted -> MaxWaitTimeExceeded                   (primary: Stopped)
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
FAILED = "Failed"
STOPPING = "Stopping"
STOPPED = "Stopped"

#: The primary status each secondary status belongs to (botocore's SecondaryStatus docs).
PRIMARY: dict[str, str] = {
    "Starting": IN_PROGRESS,
    "Pending": IN_PROGRESS,
    "Downloading": IN_PROGRESS,
    "Training": IN_PROGRESS,
    "Interrupted": IN_PROGRESS,
    "Uploading": IN_PROGRESS,
    "Restarting": IN_PROGRESS,
    "Completed": COMPLETED,
    "Failed": FAILED,
    "Stopping": STOPPING,
    "Stopped": STOPPED,
    "MaxRuntimeExceeded": STOPPED,
    "MaxWaitTimeExceeded": STOPPED,
}

#: The StatusMessage of each secondary status, as the SageMaker SDK prints them from AWS.
MESSAGES: dict[str, str] = {
    "Starting": "Starting the training job",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped because it ran longer than MaxRuntimeInSeconds",
    "MaxWaitTimeExceeded": "Training job stopped because it waited longer than MaxWaitTimeInSeconds",
    "Interrupted": "The spot instance was interrupted; the job restarts and resumes from its checkpoints",
}

#: Second message of Starting, shown once the instances are being prepared.
PREPARING_INSTANCES = "Preparing the instances for training"

TERMINAL_PRIMARY = frozenset({COMPLETED, FAILED, STOPPED})

#: Where each secondary status may go next. Failure and stopping are possible from any
#: non-terminal state; the rest is the happy path plus the spot loop.
_EXITS = frozenset({"Failed", "Stopping"})
ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({"Starting"}),
    "Starting": frozenset({"Downloading"}) | _EXITS,
    "Downloading": frozenset({"Training"}) | _EXITS,
    "Training": frozenset({"Uploading", "Interrupted", "MaxRuntimeExceeded"}) | _EXITS,
    "Interrupted": frozenset({"Starting", "MaxWaitTimeExceeded"}) | _EXITS,
    "Uploading": frozenset({"Completed", "MaxRuntimeExceeded", "MaxWaitTimeExceeded"}) | _EXITS,
    "Stopping": frozenset({"Stopped", "Failed"}),
    "Completed": frozenset(),
    "Failed": frozenset(),
    "Stopped": frozenset(),
    "MaxRuntimeExceeded": frozenset(),
    "MaxWaitTimeExceeded": frozenset(),
}


class TransitionError(ValueError):
    """A move the state machine does not allow (a bug in the caller, or a lost race)."""


def is_terminal(record: Record) -> bool:
    """Whether the job has finished (Completed, Failed or Stopped)."""
    return record.get("TrainingJobStatus") in TERMINAL_PRIMARY


def can_move(record: Record, secondary: str) -> bool:
    """Whether ``secondary`` may follow the job's current secondary status."""
    current = record.get("SecondaryStatus")
    return secondary == current and not is_terminal(record) or secondary in ALLOWED.get(current, frozenset())


def start(record: Record, now: float) -> Record:
    """Give a freshly created job its first status (InProgress / Starting)."""
    record["SecondaryStatusTransitions"] = []
    record.pop("SecondaryStatus", None)
    return move(record, "Starting", now)


def move(record: Record, secondary: str, now: float, message: str | None = None) -> Record:
    """Move the job to ``secondary`` (or, when it is there already, update its message).

    Mutates and returns ``record``. Raises :class:`TransitionError` when the state machine
    forbids the move.
    """
    if secondary not in PRIMARY:
        raise TransitionError(f"unknown secondary status {secondary!r}")
    current = record.get("SecondaryStatus")
    transitions: list[dict[str, Any]] = record.setdefault("SecondaryStatusTransitions", [])
    text = message or MESSAGES.get(secondary, secondary)
    if current == secondary and not is_terminal(record):
        if transitions and transitions[-1].get("StatusMessage") != text:
            transitions[-1]["StatusMessage"] = text
            record["LastModifiedTime"] = now
        return record
    if secondary not in ALLOWED.get(current, frozenset()):
        raise TransitionError(f"a training job cannot go from {current} to {secondary}")
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    entry: dict[str, Any] = {"Status": secondary, "StartTime": now, "StatusMessage": text}
    primary = PRIMARY[secondary]
    if primary in TERMINAL_PRIMARY:
        entry["EndTime"] = now
    transitions.append(entry)
    record["SecondaryStatus"] = secondary
    record["TrainingJobStatus"] = primary
    record["LastModifiedTime"] = now
    return record


def stop_refusal(record: Record) -> str | None:
    """Why StopTrainingJob must be refused in the job's state, or None when it may stop."""
    status = record.get("TrainingJobStatus")
    if status == IN_PROGRESS:
        return None
    return f"The request was rejected because the training job is in status {status}."


def finish(record: Record, now: float, billable_seconds: float | None = None) -> Record:
    """Stamp TrainingEndTime, TrainingTimeInSeconds and BillableTimeInSeconds on a finished job.

    Both durations are at least 1 s once training started, as on AWS: the SageMaker SDK
    divides by TrainingTimeInSeconds to print spot savings.
    """
    start_time = record.get("TrainingStartTime")
    record["TrainingEndTime"] = now
    if start_time is None:
        return record
    wall = max(1, round(now - float(start_time)))
    record["TrainingTimeInSeconds"] = wall
    billed = wall if billable_seconds is None else max(1, round(billable_seconds))
    record["BillableTimeInSeconds"] = min(billed, wall)
    return record
