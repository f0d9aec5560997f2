"""Judges several kinds share: SIGTERM handling, file reads and runs that must have completed."""

from __future__ import annotations

from emulator.contract.observations import SIGKILL, SIGTERM, FileReads, JobRun, StopObservation
from emulator.contract.rules import Outcome, Verdict, clip, failed, passed, skipped


def judge_stop(stop: StopObservation | None, what: str, platform_grace: str) -> Verdict:
    """PASS when the container exited on SIGTERM before the grace ran out; FAIL when SIGKILL was needed.

    ``what`` names the action that stopped it (``StopTrainingJob``); ``platform_grace`` is
    SageMaker's own grace in words ("120 s"), for the evidence.
    """
    if stop is None:
        return skipped(f"not evaluated: no {what} was observed")
    if stop.not_observed:
        return skipped(f"not evaluated: {stop.not_observed}")
    if stop.finished_before_stop:
        return skipped(f"not evaluated: the container finished before {what} could stop it; make it run longer "
                       "for the stop run (smemu check --stop-hyperparameter KEY=VALUE, e.g. more epochs)")
    if SIGTERM not in stop.signals:
        return skipped(f"not evaluated: the engine reported no SIGTERM for {what} (signals seen: {list(stop.signals)})")
    grace = f"{stop.grace_seconds:g} s" if stop.grace_seconds is not None else "the grace period"
    if SIGKILL in stop.signals:
        return failed(f"{what} sent SIGTERM; the container was still running {grace} later and was killed with "
                      f"SIGKILL (exit code {stop.exit_code}). SageMaker waits {platform_grace}, then kills it the "
                      "same way: handle SIGTERM (exec-form ENTRYPOINT, so the signal reaches your process)")
    seconds = f" {stop.seconds_to_exit:.1f} s" if stop.seconds_to_exit is not None else ""
    return passed(f"exited{seconds} after the SIGTERM of {what} (exit code {stop.exit_code}), "
                  f"before the SIGKILL ({grace} later)")


def needs_completed(run: JobRun | None, rule_of_run: str) -> Verdict | None:
    """A SKIP verdict unless ``run`` completed; None when it did."""
    if run is None:
        return skipped("not evaluated: the run did not take place")
    if not run.completed:
        return skipped(f"not evaluated: the normal run did not complete (see {rule_of_run})")
    return None


def judge_reads(reads: FileReads | None, what: str, path: str) -> Verdict:
    """PASS when the container read at least one of the files at ``path``."""
    if reads is None or reads.not_observed:
        reason = reads.not_observed if reads is not None else "file reads were not observed"
        return skipped(f"not evaluated: {reason}")
    if not reads.present:
        return skipped(f"not evaluated: {path} held no files to read")
    if reads.read:
        shown = ", ".join(sorted(reads.read)[:5]) + (" ..." if len(reads.read) > 5 else "")
        return passed(f"read {len(reads.read)} of {len(reads.present)} {what} file(s) at {path}: {clip(shown, 160)}")
    return failed(f"never opened any of the {len(reads.present)} {what} file(s) SageMaker put at {path} "
                  f"({clip(', '.join(sorted(reads.present)[:5]), 160)})")


def worst(verdicts: list[Verdict], all_passed: str) -> Verdict:
    """The first FAIL, else the first SKIP, else a PASS whose evidence joins every verdict's."""
    for outcome in (Outcome.FAIL, Outcome.SKIP):
        found = [v for v in verdicts if v.outcome is outcome]
        if found:
            return found[0]
    return passed(all_passed or "; ".join(v.evidence for v in verdicts))


def error_run_blocked(main: JobRun | None, rule_of_run: str, error: JobRun | None, how_to_fail: str) -> Verdict | None:
    """A SKIP verdict for the error-run rules unless the normal run completed and the error run ended."""
    blocked = needs_completed(main, rule_of_run)
    if blocked:
        return blocked
    if error is None:
        return skipped(f"not evaluated: no error run took place (give {how_to_fail})")
    if error.status == "Stopped":
        return skipped(f"not evaluated: the error run was stopped ({error.why()})")
    return None


def judge_error_exit(error: JobRun, stimulus: str, explicit: bool, how_to_fail: str) -> Verdict:
    """PASS when the error run ended Failed; FAIL when the user named the failing input and it did not."""
    if error.status == "Failed":
        return passed(f"with {stimulus}, the container exited non-zero: job {error.name} Failed")
    if explicit:
        logged = " / ".join(error.log_tail[-3:])
        return failed(f"with {stimulus} (which the check was told makes it fail), the container exited 0, so job "
                      f"{error.name} ended {error.status}"
                      + (f" with ExitMessage {error.exit_message!r}" if error.exit_message else "")
                      + (f"; last log lines: {clip(logged, 300)}" if logged else ""))
    return skipped(f"not evaluated: with {stimulus} job {error.name} still ended {error.status} (it accepted that "
                   f"input); give {how_to_fail}")
