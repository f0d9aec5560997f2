"""The processing container's contract: rules and judges (pure; the runner is processing_run.py).

Like a training check, a processing check runs up to three jobs through the emulator: the
normal run (the given inputs, outputs and ContainerArguments), an error run (``--error-argument``
or ``--error-channel``, else every input corrupted) and a stop run (StopProcessingJob a few
seconds after the container starts). Reads of the staged inputs are seen from the host side of
their read-only mounts; outputs are read back from S3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.contract.judges import (
    error_run_blocked,
    judge_error_exit,
    judge_reads,
    judge_stop,
    needs_completed,
    worst,
)
from emulator.contract.observations import FileReads, JobRun, StopObservation
from emulator.contract.rules import Rule, Verdict, clip, dg, failed, passed, skipped
from emulator.training.collect import NO_FAILURE_FILE


@dataclass(frozen=True)
class ProcessingObservations:
    """Everything a processing check saw."""

    main: JobRun | None = None
    input_reads: dict[str, FileReads] = field(default_factory=dict)
    """Input name -> which of its staged files the container read."""
    outputs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Output name -> the objects uploaded under its S3Uri (relative keys)."""
    output_paths: dict[str, str] = field(default_factory=dict)
    """Output name -> its LocalPath in the container."""
    error: JobRun | None = None
    error_stimulus: str = ""
    error_explicit: bool = False
    stop: StopObservation | None = None


ENTRYPOINT = "processing.entrypoint"


def _entrypoint(o: ProcessingObservations) -> Verdict:
    if o.main is None:
        return skipped("not evaluated: the normal run did not take place")
    if o.main.completed:
        return passed(f"the image's ENTRYPOINT (with the job's ContainerArguments, no argument of SageMaker's) "
                      f"exited 0: job {o.main.name} Completed in {o.main.seconds:.1f} s")
    return failed(f"run with its own ENTRYPOINT, job {o.main.name} ended {clip(o.main.why(), 600)}")


def _inputs(o: ProcessingObservations) -> Verdict:
    blocked = needs_completed(o.main, ENTRYPOINT)
    if blocked:
        return blocked
    if not o.input_reads:
        return skipped("not evaluated: no input was given (smemu check --channel NAME=PATH_OR_S3_URI)")
    return worst([judge_reads(reads, f"input {name!r}", f"/opt/ml/processing/input/{name}")
                  for name, reads in sorted(o.input_reads.items())], "")


def _outputs(o: ProcessingObservations) -> Verdict:
    blocked = needs_completed(o.main, ENTRYPOINT)
    if blocked:
        return blocked
    if not o.outputs:
        return skipped("not evaluated: the job had no output")
    empty = [name for name, objects in sorted(o.outputs.items()) if not objects]
    if empty:
        where = ", ".join(f"{name} ({o.output_paths.get(name)})" for name in empty)
        return failed(f"the job Completed but nothing was uploaded for output {where}: SageMaker uploads only "
                      "what the container writes under each output's LocalPath")
    shown = "; ".join(f"{name}: {len(objects)} object(s), e.g. {objects[0]}" for name, objects in sorted(o.outputs.items()))
    return passed(f"every output's LocalPath was uploaded: {clip(shown, 300)}")


HOW_TO_FAIL = "--error-argument ARG or --error-channel NAME=PATH that makes the job fail"


def _error_run(o: ProcessingObservations) -> Verdict | None:
    return error_run_blocked(o.main, ENTRYPOINT, o.error, f"an input to corrupt, or {HOW_TO_FAIL}")


def _exit_code(o: ProcessingObservations) -> Verdict:
    blocked = _error_run(o)
    if blocked:
        return blocked
    assert o.error is not None
    return judge_error_exit(o.error, o.error_stimulus, o.error_explicit, HOW_TO_FAIL)


def _failure_message(o: ProcessingObservations) -> Verdict:
    blocked = _error_run(o)
    if blocked:
        return blocked
    assert o.error is not None
    if o.error.status != "Failed":
        return skipped(f"not evaluated: the error run ended {o.error.status}")
    reason = o.error.failure_reason or ""
    if o.error.exit_message:
        return passed(f"ExitMessage (from /opt/ml/output/message): {clip(o.error.exit_message, 300)!r}")
    if reason.startswith("AlgorithmError:") and not reason.startswith(NO_FAILURE_FILE):
        return passed(f"FailureReason (from /opt/ml/output/failure): {clip(reason, 300)!r}")
    if reason and not reason.startswith("AlgorithmError:"):
        return skipped(f"not evaluated: the error run failed before the container could report ({clip(reason, 300)})")
    return failed("the container exited non-zero without writing /opt/ml/output/message (ExitMessage) or "
                  f"/opt/ml/output/failure, so the job says nothing of why: {clip(reason, 300)!r}")


def _sigterm(o: ProcessingObservations) -> Verdict:
    return needs_completed(o.main, ENTRYPOINT) or judge_stop(o.stop, "StopProcessingJob", "120 s")


_PAGE = "build-your-own-processing-container"
_RUN = dg(_PAGE, "byoc-run-image",
          "SageMaker runs the image's ENTRYPOINT with ContainerArguments; exit code 0 is Completed, any other Failed; "
          "use the exec form so StopProcessingJob's signals reach the process")
_PATHS = dg(_PAGE, "byoc-run-image",
            "inputs are copied to their LocalPath under /opt/ml/processing/ before the container starts; outputs "
            "written to each output's LocalPath are uploaded when the job ends")
_MESSAGE = dg(_PAGE, "byoc-metadata",
              "the first 1 KB of /opt/ml/output/message becomes DescribeProcessingJob's ExitMessage")

RULES: tuple[Rule, ...] = (
    Rule(ENTRYPOINT, "runs with its own ENTRYPOINT and ContainerArguments and exits 0", _RUN, _entrypoint),
    Rule("processing.inputs", "reads each input from its LocalPath", _PATHS, _inputs),
    Rule("processing.outputs", "writes each output under its LocalPath", _PATHS, _outputs),
    Rule("processing.error-exit-code", "exits non-zero when processing fails", _RUN, _exit_code),
    Rule("processing.failure-message", "says why it failed in /opt/ml/output/message", _MESSAGE, _failure_message),
    Rule("processing.sigterm", "exits on SIGTERM before StopProcessingJob's SIGKILL", _RUN, _sigterm),
)
