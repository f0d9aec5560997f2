"""Emulator-only knobs of a training job, given as tags on CreateTrainingJob.

Tags travel through every client unchanged (boto3, the AWS CLI, the SageMaker SDK's
``tags=``), are stored like any tag, and mean nothing to AWS, so a request that uses them
still runs there. Keys start with ``smemu:``. A malformed value is a ValidationException, so a
typo never silently runs the job without the behaviour the user wanted to test.

``smemu:spot-interruptions`` -- simulated managed-spot interruptions
    On AWS a spot job (``EnableManagedSpotTraining=true``) can lose its instances at any
    time: SageMaker sends SIGTERM, syncs /opt/ml/checkpoints to ``CheckpointConfig.S3Uri``,
    shows ``SecondaryStatus=Interrupted``, and starts the job again (Starting, Downloading,
    Training) with the checkpoints restored, until it completes or ``MaxWaitTimeInSeconds``
    (counted from the job's start) runs out (Stopped / MaxWaitTimeExceeded). There is no spot
    market here, so interruptions happen when asked for. The value is a comma-separated list
    of seconds: ``"2"`` interrupts once, 2 s after the training containers started; ``"2,5"``
    interrupts the first attempt after 2 s and the second after 5 s; later attempts run
    undisturbed. Only valid on spot jobs. The running emulator can also interrupt a job now:
    ``TrainingService.interrupt_spot_instance(name)``, which the CLI and side APIs build on.
    An interruption gives the containers the same SIGTERM grace as StopTrainingJob, syncs
    checkpoints a last time, and restarts after a short simulated wait for capacity.
    ``BillableTimeInSeconds`` counts only the time containers ran.

``smemu:instance-memory-mb`` -- a smaller instance
    Limits each container to this many MiB instead of the instance type's memory (never
    more), to see quickly how a job behaves when its data does not fit: exceeding the limit
    is the same OOM kill and the same FailureReason as on the real instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.errors import ValidationException

INTERRUPTIONS_TAG = "smemu:spot-interruptions"
MEMORY_TAG = "smemu:instance-memory-mb"

RESTART_DELAY_SECONDS = 0.5
"""How long an interrupted job waits for "capacity" before it starts again."""


@dataclass(frozen=True)
class JobKnobs:
    """The emulator-only settings of one job."""

    interruptions: tuple[float, ...] = ()
    """Seconds into attempt 1, 2, ... at which to interrupt it."""
    memory_mb: int | None = None
    """Memory limit per container in MiB, below the instance type's."""


def _value(tags: list[dict[str, str]], key: str) -> str | None:
    values = [t.get("Value", "") for t in tags if t.get("Key") == key]
    return values[-1] if values else None


def parse_knobs(tags: list[dict[str, str]], spot: bool) -> JobKnobs:
    """The knobs set by a CreateTrainingJob request's tags."""
    return JobKnobs(interruptions=tuple(interruption_schedule(tags, spot)), memory_mb=_memory(tags))


def interruption_schedule(tags: list[dict[str, str]], spot: bool) -> list[float]:
    """Seconds into each attempt at which to interrupt it."""
    value = _value(tags, INTERRUPTIONS_TAG)
    if value is None:
        return []
    if not spot:
        raise ValidationException(
            f"Tag {INTERRUPTIONS_TAG} simulates spot interruptions and needs EnableManagedSpotTraining=true."
        )
    schedule: list[float] = []
    for part in value.split(","):
        try:
            seconds = float(part.strip())
        except ValueError:
            seconds = -1.0
        if not seconds >= 0:
            raise ValidationException(
                f"Tag {INTERRUPTIONS_TAG} must be a comma-separated list of seconds (e.g. '2' or '2,5'), "
                f"got '{value}'."
            )
        schedule.append(seconds)
    return schedule


def _memory(tags: list[dict[str, str]]) -> int | None:
    value = _value(tags, MEMORY_TAG)
    if value is None:
        return None
    if not value.strip().isdigit() or int(value) < 16:
        raise ValidationException(f"Tag {MEMORY_TAG} must be a whole number of MiB (at least 16), got '{value}'.")
    return int(value)
