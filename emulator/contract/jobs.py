"""Jobs a check runs through the emulator (training, processing): wait for them, stop them, watch the stop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.contract.engine import ContainerEvents, docker_client
from emulator.contract.observations import JobRun, StopObservation
from emulator.contract.session import EmulatorTarget, log_tail, wait_for

log = logging.getLogger(__name__)

TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass(frozen=True)
class JobKind:
    """How one kind of job is named on the wire and labelled on the engine."""

    label: str
    """``smemu.kind`` of its containers."""
    noun: str
    name_key: str
    status_key: str
    log_group: str

    def operation(self, verb: str) -> str:
        """``describe_training_job`` for verb ``describe``."""
        return f"{verb}_{self.noun.replace(' ', '_')}"


TRAINING = JobKind("training-job", "training job", "TrainingJobName", "TrainingJobStatus", "/aws/sagemaker/TrainingJobs")
PROCESSING = JobKind("processing-job", "processing job", "ProcessingJobName", "ProcessingJobStatus",
                     "/aws/sagemaker/ProcessingJobs")


class NamedJob(Protocol):
    """A job a runner is about to create (anything with a name)."""

    name: str


class JobDriver:
    """Describe, wait for and stop jobs of one kind on the emulator."""

    def __init__(self, target: EmulatorTarget, kind: JobKind, timeout: float, stop_grace: float | None) -> None:
        self.target = target
        self.kind = kind
        self.timeout = timeout
        self.stop_grace = stop_grace
        self.sm = target.client("sagemaker")

    def describe(self, name: str) -> dict[str, Any]:
        """The job's Describe answer."""
        return dict(getattr(self.sm, self.kind.operation("describe"))(**{self.kind.name_key: name}))

    def _terminal(self, name: str) -> dict[str, Any] | None:
        record = self.describe(name)
        return record if record[self.kind.status_key] in TERMINAL else None

    def wait(self, name: str, started: float) -> JobRun:
        """Wait for the job to end (or the timeout and grace to pass) and say how it ended."""
        try:
            record = wait_for(f"{self.kind.noun} {name} to end", lambda: self._terminal(name),
                              self.timeout + (self.stop_grace or 120.0) + 60.0)
        except TimeoutError:
            record = self.describe(name)
        return JobRun(name, str(record[self.kind.status_key]), record.get("FailureReason"), time.monotonic() - started,
                      log_tail(self.target, self.kind.log_group, f"{name}/"), record.get("ExitMessage"))

    def events(self, name: str) -> ContainerEvents | None:
        """The engine's events for the job's containers (None when the engine cannot be asked)."""
        try:
            return ContainerEvents(docker_client(), {"smemu.kind": self.kind.label, "smemu.name": name})
        except Exception as exc:  # noqa: BLE001 - no engine events: the rules that need them say why
            log.warning("cannot follow the engine's events: %s", exc)
            return None

    def stop_run(self, name: str, create: Callable[[], float], stop_after: float) -> StopObservation:
        """Create the job, stop it ``stop_after`` seconds after its container started, watch the signals."""
        watch = self.events(name)
        if watch is None:
            return StopObservation(not_observed="the Docker engine's events cannot be followed")
        with watch:
            started = create()
            if watch.wait_for(lambda events: any(a in ("start", "die") for _t, a, _x in events), self.timeout):
                try:  # give the process time to install its SIGTERM handler, unless it ends by itself
                    wait_for(f"{self.kind.noun} {name} to end by itself", lambda: self._terminal(name), stop_after,
                             interval=0.2)
                except TimeoutError:
                    self._stop(name)
            run = self.wait(name, started)
            if run.status == "Completed":
                return StopObservation(finished_before_stop=True)
            if run.status == "Failed":
                return StopObservation(not_observed=f"the stop run failed before it could be stopped ({run.why()})")
            return watch.observe_stop(timeout=5.0, grace=self.stop_grace)

    def run_three(self, create: Callable[[Any], float], main: NamedJob, error: NamedJob | None, stop: NamedJob,
                  stop_after: float) -> tuple[JobRun, JobRun | None, StopObservation]:
        """The normal, error (when there is one) and stop runs at once; ``create(job)`` creates one."""
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix=f"smemu-check-{self.kind.label}") as pool:
            main_future = pool.submit(lambda: self.wait(main.name, create(main)))
            error_future = pool.submit(lambda: self.wait(error.name, create(error))) if error is not None else None
            stop_future = pool.submit(self.stop_run, stop.name, lambda: create(stop), stop_after)
            return main_future.result(), error_future.result() if error_future else None, stop_future.result()

    def _stop(self, name: str) -> None:
        try:
            getattr(self.sm, self.kind.operation("stop"))(**{self.kind.name_key: name})
        except self.sm.exceptions.ClientError as exc:  # it ended between the check and the call
            log.debug("stopping %s: %s", name, exc)
