"""Running a processing image through the emulator and recording what it did (processing_rules.py judges)."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.contract.file_reads import ReadWatch
from emulator.contract.inputs import CheckOptions, StagedChannel, stage_channel
from emulator.contract.jobs import PROCESSING, JobDriver
from emulator.contract.observations import FileReads
from emulator.contract.processing_rules import ProcessingObservations
from emulator.contract.session import EmulatorTarget, unique_name
from emulator.processing.inputs import WORK_FOLDER, replicated_input_dir

log = logging.getLogger(__name__)

INPUT_ROOT = "/opt/ml/processing/input"
OUTPUT_ROOT = "/opt/ml/processing/output"


@dataclass
class _Job:
    name: str
    arguments: tuple[str, ...]
    inputs: list[StagedChannel]
    input_dirs: dict[str, Path] = field(default_factory=dict)


class ProcessingCheck:
    """One processing check: stage inputs, run the three jobs, collect observations."""

    def __init__(self, target: EmulatorTarget, image: str, options: CheckOptions) -> None:
        self.target = target
        self.image = image
        self.options = options
        self.s3 = target.client("s3")
        self.bucket = target.bucket()
        self.prefix = unique_name("processing")
        self.outputs = dict(options.outputs) if options.outputs else {"output": ""}
        self.outputs = {name: path or f"{OUTPUT_ROOT}/{name}" for name, path in self.outputs.items()}
        self.jobs = JobDriver(target, PROCESSING, options.job_timeout, target.training_stop_grace)
        self.watch = ReadWatch.create() if target.home is not None else None

    def run(self) -> ProcessingObservations:
        """Run the check; the observations carry everything the rules need."""
        try:
            return self._run()
        finally:
            if self.watch is not None:
                self.watch.close()

    def _run(self) -> ProcessingObservations:
        opts = self.options
        inputs = [stage_channel(self.s3, self.bucket, f"{self.prefix}/input", name, source)
                  for name, source in sorted(opts.channels.items())]
        main = _Job(unique_name("check-process"), opts.arguments, inputs)
        error, stimulus = self._error_job(inputs)
        stop = _Job(unique_name("check-pstop"), opts.stop_arguments or opts.arguments, inputs)
        main_run, error_run, stop_seen = self.jobs.run_three(self._create, main, error, stop, opts.stop_after)
        return ProcessingObservations(
            main=main_run,
            input_reads={c.name: self._reads(main, c) for c in inputs},
            outputs=self._uploaded(main) if main_run.completed else {},
            output_paths=dict(self.outputs),
            error=error_run, error_stimulus=stimulus,
            error_explicit=bool(opts.error_arguments or opts.error_channels),
            stop=stop_seen,
        )

    def _error_job(self, inputs: list[StagedChannel]) -> tuple[_Job | None, str]:
        opts = self.options
        name = unique_name("check-perror")
        if opts.error_arguments or opts.error_channels:
            replaced = {n: stage_channel(self.s3, self.bucket, f"{self.prefix}/error", n, source)
                        for n, source in sorted(opts.error_channels.items())}
            kept = [c for c in inputs if c.name not in replaced]
            stimulus = [f"arguments {list(opts.error_arguments)}"] if opts.error_arguments else []
            stimulus += [f"input {n} from {source}" for n, source in sorted(opts.error_channels.items())]
            return (_Job(name, opts.error_arguments or opts.arguments, kept + list(replaced.values())),
                    ", ".join(stimulus))
        if not inputs:
            return None, ""
        corrupt = [stage_channel(self.s3, self.bucket, f"{self.prefix}/corrupt", c.name, opts.channels[c.name],
                                 corrupt=True) for c in inputs]
        return _Job(name, opts.arguments, corrupt), "every input file replaced by malformed bytes"

    def _create(self, job: _Job) -> float:
        self._prepare_watch(job)
        request: dict[str, Any] = {
            "ProcessingJobName": job.name,
            "RoleArn": self.target.role_arn(),
            "AppSpecification": {"ImageUri": self.image, **({"ContainerArguments": list(job.arguments)}
                                                            if job.arguments else {})},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": self.options.instance_type,
                                                      "VolumeSizeInGB": 10}},
            "StoppingCondition": {"MaxRuntimeInSeconds": max(1, int(self.options.job_timeout))},
            "ProcessingOutputConfig": {"Outputs": [
                {"OutputName": name, "S3Output": {"S3Uri": self._output_uri(job.name, name), "LocalPath": path,
                                                  "S3UploadMode": "EndOfJob"}}
                for name, path in sorted(self.outputs.items())]},
        }
        if job.inputs:
            request["ProcessingInputs"] = [
                {"InputName": c.name, "S3Input": {"S3Uri": c.uri, "LocalPath": f"{INPUT_ROOT}/{c.name}",
                                                  "S3DataType": "S3Prefix", "S3InputMode": "File"}}
                for c in job.inputs]
        if self.options.environment:
            request["Environment"] = dict(self.options.environment)
        started = time.monotonic()
        try:
            self.jobs.sm.create_processing_job(**request)
        except Exception:
            self._forget_watch(job)
            raise
        return started

    def _output_uri(self, job: str, output: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/output/{job}/{output}"

    def _uploaded(self, job: _Job) -> dict[str, tuple[str, ...]]:
        found = {}
        for name in self.outputs:
            prefix = f"{self.prefix}/output/{job.name}/{name}/"
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            found[name] = tuple(sorted(o["Key"][len(prefix):] for page in pages for o in page.get("Contents", [])))
        return found

    # -- observing reads -------------------------------------------------------------------------

    def _prepare_watch(self, job: _Job) -> None:
        """Make the inputs' staging folders before the emulator does, and watch them."""
        work_dir = self.target.work_dir()
        if self.watch is None or work_dir is None:
            return
        work = work_dir / WORK_FOLDER / job.name
        job.input_dirs = {c.name: replicated_input_dir(work, number) for number, c in enumerate(job.inputs)}
        for folder in job.input_dirs.values():
            self.watch.watch_tree(folder)

    def _forget_watch(self, job: _Job) -> None:
        work_dir = self.target.work_dir()
        if work_dir is not None and job.input_dirs:
            shutil.rmtree(work_dir / WORK_FOLDER / job.name, ignore_errors=True)

    def _reads(self, job: _Job, staged: StagedChannel) -> FileReads:
        if self.watch is None or staged.name not in job.input_dirs:
            why = ("reads of staged files are watched in the emulator's home, unknown for an emulator given by URL "
                   "(give its home with --emulator-home)") if self.target.home is None else \
                "this platform has no inotify to watch file reads"
            return FileReads(not_observed=why)
        return FileReads(read=self.watch.reads_under(job.input_dirs[staged.name]), present=staged.files)


def check_processing(target: EmulatorTarget, image: str, options: CheckOptions) -> ProcessingObservations:
    """Run a processing image's contract check through ``target``."""
    return ProcessingCheck(target, image, options).run()
