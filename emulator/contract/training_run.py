"""Running a training image through the emulator and recording what it did (training_rules.py judges).

The normal, error and stop runs go in parallel. Before each job is created its staging
folders in the emulator's home are made and watched (file_reads.py), so every read of the
hyperparameters and channel files is seen; the stop run's container is followed in the
engine's event stream (engine.py) to see whether SIGTERM was enough.
"""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.contract.file_reads import ReadWatch
from emulator.contract.inputs import CheckOptions, StagedChannel, archive_members, stage_channel
from emulator.contract.jobs import TRAINING, JobDriver
from emulator.contract.observations import FileReads, JobRun
from emulator.contract.session import EmulatorTarget, unique_name
from emulator.contract.training_rules import TrainingObservations
from emulator.training.staging import host_input_dir, job_work_dir, replicated_channel_dir

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """A job to run and the folders watched for it."""

    name: str
    hyperparameters: dict[str, str]
    channels: list[StagedChannel]
    config_dir: Path | None = None
    channel_dirs: dict[str, Path] | None = None


class TrainingCheck:
    """One training check: stage inputs, run the three jobs, collect observations."""

    def __init__(self, target: EmulatorTarget, image: str, options: CheckOptions) -> None:
        self.target = target
        self.image = image
        self.options = options
        self.sm = target.client("sagemaker")
        self.s3 = target.client("s3")
        self.bucket = target.bucket()
        self.prefix = unique_name("training")
        self.watch = ReadWatch.create() if target.home is not None else None
        self.jobs = JobDriver(target, TRAINING, options.job_timeout, target.training_stop_grace)

    def run(self) -> TrainingObservations:
        """Run the check; the observations carry everything the rules need."""
        try:
            return self._run()
        finally:
            if self.watch is not None:
                self.watch.close()

    def _run(self) -> TrainingObservations:
        opts = self.options
        channels = [stage_channel(self.s3, self.bucket, f"{self.prefix}/input", name, source)
                    for name, source in sorted(opts.channels.items())]
        main = _Job(unique_name("check-train"), dict(opts.hyperparameters), channels)
        error, stimulus = self._error_job(channels)
        stop = _Job(unique_name("check-stop"), {**opts.hyperparameters, **opts.stop_hyperparameters}, channels)
        main_run, error_run, stop_seen = self.jobs.run_three(self._create, main, error, stop, opts.stop_after)
        model_files, output_files = self._artifacts(main_run) if main_run.completed else (None, ())
        return TrainingObservations(
            main=main_run,
            hyperparameter_reads=self._reads(main, "hyperparameters"),
            channel_reads={c.name: self._channel_reads(main, c) for c in channels},
            model_files=model_files,
            output_files=output_files,
            error=error_run,
            error_stimulus=stimulus,
            error_explicit=bool(opts.error_hyperparameters or opts.error_channels),
            stop=stop_seen,
        )

    def _error_job(self, channels: list[StagedChannel]) -> tuple[_Job | None, str]:
        """The error run: the user's failing hyperparameters and channels, else corrupted channels."""
        opts = self.options
        name = unique_name("check-error")
        if opts.error_hyperparameters or opts.error_channels:
            replaced = {n: stage_channel(self.s3, self.bucket, f"{self.prefix}/error", n, source)
                        for n, source in sorted(opts.error_channels.items())}
            kept = [c for c in channels if c.name not in replaced]
            stimulus = [f"{k}={v}" for k, v in opts.error_hyperparameters.items()]
            stimulus += [f"channel {n} from {source}" for n, source in sorted(opts.error_channels.items())]
            return (_Job(name, {**opts.hyperparameters, **opts.error_hyperparameters}, kept + list(replaced.values())),
                    ", ".join(stimulus))
        if not channels:
            return None, ""
        corrupt = [stage_channel(self.s3, self.bucket, f"{self.prefix}/corrupt", c.name, opts.channels[c.name],
                                 corrupt=True) for c in channels]
        return _Job(name, dict(opts.hyperparameters), corrupt), "every channel file replaced by malformed bytes"

    # -- jobs ---------------------------------------------------------------------------------

    def _create(self, job: _Job) -> float:
        self._prepare_watch(job)
        request: dict[str, Any] = {
            "TrainingJobName": job.name,
            "AlgorithmSpecification": {"TrainingImage": self.image, "TrainingInputMode": "File"},
            "RoleArn": self.target.role_arn(),
            "OutputDataConfig": {"S3OutputPath": f"s3://{self.bucket}/{self.prefix}/output"},
            "ResourceConfig": {"InstanceType": self.options.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": max(1, int(self.options.job_timeout))},
            "HyperParameters": job.hyperparameters,
        }
        if job.channels:
            request["InputDataConfig"] = [
                {"ChannelName": c.name, "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": c.uri, "S3DataDistributionType": "FullyReplicated"}}}
                for c in job.channels]
        if self.options.environment:
            request["Environment"] = self.options.environment
        started = time.monotonic()
        try:
            self.sm.create_training_job(**request)
        except Exception:
            self._forget_watch(job)
            raise
        return started

    # -- observations -------------------------------------------------------------------------

    def _observing(self) -> bool:
        return self.watch is not None and self.target.work_dir() is not None

    def _prepare_watch(self, job: _Job) -> None:
        """Make the job's staging folders before the emulator does, and watch them."""
        work_dir = self.target.work_dir()
        if self.watch is None or work_dir is None:
            return
        work = job_work_dir(work_dir, job.name)
        job.config_dir = host_input_dir(work, "algo-1") / "config"
        job.channel_dirs = {c.name: replicated_channel_dir(work, c.name) for c in job.channels}
        for folder in (job.config_dir, *job.channel_dirs.values()):
            self.watch.watch_tree(folder)

    def _forget_watch(self, job: _Job) -> None:
        work_dir = self.target.work_dir()
        if work_dir is not None and job.config_dir is not None:
            shutil.rmtree(job_work_dir(work_dir, job.name), ignore_errors=True)

    def _reads(self, job: _Job, what: str) -> FileReads:
        if not self._observing() or job.config_dir is None:
            return FileReads(not_observed=self._why_not_observed())
        assert self.watch is not None
        read = tuple(r for r in self.watch.reads_under(job.config_dir) if r == "hyperparameters.json")
        return FileReads(read=read, present=("hyperparameters.json",))

    def _channel_reads(self, job: _Job, channel: StagedChannel) -> FileReads:
        if not self._observing() or job.channel_dirs is None:
            return FileReads(not_observed=self._why_not_observed())
        assert self.watch is not None
        folder = job.channel_dirs[channel.name]
        return FileReads(read=self.watch.reads_under(folder), present=channel.files)

    def _why_not_observed(self) -> str:
        if self.target.home is None:
            return ("reads of staged files are watched in the emulator's home, unknown for an emulator given by "
                    "URL (give its home with --emulator-home)")
        return "this platform has no inotify to watch file reads"

    def _artifacts(self, run: JobRun) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        record = self.jobs.describe(run.name)
        uri = str(record.get("ModelArtifacts", {}).get("S3ModelArtifacts", ""))
        model = self._members(uri)
        output = self._members(uri.rsplit("/", 1)[0] + "/output.tar.gz") if uri else None
        return model, output or ()

    def _members(self, uri: str) -> tuple[str, ...] | None:
        if not uri.startswith("s3://") or not uri.endswith(".tar.gz"):
            return None
        bucket, _, key = uri[5:].partition("/")
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return archive_members(body)
        except (tarfile.TarError, io.UnsupportedOperation) as exc:
            log.warning("%s is not a readable tar: %s", uri, exc)
            return None
        except self.s3.exceptions.ClientError as exc:
            log.warning("cannot read %s: %s", uri, exc)
            return None


def check_training(target: EmulatorTarget, image: str, options: CheckOptions) -> TrainingObservations:
    """Run a training image's contract check through ``target``."""
    return TrainingCheck(target, image, options).run()
