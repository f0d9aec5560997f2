"""Processing jobs: CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs,
StopProcessingJob and DeleteProcessingJob, executed for real in containers.

Thin handlers: validate, keep the job's record (its DescribeProcessingJob answer) in the
store under kind ``processing-job``, and hand the work to a :class:`ProcessingRunner` thread.
Create answers at once with the job InProgress; the status moves as the containers do.
"""

from __future__ import annotations

import copy
import logging
import shutil
import threading
import time
from typing import Any

from emulator.context import CallContext
from emulator.errors import ValidationException, job_name_in_use, resource_not_found_job
from emulator.host_paths import check_file_uris
from emulator.jobs import records as rec
from emulator.jobs.attempt import SIGNAL_SHUTDOWN, SIGNAL_STOP
from emulator.jobs.runtime_support import refuse_pipe_inputs
from emulator.processing.inputs import WORK_FOLDER
from emulator.processing.layout import KIND
from emulator.processing.runner import SHUTDOWN_REASON, ProcessingEnv, ProcessingRunner
from emulator.processing.validation import validate_create_request
from emulator.quotas import check_jobs_quota
from emulator.runtime.spec import RuntimeBackend, RuntimeError_

log = logging.getLogger(__name__)

_SUMMARY_KEYS = ("ProcessingJobName", "ProcessingJobArn", "CreationTime", "ProcessingEndTime", "LastModifiedTime",
                 "ProcessingJobStatus", "FailureReason", "ExitMessage")


class ProcessingService:
    """The processing operations of the control plane, plus start/stop hooks for the platform."""

    def __init__(self, platform: Any, backend: RuntimeBackend) -> None:
        self.platform = platform
        self.backend = backend
        self.records = rec.JobRecords(platform.store, KIND, "ProcessingJobStatus")
        self.work_root = platform.settings.work_dir / WORK_FOLDER
        self.stop_grace_seconds = platform.settings.training_stop_grace_seconds
        """SIGTERM grace of StopProcessingJob and MaxRuntimeInSeconds (SageMaker gives 120 s)."""
        self._runners: dict[str, ProcessingRunner] = {}
        self._lock = threading.Lock()

    # -- operations -------------------------------------------------------------------------

    def create_processing_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Record the job and start it in the background; answers with its ARN at once."""
        validate_create_request(request)
        settings = self.platform.settings
        refuse_pipe_inputs(settings.runtime, (
            item["InputName"] for item in request.get("ProcessingInputs") or []
            if (item.get("S3Input") or {}).get("S3InputMode", "File") == "Pipe"), "ProcessingInputs")
        check_file_uris(settings, ((f"ProcessingInput '{item['InputName']}' S3Uri",
                                    (item.get("S3Input") or {}).get("S3Uri", ""))
                                   for item in request.get("ProcessingInputs") or []))
        check_jobs_quota(settings.instance_quotas, "processing", _instances(request),
                         (_instances(r) for r in self.platform.store.list(KIND) if not self.records.is_terminal(r)))
        name = request["ProcessingJobName"]
        arn = ctx.arn("processing-job", name)
        self.platform.check_role(request["RoleArn"], "CreateProcessingJob", ctx, arn)
        now = time.time()
        record = copy.deepcopy({k: v for k, v in request.items() if k != "Tags"})
        for item in record.get("ProcessingInputs") or []:
            source = item.get("S3Input")
            item.setdefault("AppManaged", False)
            if source is not None:
                source.setdefault("S3InputMode", "File")
                source.setdefault("S3DataDistributionType", "FullyReplicated")
                source.setdefault("S3CompressionType", "None")
        for item in (record.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            item.setdefault("AppManaged", False)
        record.update(ProcessingJobArn=arn, ProcessingJobStatus=rec.IN_PROGRESS, CreationTime=now,
                      LastModifiedTime=now)
        if not self.platform.store.insert(KIND, name, record, now):
            existing = self.records.get(name) or {}
            raise job_name_in_use("processing job", existing.get("ProcessingJobArn", arn))
        if request.get("Tags"):
            self.platform.store.add_tags(arn, request["Tags"])
        env = ProcessingEnv(
            records=self.records, backend=self.backend, resolve_image=self.platform.resolve_image,
            s3_client=self.platform.role_s3_client(request["RoleArn"], ctx, self.platform.s3.client),
            platform_env=self.platform.container_environment, work_root=self.work_root,
            account_id=ctx.account_id, region=ctx.region, home_id=self.platform.home_id,
            resource_limits=self.platform.settings.resource_limits, stop_grace_seconds=self.stop_grace_seconds,
            make_s3_durable=self.platform.s3.make_durable,
        )
        runner = ProcessingRunner(env, name, on_done=self._forget)
        with self._lock:
            self._runners[name.lower()] = runner
        runner.start()
        return {"ProcessingJobArn": arn}

    def describe_processing_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The job's record."""
        record = self.records.get(request["ProcessingJobName"])
        if record is None:
            raise resource_not_found_job()
        return record

    def list_processing_jobs(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Summaries, filtered, sorted and paged like AWS."""
        return rec.list_jobs(self.platform.store, KIND, request, "ProcessingJobName", "ProcessingJobStatus",
                             _SUMMARY_KEYS, "ProcessingJobSummaries")

    def stop_processing_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """InProgress -> Stopping; the runner sends SIGTERM, then SIGKILL after the grace."""
        name = request["ProcessingJobName"]
        record = self.records.begin_stop(name, time.time())
        if record is None:
            raise resource_not_found_job()
        if record["ProcessingJobStatus"] != rec.STOPPING:
            raise ValidationException(
                f"The request was rejected because the processing job is in status {record['ProcessingJobStatus']}.")
        runner = self._runner(name)
        if runner is not None:
            runner.signal(SIGNAL_STOP)
        else:
            self.records.finish(name, rec.STOPPED, time.time(), "ProcessingEndTime")
        return {}

    def delete_processing_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Remove a finished job's record (a running one must be stopped first, as on AWS)."""
        name = request["ProcessingJobName"]
        record = self.records.get(name)
        if record is None:
            raise resource_not_found_job()
        if not self.records.is_terminal(record):
            raise ValidationException(
                f"Processing job {name} is in status {record['ProcessingJobStatus']}; stop it before deleting it.")
        self.platform.store.delete(KIND, name)
        self.platform.store.delete_tags(record["ProcessingJobArn"])
        return {}

    # -- platform hooks ----------------------------------------------------------------------

    def start(self) -> None:
        """Settle jobs a previous run left unfinished (their containers cannot be followed again)."""
        now = time.time()
        unfinished = [r["ProcessingJobName"] for r in self.platform.store.list(KIND) if not self.records.is_terminal(r)]
        for name in unfinished:
            record = self.records.get(name) or {}
            if record.get("ProcessingJobStatus") == rec.STOPPING:
                self.records.finish(name, rec.STOPPED, now, "ProcessingEndTime")
            else:
                self.records.finish(name, rec.FAILED, now, "ProcessingEndTime", FailureReason=SHUTDOWN_REASON)
        shutil.rmtree(self.work_root, ignore_errors=True)
        if unfinished:
            try:
                self.backend.remove_labelled({"smemu.kind": KIND, "smemu.home": self.platform.home_id})
            except RuntimeError_ as exc:
                log.warning("could not look for leftover processing containers: %s", exc)

    def stop(self, timeout: float = 30.0) -> None:
        """End running jobs (Failed with a reason) and wait for their threads."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.signal(SIGNAL_SHUTDOWN)
        deadline = time.monotonic() + timeout
        for runner in runners:
            runner.thread.join(max(0.0, deadline - time.monotonic()))

    def _runner(self, name: str) -> ProcessingRunner | None:
        with self._lock:
            return self._runners.get(name.lower())

    def _forget(self, name: str) -> None:
        with self._lock:
            self._runners.pop(name.lower(), None)


def _instances(record: dict[str, Any]) -> list[tuple[str | None, int]]:
    """``(instance type, count)`` of a processing job (emulator/quotas.py)."""
    cluster = (record.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    return [(cluster.get("InstanceType"), int(cluster.get("InstanceCount") or 0))]
