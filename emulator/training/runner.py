"""Runs one training job in a background thread, through the runtime backend.

Phases and statuses (lifecycle.py has the rules, attempt.py the containers)::

    Starting     resolve the image (an unknown image fails here, naming it)
    Downloading  write /opt/ml/input/config, stage channels, restore checkpoints
    Training     run an attempt: every host's container until it ends or is ended
    Uploading    model.tar.gz and output.tar.gz (also for Stopped and MaxRuntimeExceeded)
    Completed | Failed | Stopped | MaxRuntimeExceeded | MaxWaitTimeExceeded

A spot job interrupted during Training shows Interrupted and goes back to Starting. Every
path ends in ``_release``: containers, the job's network and volumes are removed by label and
the job's scratch folder is deleted, whatever happened.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.gpus import USAGE_TRAINING, GpuPolicy, GpuUnavailable, assign
from emulator.runtime.spec import (
    EngineUnavailable,
    GpuRequestFailed,
    ImageNotFound,
    RuntimeBackend,
    RuntimeError_,
)
from emulator.store import Store
from emulator.jobs import attempt as at
from emulator.training import lifecycle
from emulator.training.artifacts import FAILURE_REASON_LIMIT, CheckpointSync, upload_model_and_output
from emulator.jobs.channels import ChannelError
from emulator.training.collect import collect_outputs, failure_of
from emulator.training.containers import HostFolders, host_spec, labels, network_name
from emulator.training.knobs import JobKnobs
from emulator.training.layout import Host, checkpoint_dir, plan_hosts
from emulator.jobs.logs import JobLogs, stream_for
from emulator.training.metrics import MetricCollector, publish_series
from emulator.jobs.pipe import PipeFeeder
from emulator.training.staging import StagedInputs, stage_inputs

log = logging.getLogger(__name__)

KIND = "training-job"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
SHUTDOWN_REASON = (
    "InternalServerError: The emulator stopped while the training job was running; its containers "
    "were removed. Start the job again."
)


@dataclass
class RunnerEnv:
    """What a runner needs from the platform."""

    store: Store
    s3_client: Callable[[], Any]
    """The S3 client (one boto3 client is safe to share between threads once made)."""
    work_root: Path
    account_id: str
    region: str
    home_id: str
    backend: RuntimeBackend
    """The runtime backend (connected on first use: an engine that is down fails the job with why)."""
    resource_limits: bool = True
    gpus: str | None = None
    """SMEMU_GPUS (kept for callers that set only this; ``gpu_policy`` wins when given)."""
    gpu_policy: GpuPolicy | None = None
    """SMEMU_GPUS / SMEMU_GPU_FALLBACK / SMEMU_GPU_RUNTIME (emulator.gpus)."""
    stop_grace_seconds: float = 120.0
    checkpoint_sync_seconds: float = 5.0
    restart_delay_seconds: float = 0.5
    resolve_image: Callable[[str], str] | None = None
    """Image policy (emulator.images); None: the backend's exact local lookup."""
    make_s3_durable: Callable[[], None] = lambda: None
    """Returns once the objects the store acknowledged survive a power loss (S3Store.make_durable)."""
    extra_environment: Callable[[dict[str, Any]], dict[str, str]] | None = None
    """Variables the platform adds to every container of a job (credentials, S3 endpoint)."""


class TrainingRunner:
    """One job's thread plus the signals the service sends it."""

    def __init__(self, env: RunnerEnv, name: str, knobs: JobKnobs | None = None,
                 on_done: Callable[[str], None] | None = None) -> None:
        self.env = env
        self.name = name
        self.knobs = knobs or JobKnobs()
        self.interruptions = list(self.knobs.interruptions)
        self._on_done = on_done
        self._control: queue.Queue[tuple[str, object]] = queue.Queue()
        self._flags = {at.SIGNAL_STOP: threading.Event(), at.SIGNAL_INTERRUPT: threading.Event(),
                       at.SIGNAL_SHUTDOWN: threading.Event()}
        self.thread = threading.Thread(target=self._run, name=f"smemu-train-{name}", daemon=True)
        self.work = env.work_root / name
        self._labels = labels(name, env.home_id)
        self._streams: dict[str, str] = {}
        self._billable = 0.0
        self._spot = False
        self._released = False
        self._removed = False
        """Every container of the job is gone (set once removal succeeded; an attempt's restart clears it)."""
        self._platform_env: dict[str, str] | None = None
        self._logs: JobLogs | None = None
        self._metrics = MetricCollector([])
        self._gpu_ids: dict[str, list[str]] = {}

    def start(self) -> None:
        """Run the job in the background."""
        self.thread.start()

    def signal(self, kind: str) -> None:
        """Deliver ``stop``, ``interrupt`` or ``shutdown`` to the job."""
        self._flags[kind].set()
        self._control.put((kind, None))

    # -- the job ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._execute()
        except Exception as exc:  # a bug must still end the job with a reason, and be logged
            log.exception("training job %s failed inside the emulator", self.name)
            self._finish("Failed", reason=f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            self._release()
            if self._on_done is not None:
                self._on_done(self.name)

    def _execute(self) -> None:
        request = self._record()
        hosts = plan_hosts(request["ResourceConfig"])
        self._spot = bool(request.get("EnableManagedSpotTraining"))
        self._metrics = MetricCollector((request["AlgorithmSpecification"].get("MetricDefinitions")) or [])
        self._logs = JobLogs(self.env.account_id, self.env.region, self._metrics, LOG_GROUP,
                             on_flush=lambda: publish_series(self._metrics, self.env.account_id, self.env.region,
                                                             self.name))
        self._move("Starting", lifecycle.PREPARING_INSTANCES)
        try:
            backend = self.env.backend
            resolve = self.env.resolve_image or backend.ensure_image
            image = resolve(request["AlgorithmSpecification"]["TrainingImage"])
        except ImageNotFound as exc:
            return self._finish("Failed", reason=f"ClientError: {exc.reason('training', request['RoleArn'])}")
        except EngineUnavailable as exc:
            return self._finish("Failed", reason=f"InternalServerError: {exc}")
        try:  # the instances' GPUs: missing ones fail the job here, as a capacity error
            self._gpu_ids = gpu_plan(hosts, backend, self._gpu_policy, self.name)
        except GpuUnavailable as exc:
            return self._finish("Failed", reason=exc.capacity_reason())
        if self._ended_early():
            return
        self._update(lambda r: r.setdefault("TrainingStartTime", time.time()))
        started_wall = time.monotonic()
        self._move("Downloading")
        try:
            staged = stage_inputs(request, hosts, self.work, self.env.s3_client, self.env.region)
        except ChannelError as exc:
            return self._finish("Failed", reason=str(exc))
        self._train(request, hosts, image, staged, backend, started_wall)

    def _train(self, request: dict[str, Any], hosts: list[Host], image: str, staged: StagedInputs,
               backend: RuntimeBackend, started_wall: float) -> None:
        stopping = request.get("StoppingCondition") or {}
        max_runtime = float(stopping.get("MaxRuntimeInSeconds", 86400))
        max_wait = stopping.get("MaxWaitTimeInSeconds") if request.get("EnableManagedSpotTraining") else None
        checkpoint_path = checkpoint_dir(request)
        sync = CheckpointSync(request["CheckpointConfig"]["S3Uri"], self.env.s3_client) if checkpoint_path else None
        trained = 0.0
        number = 0
        while True:
            seed = None
            if sync is not None:
                seed = self.work / f"checkpoint-seed-{number}"
                sync.restore(seed)
            if self._ended_early():
                return
            self._move("Training")
            elapsed = time.monotonic() - started_wall
            deadlines = at.Deadlines(
                max_runtime=max_runtime - trained,
                interrupt_after=self.interruptions[number] if number < len(self.interruptions) else None,
                max_wait=float(max_wait) - elapsed if max_wait is not None else None,
                checkpoint_every=self.env.checkpoint_sync_seconds if sync is not None else None,
            )
            try:
                result = self._attempt(request, hosts, image, staged, backend, seed, checkpoint_path, sync, deadlines)
            except GpuRequestFailed as exc:
                return self._finish("Failed", reason=GpuUnavailable(str(exc), "", 0, 0).capacity_reason())
            except RuntimeError_ as exc:
                return self._finish("Failed", reason=f"ClientError: Could not start the training container: {exc}")
            trained += result.ran_seconds
            self._billable += result.ran_seconds
            if result.outcome == at.INTERRUPTED:
                if not self._interrupted(max_wait, started_wall):
                    return
                number += 1
                continue
            return self._conclude(request, hosts, backend, result)

    def _interrupted(self, max_wait: Any, started_wall: float) -> bool:
        """Show Interrupted, wait for "capacity", and go back to Starting; False when the job ended."""
        self._remove_containers()
        self._move("Interrupted")
        delay = self.env.restart_delay_seconds
        if max_wait is not None:  # capacity that comes back after MaxWaitTimeInSeconds is too late
            delay = min(delay, max(0.0, float(max_wait) - (time.monotonic() - started_wall)))
        if self._wait_for_signal(delay):
            return not self._ended_early()
        if max_wait is not None and time.monotonic() - started_wall >= float(max_wait):
            self._finish("MaxWaitTimeExceeded", upload=None)
            return False
        self._move("Starting", lifecycle.PREPARING_INSTANCES)
        self._move("Downloading")
        return True

    def _attempt(self, request: dict[str, Any], hosts: list[Host], image: str, staged: StagedInputs,
                 backend: RuntimeBackend, seed: Path | None, checkpoint_path: str | None,
                 sync: CheckpointSync | None, deadlines: at.Deadlines) -> at.AttemptResult:
        while not self._control.empty():  # stale exits and interruptions of the previous attempt
            self._control.get_nowait()
        self._flags[at.SIGNAL_INTERRUPT].clear()
        for kind in (at.SIGNAL_STOP, at.SIGNAL_SHUTDOWN):  # ...but a stop is never dropped
            if self._flags[kind].is_set():
                self._control.put((kind, None))
        self._removed = False  # this attempt's containers are about to exist
        multi_host = len(hosts) > 1
        if multi_host:
            backend.create_network(network_name(self.name), self._labels,
                                   internal=bool(request.get("EnableNetworkIsolation")))
        feeders = self._feeders(staged)
        specs = [(host, self._spec(request, image, host, hosts, staged, seed, checkpoint_path, backend))
                 for host in hosts]
        run = at.Attempt(backend, specs, self._control, self.env.stop_grace_seconds, deadlines)
        assert self._logs is not None
        try:
            run.start_containers(self._follow_logs(backend))
            for feeder in feeders:
                feeder.start()
            tick = (lambda: self._sync_checkpoints(backend, run.result.container_ids, checkpoint_path, sync)) \
                if sync is not None and checkpoint_path else None
            result = run.wait(tick)
        except BaseException:
            for container_id in run.result.container_ids.values():
                backend.kill(container_id)  # so the log readers below see their streams end
            raise
        finally:
            for feeder in feeders:
                feeder.stop()
            self._logs.wait_readers()
            self._logs.flush()
        if sync is not None and checkpoint_path:
            self._sync_checkpoints(backend, result.container_ids, checkpoint_path, sync)
        return result

    def _spec(self, request: dict[str, Any], image: str, host: Host, hosts: list[Host], staged: StagedInputs,
              seed: Path | None, checkpoint_path: str | None, backend: RuntimeBackend) -> Any:
        folders = HostFolders(staged.input_dirs[host.name], staged.file_channels[host.name], seed)
        return host_spec(request, image, host, hosts, folders, arn=request["TrainingJobArn"],
                         region=self.env.region, home_id=self.env.home_id, checkpoint_path=checkpoint_path,
                         resource_limits=self.env.resource_limits, gpu_device_ids=self._gpu_ids.get(host.name),
                         memory_limit_mb=self.knobs.memory_mb, extra_environment=self._extra_environment)

    @property
    def _extra_environment(self) -> dict[str, str]:
        if self.env.extra_environment is None:
            return {}
        if self._platform_env is None:
            self._platform_env = dict(self.env.extra_environment(self._record()))
        return self._platform_env

    @property
    def _gpu_policy(self) -> GpuPolicy:
        if self.env.gpu_policy is not None:
            return self.env.gpu_policy
        return GpuPolicy.from_settings(self.env)

    def _feeders(self, staged: StagedInputs) -> list[PipeFeeder]:
        feeders = []
        for host_name, channels in staged.pipe_channels.items():
            data_dir = staged.input_dirs[host_name] / "data"
            for channel, objects in channels:
                for old in data_dir.glob(f"{channel['ChannelName']}_*"):
                    old.unlink()  # a restarted attempt reads from <channel>_0 again
                feeders.append(PipeFeeder(data_dir, channel, objects, self.env.s3_client))
        return feeders

    def _follow_logs(self, backend: RuntimeBackend) -> Callable[[Host, str], None]:
        def follow(host: Host, container_id: str) -> None:
            stream = self._streams.setdefault(host.name, stream_for(self.name, host.name, time.time()))
            assert self._logs is not None
            self._logs.follow(stream, lambda: backend.logs(container_id, follow=True))
        return follow

    def _sync_checkpoints(self, backend: RuntimeBackend, containers: dict[str, str],
                          path: str | None, sync: CheckpointSync | None) -> None:
        if sync is None or path is None:
            return
        for host_name, container_id in sorted(containers.items()):
            local = self.work / "checkpoint-sync" / host_name
            try:
                if backend.copy_out(container_id, path, local):
                    sync.upload_changes(local, scope=host_name)
            except Exception:  # a failed sync is retried on the next tick
                log.exception("checkpoint sync of %s/%s failed", self.name, host_name)

    # -- the end of a job -----------------------------------------------------------------------

    def _conclude(self, request: dict[str, Any], hosts: list[Host], backend: RuntimeBackend,
                  result: at.AttemptResult) -> None:
        outcome = result.outcome
        if outcome == at.SHUTDOWN:
            return self._finish("Failed", reason=SHUTDOWN_REASON)
        if outcome == at.FAILED:
            reason = failure_of(backend, hosts, result, self.work / "failure", self.knobs.memory_mb)
            return self._finish("Failed", reason=reason)
        final = {at.COMPLETED: "Completed", at.STOPPED: "Stopped", at.MAX_RUNTIME: "MaxRuntimeExceeded",
                 at.MAX_WAIT: "MaxWaitTimeExceeded"}[outcome]
        if self._record().get("TrainingJobStatus") == lifecycle.STOPPING:
            final = "Stopped"  # a StopTrainingJob that raced with the containers' end wins
        if final != "Stopped":
            self._move("Uploading")
        remover: threading.Thread | None = None
        try:
            scratch = self.work / "collect"
            model, data = collect_outputs(backend, hosts, result, scratch)
            # The files are out: the containers go while the artifacts go up (_release joins it).
            remover = threading.Thread(target=self._remove_containers, name=f"smemu-remove-{self.name}", daemon=True)
            remover.start()
            artifacts = upload_model_and_output(request, model, data, scratch, self.env.s3_client())
            self.env.make_s3_durable()  # Completed only once the artifacts are on disk for good
        except Exception as exc:
            log.exception("uploading artifacts of %s failed", self.name)
            return self._finish("Failed", reason=f"ClientError: Uploading the model artifacts failed: {exc}")
        finally:
            if remover is not None:
                remover.join()
        self._finish(final, upload=artifacts)

    def _ended_early(self) -> bool:
        """Handle a stop or shutdown that arrived while no container ran; True when the job ended."""
        if self._flags[at.SIGNAL_SHUTDOWN].is_set():
            self._finish("Failed", reason=SHUTDOWN_REASON)
            return True
        if self._flags[at.SIGNAL_STOP].is_set():
            self._finish("Stopped")
            return True
        return False

    def _wait_for_signal(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless stop or shutdown arrives; True when one did."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                kind, _ = self._control.get(timeout=left)
            except queue.Empty:
                break
            if kind in (at.SIGNAL_STOP, at.SIGNAL_SHUTDOWN):
                return True
        return False

    def _finish(self, secondary: str, reason: str | None = None, upload: str | None = None) -> None:
        """Write the terminal state in one update, once nothing of the job is left running.

        Containers, network, volumes and scratch files are removed and every log line is in
        CloudWatch before the status turns terminal, so whoever waited for it finds the
        logs complete and nothing left behind.
        """
        self._release()
        now = time.time()
        metrics = self._metrics.final_metrics()

        def change(record: dict[str, Any]) -> None:
            if lifecycle.is_terminal(record):
                return
            final = secondary
            if record.get("TrainingJobStatus") == lifecycle.STOPPING and final not in ("Stopped", "Failed"):
                final = "Stopped"  # a StopTrainingJob that arrived while the job was finishing wins
            if final == "Stopped" and record.get("SecondaryStatus") != "Stopping":
                lifecycle.move(record, "Stopping", now)
            if reason:
                record["FailureReason"] = reason[:FAILURE_REASON_LIMIT]
            if upload:
                record["ModelArtifacts"] = {"S3ModelArtifacts": upload}
            if metrics:
                record["FinalMetricDataList"] = metrics
            # Spot jobs bill only while containers ran; others from TrainingStartTime, as on AWS.
            lifecycle.finish(record, now, billable_seconds=self._billable if self._spot else None)
            lifecycle.move(record, final, now)

        self.env.store.update(KIND, self.name, change)

    # -- helpers ----------------------------------------------------------------------------------

    def _record(self) -> dict[str, Any]:
        record = self.env.store.get(KIND, self.name)
        if record is None:
            raise RuntimeError(f"training job {self.name} vanished from the store")
        return record

    def _update(self, change: Callable[[dict[str, Any]], Any]) -> None:
        def apply(record: dict[str, Any]) -> None:
            change(record)
            record["LastModifiedTime"] = time.time()
        self.env.store.update(KIND, self.name, apply)

    def _move(self, secondary: str, message: str | None = None) -> bool:
        """Move the job on unless a stop got there first; False when the move was refused."""
        moved = [False]

        def change(record: dict[str, Any]) -> None:
            if lifecycle.can_move(record, secondary):
                lifecycle.move(record, secondary, time.time(), message)
                moved[0] = True

        self.env.store.update(KIND, self.name, change)
        return moved[0]

    def _remove_containers(self) -> None:
        try:
            self.env.backend.remove_labelled(self._labels)
        except RuntimeError_ as exc:
            log.warning("removing the containers of %s failed: %s", self.name, exc)
        else:
            self._removed = True

    def _release(self) -> None:
        """Remove everything the job made (idempotent); log readers end with their containers."""
        if self._released:
            return
        self._released = True
        if not self._removed:
            self._remove_containers()
        if self._logs is not None:
            try:
                self._logs.close()
            except Exception:
                log.exception("closing the logs of %s failed", self.name)
        shutil.rmtree(self.work, ignore_errors=True)


def gpu_plan(hosts: list[Host], backend: RuntimeBackend, policy: GpuPolicy, job_name: str) -> dict[str, list[str]]:
    """GPU device ids of each host (emulator.gpus); raises GpuUnavailable when they are not here.

    CPU-only jobs never ask the engine anything.
    """
    from emulator.instances import instance_type

    types = [h.instance_type for h in hosts]
    if not any(instance_type(t).accelerators for t in types):
        return {}
    plan = assign(types, backend.gpu_devices(), policy, what=f"training job {job_name}")
    return {h.name: ids for h, ids in zip(hosts, plan) if ids}


def check_gpus(resource_config: dict[str, Any], backend: RuntimeBackend, policy: GpuPolicy,
               job_name: str) -> str | None:
    """The ResourceLimitExceeded message when a job's GPUs cannot be had here; None when they can."""
    from emulator.training.layout import plan_hosts

    try:
        gpu_plan(plan_hosts(resource_config), backend, policy, job_name)
    except GpuUnavailable as exc:
        return exc.limit_message(USAGE_TRAINING)
    return None
