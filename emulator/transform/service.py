"""Batch transform: CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob.

The model is the CreateModel record hosting keeps (kind ``model``); its container, image,
model data and environment are resolved exactly as for an endpoint (emulator.hosting.plan),
snapshotted when the job is created. The job's record (its DescribeTransformJob answer) is
kept under kind ``transform-job``; a :class:`TransformRunner` thread does the work.
"""

from __future__ import annotations

import copy
import logging
import shutil
import threading
import time
from typing import Any

from emulator.context import CallContext
from emulator.errors import ValidationException, could_not_find, job_name_in_use, resource_not_found_job
from emulator.host_paths import check_file_uris
from emulator.hosting.plan import container_plans
from emulator.jobs import records as rec
from emulator.quotas import check_jobs_quota
from emulator.runtime.spec import RuntimeBackend, RuntimeError_
from emulator.transform.instances import KIND
from emulator.transform.runner import SHUTDOWN_REASON, TransformEnv, TransformRunner
from emulator.transform.validation import validate_create_request

log = logging.getLogger(__name__)

_SUMMARY_KEYS = ("TransformJobName", "TransformJobArn", "CreationTime", "TransformEndTime", "LastModifiedTime",
                 "TransformJobStatus", "FailureReason")


class TransformService:
    """The batch transform operations, plus start/stop hooks for the platform."""

    def __init__(self, platform: Any, backend: RuntimeBackend) -> None:
        self.platform = platform
        self.backend = backend
        self.records = rec.JobRecords(platform.store, KIND, "TransformJobStatus")
        self.work_root = platform.settings.work_dir / "transform"
        self._runners: dict[str, TransformRunner] = {}
        self._lock = threading.Lock()

    def create_transform_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Record the job and start it in the background; answers with its ARN at once."""
        model = self.platform.store.get("model", request["ModelName"])
        if model is None:
            raise could_not_find("model", ctx.arn("model", request["ModelName"]))
        validate_create_request(request, model)
        settings = self.platform.settings
        check_file_uris(settings, [("TransformInput.DataSource.S3DataSource.S3Uri",
                                    request["TransformInput"]["DataSource"].get("S3DataSource", {}).get("S3Uri", ""))])
        check_jobs_quota(settings.instance_quotas, "transform", _instances(request),
                         (_instances(r) for r in self.platform.store.list(KIND) if not self.records.is_terminal(r)))
        name = request["TransformJobName"]
        arn = ctx.arn("transform-job", name)
        now = time.time()
        record = copy.deepcopy({k: v for k, v in request.items() if k != "Tags"})
        record["TransformInput"].setdefault("CompressionType", "None")
        record["TransformInput"].setdefault("SplitType", "None")
        if record.get("DataProcessing"):
            record["DataProcessing"] = {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None",
                                        **record["DataProcessing"]}
        record.update(TransformJobArn=arn, TransformJobStatus=rec.IN_PROGRESS, CreationTime=now, LastModifiedTime=now)
        if not self.platform.store.insert(KIND, name, record, now):
            existing = self.records.get(name) or {}
            raise job_name_in_use("transform job", existing.get("TransformJobArn", arn))
        if request.get("Tags"):
            self.platform.store.add_tags(arn, request["Tags"])
        _mode, containers = container_plans(model, ctx.region)
        isolated = bool(model.get("EnableNetworkIsolation"))
        settings = self.platform.settings
        env = TransformEnv(
            records=self.records, backend=self.backend, resolve_image=self.platform.resolve_image,
            s3_client=self.platform.role_s3_client(model.get("ExecutionRoleArn"), ctx, self.platform.s3.client),
            platform_env={} if isolated else self.platform.container_environment(model.get("ExecutionRoleArn")),
            work_root=self.work_root, account_id=ctx.account_id, region=ctx.region, home_id=self.platform.home_id,
            resource_limits=settings.resource_limits, startup_timeout=settings.endpoint_startup_timeout_seconds,
            download_timeout=settings.endpoint_download_timeout_seconds,
            make_s3_durable=self.platform.s3.make_durable,
        )
        runner = TransformRunner(env, name, containers[0], on_done=self._forget)
        with self._lock:
            self._runners[name.lower()] = runner
        runner.start()
        return {"TransformJobArn": arn}

    def describe_transform_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The job's record."""
        record = self.records.get(request["TransformJobName"])
        if record is None:
            raise resource_not_found_job()
        return record

    def list_transform_jobs(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Summaries, filtered, sorted and paged like AWS."""
        return rec.list_jobs(self.platform.store, KIND, request, "TransformJobName", "TransformJobStatus",
                             _SUMMARY_KEYS, "TransformJobSummaries")

    def stop_transform_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """InProgress -> Stopping; no more requests are sent, then Stopped."""
        name = request["TransformJobName"]
        record = self.records.begin_stop(name, time.time())
        if record is None:
            raise resource_not_found_job()
        if record["TransformJobStatus"] != rec.STOPPING:
            raise ValidationException(
                f"The request was rejected because the transform job is in status {record['TransformJobStatus']}.")
        with self._lock:
            runner = self._runners.get(name.lower())
        if runner is not None:
            runner.stop()
        else:
            self.records.finish(name, rec.STOPPED, time.time(), "TransformEndTime")
        return {}

    def start(self) -> None:
        """Settle jobs a previous run left unfinished and remove their containers."""
        now = time.time()
        unfinished = [r["TransformJobName"] for r in self.platform.store.list(KIND) if not self.records.is_terminal(r)]
        for name in unfinished:
            record = self.records.get(name) or {}
            if record.get("TransformJobStatus") == rec.STOPPING:
                self.records.finish(name, rec.STOPPED, now, "TransformEndTime")
            else:
                self.records.finish(name, rec.FAILED, now, "TransformEndTime", FailureReason=SHUTDOWN_REASON)
        shutil.rmtree(self.work_root, ignore_errors=True)
        if unfinished:
            try:
                self.backend.remove_labelled({"smemu.kind": KIND, "smemu.home": self.platform.home_id})
            except RuntimeError_ as exc:
                log.warning("could not look for leftover transform containers: %s", exc)

    def stop(self, timeout: float = 30.0) -> None:
        """End running jobs and wait for their threads."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.shutdown()
        deadline = time.monotonic() + timeout
        for runner in runners:
            runner.thread.join(max(0.0, deadline - time.monotonic()))

    def _forget(self, name: str) -> None:
        with self._lock:
            self._runners.pop(name.lower(), None)


def _instances(record: dict[str, Any]) -> list[tuple[str | None, int]]:
    """``(instance type, count)`` of a transform job (emulator/quotas.py)."""
    resources = record.get("TransformResources") or {}
    return [(resources.get("InstanceType"), int(resources.get("InstanceCount") or 0))]
