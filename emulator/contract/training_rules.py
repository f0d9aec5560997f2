"""The training container's contract: rules and judges (pure; the runner is training_run.py).

One check runs up to three training jobs through the emulator, concurrently:

* the **normal run**: the given hyperparameters and channels; must complete;
* the **error run**: the same job made to fail, either with ``--error-hyperparameter`` values
  or, by default, with every channel's files replaced by bytes no parser accepts;
* the **stop run**: a job stopped with StopTrainingJob a few seconds into Training.

Hyperparameter and channel reads are observed from the host side of the read-only bind
mounts (inotify), so a container that ignores its inputs is caught even when it completes.
"""

from __future__ import annotations

from dataclasses import dataclass

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
class TrainingObservations:
    """Everything a training check saw."""

    main: JobRun | None = None
    hyperparameter_reads: FileReads | None = None
    channel_reads: dict[str, FileReads] | None = None
    model_files: tuple[str, ...] | None = None
    """Members of model.tar.gz after the normal run (None: not downloaded)."""
    output_files: tuple[str, ...] = ()
    """Members of output.tar.gz (where a model written to /opt/ml/output/data ends up)."""
    error: JobRun | None = None
    error_stimulus: str = ""
    """How the error run was made to fail (for the evidence)."""
    error_explicit: bool = False
    """The user named the failing input (--error-hyperparameter, --error-channel), so a Completed error
    run is a failure rather than an algorithm that accepts what it was given."""
    stop: StopObservation | None = None


TRAIN = "training.train-argument"


def _train_argument(o: TrainingObservations) -> Verdict:
    if o.main is None:
        return skipped("not evaluated: the normal run did not take place")
    if o.main.completed:
        return passed(f"`docker run IMAGE train` exited 0: job {o.main.name} Completed in {o.main.seconds:.1f} s")
    return failed(f"started as `docker run IMAGE train`, job {o.main.name} ended {clip(o.main.why(), 600)}")


def _hyperparameters(o: TrainingObservations) -> Verdict:
    return needs_completed(o.main, TRAIN) or judge_reads(
        o.hyperparameter_reads, "hyperparameter", "/opt/ml/input/config/hyperparameters.json")


def _channels(o: TrainingObservations) -> Verdict:
    blocked = needs_completed(o.main, TRAIN)
    if blocked:
        return blocked
    if o.channel_reads is None:
        return skipped("not evaluated: file reads were not observed")
    if not o.channel_reads:
        return skipped("not evaluated: no channel was given (smemu check --channel NAME=PATH_OR_S3_URI)")
    return worst([judge_reads(reads, f"channel {name!r}", f"/opt/ml/input/data/{name}")
                  for name, reads in sorted(o.channel_reads.items())], "")


def _model_dir(o: TrainingObservations) -> Verdict:
    blocked = needs_completed(o.main, TRAIN)
    if blocked:
        return blocked
    if o.model_files is None:
        return skipped("not evaluated: model.tar.gz could not be read back from S3")
    if o.model_files:
        shown = ", ".join(o.model_files[:5]) + (" ..." if len(o.model_files) > 5 else "")
        return passed(f"model.tar.gz holds {len(o.model_files)} file(s) written under /opt/ml/model: {clip(shown, 200)}")
    hint = ""
    if o.output_files:
        hint = (f"; output.tar.gz has {clip(', '.join(o.output_files[:5]), 120)}: /opt/ml/output/data is uploaded "
                "as output, not as the model")
    return failed("the job Completed but model.tar.gz is empty: nothing was written under /opt/ml/model, the only "
                  f"folder SageMaker uploads as the model{hint}")


HOW_TO_FAIL = "--error-hyperparameter KEY=VALUE or --error-channel NAME=PATH that makes the algorithm fail"


def _error_run(o: TrainingObservations) -> Verdict | None:
    return error_run_blocked(o.main, TRAIN, o.error, f"a channel to corrupt, or {HOW_TO_FAIL}")


def _error_exit_code(o: TrainingObservations) -> Verdict:
    blocked = _error_run(o)
    if blocked:
        return blocked
    assert o.error is not None
    return judge_error_exit(o.error, o.error_stimulus, o.error_explicit, HOW_TO_FAIL)


def _failure_file(o: TrainingObservations) -> Verdict:
    blocked = _error_run(o)
    if blocked:
        return blocked
    assert o.error is not None
    if o.error.status != "Failed":
        return skipped(f"not evaluated: the error run ended {o.error.status}, so no FailureReason was reported")
    reason = o.error.failure_reason or ""
    if reason.startswith(NO_FAILURE_FILE) or not reason:
        return failed("the container exited non-zero without writing /opt/ml/output/failure, so FailureReason "
                      f"carries no cause: {clip(reason, 300)!r}")
    if not reason.startswith("AlgorithmError:"):
        return skipped(f"not evaluated: the error run failed before the container could report ({clip(reason, 300)})")
    return passed(f"FailureReason comes from /opt/ml/output/failure: {clip(reason, 300)!r}")


def _sigterm(o: TrainingObservations) -> Verdict:
    return needs_completed(o.main, TRAIN) or judge_stop(o.stop, "StopTrainingJob", "120 s")


_RUNNING = dg("your-algorithms-training-algo-dockerfile", "",
              "SageMaker runs the container as `docker run image train`; the train argument overrides CMD")
_SIGNALS = dg("your-algorithms-training-signal-success-failure", "",
              "exit code 0 is Completed, a non-zero exit code is Failed")
_INPUTS = dg("your-algorithms-training-algo-running-container", "",
             "hyperparameters in /opt/ml/input/config/hyperparameters.json; File-mode channels in "
             "/opt/ml/input/data/channel_name")
_OUTPUT = dg("your-algorithms-training-algo-output", "",
             "write all final model artifacts to /opt/ml/model; on failure write the description to "
             "/opt/ml/output/failure (first 1024 characters become FailureReason)")
_STOP = dg("your-algorithms-training-algo-dockerfile", "",
           "StopTrainingJob is `docker stop -t120`: SIGTERM, then SIGKILL after 120 s unless the container exited")

RULES: tuple[Rule, ...] = (
    Rule(TRAIN, "runs as `docker run IMAGE train` and exits 0", _RUNNING, _train_argument),
    Rule("training.hyperparameters", "reads /opt/ml/input/config/hyperparameters.json", _INPUTS, _hyperparameters),
    Rule("training.channels", "reads each channel from /opt/ml/input/data/<channel>", _INPUTS, _channels),
    Rule("training.model-dir", "writes the model under /opt/ml/model", _OUTPUT, _model_dir),
    Rule("training.error-exit-code", "exits non-zero when training fails", _SIGNALS, _error_exit_code),
    Rule("training.failure-file", "writes the cause of a failure to /opt/ml/output/failure", _OUTPUT, _failure_file),
    Rule("training.sigterm", "exits on SIGTERM before StopTrainingJob's SIGKILL", _STOP, _sigterm),
)
