"""Training jobs: CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob.

The handlers are thin: validate, read or write the job's record (its DescribeTrainingJob
answer, kept in the store), and hand the work to a :class:`TrainingRunner` thread. Create
returns at once and the status moves as the containers really move, so botocore's
``training_job_completed_or_stopped`` waiter and the SDK's log tailer work as against AWS.
Tags (AddTags/ListTags/DeleteTags) are answered by ``emulator.tags`` from the same store.

Emulator-specific knobs are tags documented in knobs.py (simulated spot interruptions, a
smaller instance memory), plus :meth:`TrainingService.interrupt_spot_instance`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from emulator.context import CallContext
from emulator.errors import (
    ResourceLimitExceeded,
    ValidationException,
    resource_not_found_job,
    training_job_exists,
)
from emulator.gpus import GpuPolicy
from emulator.host_paths import check_file_uris
from emulator.jobs.runtime_support import refuse_pipe_inputs
from emulator.quotas import check_jobs_quota
from emulator.runtime.naming import home_id
from emulator.runtime.spec import RuntimeBackend, RuntimeError_
from emulator.training import lifecycle
from emulator.training.artifacts import model_artifacts_uri
from emulator.training.containers import KIND
from emulator.training.knobs import parse_knobs
from emulator.training.layout import channel_input_mode
from emulator.training.runner import SHUTDOWN_REASON, RunnerEnv, TrainingRunner, check_gpus
from emulator.training.staging import WORK_FOLDER
from emulator.training.validation import validate_create_request

log = logging.getLogger(__name__)

_SUMMARY_FIELDS = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime", "LastModifiedTime",
                   "TrainingJobStatus", "SecondaryStatus")
_SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "Name": lambda r: r["TrainingJobName"],
    "CreationTime": lambda r: r["CreationTime"],
    "Status": lambda r: r["TrainingJobStatus"],
}


class TrainingService:
    """The training operations of the control plane, plus start/stop hooks for the platform."""

    def __init__(self, platform: Any, backend: RuntimeBackend) -> None:
        self.platform = platform
        settings = platform.settings
        self.store = platform.store
        self.backend = backend
        """The runtime backend (injected: ``Platform.backend``)."""
        self.work_root = settings.work_dir / WORK_FOLDER
        self.home_id = home_id(settings.home)
        self.stop_grace_seconds = settings.training_stop_grace_seconds
        """SIGTERM grace of StopTrainingJob, MaxRuntime and spot interruptions (120 s on AWS)."""
        self.checkpoint_sync_seconds = settings.training_checkpoint_sync_seconds
        """How often checkpoint folders are uploaded while a job runs (and always at the end)."""
        self.restart_delay_seconds = 0.5
        """Simulated wait for spot capacity between an interruption and the restart."""
        self.container_environment: Callable[[dict[str, Any]], dict[str, str]] | None = None
        """Hook: variables the platform gives every container of a job (``request -> env``), e.g.
        the role's credentials endpoint and the S3 endpoint (emulator.credentials)."""
        self._runners: dict[str, TrainingRunner] = {}
        self._lock = threading.Lock()
        self._admission = threading.Lock()
        self._s3: Any = None

    # -- operations -----------------------------------------------------------------------------

    def create_training_job(self, request: dict[str, Any], ctx: CallContext, *,
                            tuning_job_arn: str | None = None) -> dict[str, Any]:
        """Record the job and start running it in the background; returns its ARN at once.

        ``tuning_job_arn``: the hyperparameter tuning job that launches this one (emulator.tuning
        calls this method directly); DescribeTrainingJob shows it as TuningJobArn.
        """
        validate_create_request(request)
        algorithm = request.get("AlgorithmSpecification") or {}
        refuse_pipe_inputs(self.platform.settings.runtime, (
            c["ChannelName"] for c in request.get("InputDataConfig") or []
            if channel_input_mode(c, algorithm) == "Pipe"), "Channels")
        self._check_host_folders(request)
        self.platform.check_role(request["RoleArn"], "CreateTrainingJob", ctx,
                                 ctx.arn("training-job", request["TrainingJobName"]))
        tags = request.get("Tags") or []
        knobs = parse_knobs(tags, bool(request.get("EnableManagedSpotTraining")))
        self._check_quota(request)  # before anything looks at each instance
        self._check_gpus(request)
        name = request["TrainingJobName"]
        arn = ctx.arn("training-job", name)
        now = time.time()
        record = self._new_record(request, arn, now)
        if tuning_job_arn:
            record["TuningJobArn"] = tuning_job_arn
        with self._admission:  # the quota check and the insert, as one step
            self._check_quota(request)
            if not self.store.insert(KIND, name, record, now):
                existing = self.store.get(KIND, name) or {}
                raise training_job_exists(existing.get("TrainingJobArn", arn))
        if tags:
            self.store.add_tags(arn, tags)
        env = RunnerEnv(
            store=self.store, work_root=self.work_root, account_id=ctx.account_id,
            s3_client=self.platform.role_s3_client(request["RoleArn"], ctx, self._s3_client),
            region=ctx.region, home_id=self.home_id, backend=self.backend,
            resource_limits=self.platform.settings.resource_limits, gpus=self.platform.settings.gpus,
            gpu_policy=GpuPolicy.from_settings(self.platform.settings),
            stop_grace_seconds=self.stop_grace_seconds, checkpoint_sync_seconds=self.checkpoint_sync_seconds,
            restart_delay_seconds=self.restart_delay_seconds, resolve_image=self.resolve_image,
            extra_environment=self.container_environment,
            make_s3_durable=self.platform.s3.make_durable,
        )
        runner = TrainingRunner(env, name, knobs, on_done=self._forget)
        with self._lock:
            self._runners[name.lower()] = runner
        runner.start()
        return {"TrainingJobArn": arn}

    def _check_quota(self, request: dict[str, Any]) -> None:
        """ResourceLimitExceeded when the job's instances exceed their type's quota (emulator/quotas.py)."""
        running = (_instances(r.get("ResourceConfig") or {}) for r in self.store.list(KIND) if not lifecycle.is_terminal(r))
        check_jobs_quota(self.platform.settings.instance_quotas, "training", _instances(request["ResourceConfig"]),
                         running)

    def _check_host_folders(self, request: dict[str, Any]) -> None:
        """``file://`` channels only under SMEMU_HOST_FOLDERS, never a sensitive folder (emulator/host_paths.py)."""
        check_file_uris(self.platform.settings, (
            (f"InputDataConfig channel '{c['ChannelName']}' S3Uri",
             ((c.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri", ""))
            for c in request.get("InputDataConfig") or []))

    def _check_gpus(self, request: dict[str, Any]) -> None:
        """ResourceLimitExceeded now, as AWS answers, when the job's GPUs cannot be had here.

        Only GPU/accelerator instance types ask the engine; an engine that cannot be reached
        now is left to fail the job with its own reason.
        """
        try:
            message = check_gpus(request["ResourceConfig"], self.backend,
                                 GpuPolicy.from_settings(self.platform.settings), request["TrainingJobName"])
        except RuntimeError_ as exc:
            log.warning("could not check the GPUs of %s at create: %s", request["TrainingJobName"], exc)
            return
        if message:
            raise ResourceLimitExceeded(message)

    def describe_training_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The job's record, which is its DescribeTrainingJob answer."""
        record = self.store.get(KIND, request["TrainingJobName"])
        if record is None:
            raise resource_not_found_job()
        return dict(record)

    def list_training_jobs(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Summaries, filtered, sorted (newest first by default) and paged like AWS."""
        records = [r for r in self.store.list(KIND) if _matches(r, request)]
        descending = request.get("SortOrder", "Descending") == "Descending"
        records.sort(key=_SORT_KEYS[request.get("SortBy", "CreationTime")], reverse=descending)
        start = _decode_token(request.get("NextToken"))
        size = int(request.get("MaxResults", 10))
        page = records[start : start + size]
        answer: dict[str, Any] = {
            "TrainingJobSummaries": [{k: r[k] for k in _SUMMARY_FIELDS if k in r} for r in page]
        }
        if start + size < len(records):
            answer["NextToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
        return answer

    def stop_training_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Move the job to Stopping; its runner sends SIGTERM, then SIGKILL after the grace."""
        name = request["TrainingJobName"]

        def change(record: dict[str, Any]) -> None:
            refusal = lifecycle.stop_refusal(record)
            if refusal:
                raise ValidationException(refusal)
            lifecycle.move(record, "Stopping", time.time())

        if self.store.update(KIND, name, change) is None:
            raise resource_not_found_job()
        runner = self._runner(name)
        if runner is not None:
            runner.signal("stop")
        else:  # no thread runs it (cannot normally happen): settle it here
            self.store.update(KIND, name, lambda r: lifecycle.move(lifecycle.finish(r, time.time()),
                                                                   "Stopped", time.time()))
        return {}

    def resolve_image(self, image: str) -> str:
        """The image to run: the platform's policy (a local image, else the emulator's ECR registry).

        Raises ImageNotFound (images.MissingImage) naming the image and how to push it.
        """
        return str(self.platform.resolve_image(image))

    def interrupt_spot_instance(self, name: str) -> None:
        """Simulate a spot interruption of a running spot job now (see knobs.py)."""
        record = self.store.get(KIND, name)
        if record is None:
            raise resource_not_found_job()
        if not record.get("EnableManagedSpotTraining"):
            raise ValidationException(f"Training job {name} is not a managed spot training job.")
        runner = self._runner(name)
        if record.get("SecondaryStatus") != "Training" or runner is None:
            raise ValidationException(
                f"Training job {name} can only be interrupted while Training (it is {record.get('SecondaryStatus')})."
            )
        runner.signal("interrupt")

    # -- platform hooks ---------------------------------------------------------------------------

    def start(self) -> None:
        """Settle jobs a previous run of the emulator left unfinished, and remove their leftovers.

        A job's containers cannot outlive the process that fed their pipes and followed their
        logs, so a job found InProgress is Failed with a reason (Stopping becomes Stopped),
        and every container, network and volume of this home's training jobs is removed.
        """
        now = time.time()
        unfinished = [r["TrainingJobName"] for r in self.store.list(KIND) if not lifecycle.is_terminal(r)]
        for name in unfinished:
            self.store.update(KIND, name, lambda r: _settle_after_restart(r, now))
        shutil.rmtree(self.work_root, ignore_errors=True)
        if not unfinished:
            return  # a job removes its containers before it turns terminal: nothing can be left
        try:
            removed = self.backend.remove_labelled({"smemu.kind": KIND, "smemu.home": self.home_id})
            if removed:
                log.info("removed %d leftover training containers, networks and volumes", removed)
        except RuntimeError_ as exc:
            log.warning("could not look for leftover training containers: %s", exc)

    def stop(self, timeout: float = 30.0) -> None:
        """End running jobs (containers killed, jobs Failed with a reason) and wait for them."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.signal("shutdown")
        deadline = time.monotonic() + timeout
        for runner in runners:
            runner.thread.join(max(0.0, deadline - time.monotonic()))

    # -- helpers ------------------------------------------------------------------------------------

    def _runner(self, name: str) -> TrainingRunner | None:
        with self._lock:
            return self._runners.get(name.lower())

    def _s3_client(self) -> Any:
        """One S3 client for every job: making a boto3 client costs 0.1-0.3 s, sharing one is safe."""
        with self._lock:
            if self._s3 is None:
                self._s3 = self.platform.s3.client()
            return self._s3

    def _forget(self, name: str) -> None:
        with self._lock:
            self._runners.pop(name.lower(), None)

    @staticmethod
    def _new_record(request: dict[str, Any], arn: str, now: float) -> dict[str, Any]:
        """The Describe answer of a new job: the request echoed with AWS's defaults filled in."""
        record = copy.deepcopy({k: v for k, v in request.items() if k != "Tags"})
        record["AlgorithmSpecification"].setdefault("EnableSageMakerMetricsTimeSeries", False)
        for channel in record.get("InputDataConfig") or []:
            channel.setdefault("CompressionType", "None")
            channel.setdefault("RecordWrapperType", "None")
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is not None:
                source.setdefault("S3DataDistributionType", "FullyReplicated")
        record["OutputDataConfig"].setdefault("KmsKeyId", "")
        record.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", 86400)
        for flag in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining"):
            record.setdefault(flag, False)
        record.update(TrainingJobArn=arn, CreationTime=now, LastModifiedTime=now,
                      ModelArtifacts={"S3ModelArtifacts": model_artifacts_uri(request)})
        return lifecycle.start(record, now)


def _settle_after_restart(record: dict[str, Any], now: float) -> None:
    if lifecycle.is_terminal(record):
        return
    lifecycle.finish(record, now)
    if record.get("TrainingJobStatus") == lifecycle.STOPPING:
        lifecycle.move(record, "Stopped", now)
        return
    record["FailureReason"] = SHUTDOWN_REASON
    lifecycle.move(record, "Failed", now)


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _instances(resources: dict[str, Any]) -> list[tuple[str | None, int]]:
    """``(instance type, count)`` of a ResourceConfig, with or without instance groups."""
    groups = resources.get("InstanceGroups") or []
    if groups:
        return [(g.get("InstanceType"), int(g.get("InstanceCount") or 0)) for g in groups]
    return [(resources.get("InstanceType"), int(resources.get("InstanceCount") or 0))]


def _matches(record: dict[str, Any], request: dict[str, Any]) -> bool:
    """ListTrainingJobs filters (NameContains is case-insensitive, as on AWS)."""
    contains = request.get("NameContains")
    if contains and contains.lower() not in record["TrainingJobName"].lower():
        return False
    if request.get("StatusEquals") and record.get("TrainingJobStatus") != request["StatusEquals"]:
        return False
    bounds = (("CreationTimeAfter", "CreationTime", 1), ("CreationTimeBefore", "CreationTime", -1),
              ("LastModifiedTimeAfter", "LastModifiedTime", 1), ("LastModifiedTimeBefore", "LastModifiedTime", -1))
    for member, field_name, direction in bounds:
        if member in request and (float(record[field_name]) - _epoch(request[member])) * direction <= 0:
            return False
    return True


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "offset" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationException("Invalid pagination token: pass the NextToken of a previous ListTrainingJobs answer.")

