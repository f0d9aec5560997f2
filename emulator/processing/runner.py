"""Runs one processing job in a background thread, through the runtime backend.

::

    InProgress  resolve the image, stage inputs (File downloads, Pipe FIFOs), write
                /opt/ml/config, start every host's container, follow its logs, sync
                Continuous outputs every few seconds
    Completed   every container exited 0; outputs uploaded
    Failed      a container exited non-zero (FailureReason: its failure file, its OOM kill
                or exit code), the image or an input could not be had, an upload failed
    Stopped     StopProcessingJob (SIGTERM, then SIGKILL after the grace), or
                MaxRuntimeInSeconds ran out (said in FailureReason)

ExitMessage is ``/opt/ml/output/message`` of the hosts, joined in host order, at most 1 KB.
Every path ends in ``_release``: containers, network and volumes are removed by label and the
scratch folder deleted before the status turns terminal, and every log line is in CloudWatch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.images import MissingImage
from emulator.jobs import attempt as at
from emulator.jobs import records as rec
from emulator.jobs.channels import ChannelError
from emulator.jobs.hosts import Host, numbered_hosts
from emulator.jobs.logs import JobLogs, release, stream_for
from emulator.processing import layout
from emulator.processing.inputs import CONTINUOUS_UPLOAD_SECONDS, OutputUploader, output_folders, pipe_feeders, \
    stage_inputs
from emulator.runtime.spec import EngineUnavailable, ImageNotFound, RuntimeBackend, RuntimeError_, StagedFolder
from emulator.training.collect import failure_of

log = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
SHUTDOWN_REASON = ("InternalServerError: The emulator stopped while the processing job was running; its "
                   "containers were removed. Start the job again.")


@dataclass
class ProcessingEnv:
    """What a runner needs from the platform."""

    records: rec.JobRecords
    backend: RuntimeBackend
    resolve_image: Callable[[str], str]
    s3_client: Callable[[], Any]
    platform_env: Callable[[str | None], dict[str, str]]
    work_root: Path
    account_id: str
    region: str
    home_id: str
    resource_limits: bool = True
    make_s3_durable: Callable[[], None] = lambda: None
    """Returns once the objects the store acknowledged survive a power loss (S3Store.make_durable)."""
    stop_grace_seconds: float = 120.0


class ProcessingRunner:
    """One job's thread plus the signals the service sends it (``stop``, ``shutdown``)."""

    def __init__(self, env: ProcessingEnv, name: str, on_done: Callable[[str], None]) -> None:
        self.env = env
        self.name = name
        self.work = env.work_root / name
        self._on_done = on_done
        self._control: queue.Queue[tuple[str, object]] = queue.Queue()
        self._signals = {at.SIGNAL_STOP: threading.Event(), at.SIGNAL_SHUTDOWN: threading.Event()}
        self._labels = layout.labels(name, env.home_id)
        self._logs: JobLogs | None = None
        self._released = False
        self.thread = threading.Thread(target=self._run, name=f"smemu-proc-{name}", daemon=True)

    def start(self) -> None:
        """Run the job in the background."""
        self.thread.start()

    def signal(self, kind: str) -> None:
        """Deliver ``stop`` or ``shutdown``."""
        self._signals[kind].set()
        self._control.put((kind, None))

    # -- the job ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._execute()
        except Exception as exc:  # a bug must still end the job with a reason, and be logged
            log.exception("processing job %s failed inside the emulator", self.name)
            self._finish(rec.FAILED, reason=f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            self._release()
            self._on_done(self.name)

    def _execute(self) -> None:
        record = self._record()
        cluster = record["ProcessingResources"]["ClusterConfig"]
        hosts = numbered_hosts(cluster["InstanceType"], int(cluster["InstanceCount"]))
        try:
            image = self.env.resolve_image(record["AppSpecification"]["ImageUri"])
        except ImageNotFound as exc:
            reason = exc.reason("processing") if isinstance(exc, MissingImage) else str(exc)
            return self._finish(rec.FAILED, reason=f"ClientError: {reason}")
        except EngineUnavailable as exc:
            return self._finish(rec.FAILED, reason=f"InternalServerError: {exc}")
        if self._ended_early():
            return
        self.env.records.update(self.name, lambda r: r.setdefault("ProcessingStartTime", time.time()), time.time())
        try:
            staged = stage_inputs(record, hosts, self.work, self.env.s3_client, self.env.region)
        except ChannelError as exc:
            return self._finish(rec.FAILED, reason=str(exc))
        if self._ended_early():
            return
        for host in hosts:
            layout.write_config_files(self.work / "config" / host.name, record, host, hosts)
        outputs = OutputUploader(record, self.env.s3_client)
        result = self._run_containers(record, hosts, image, staged, outputs)
        self._conclude(record, hosts, result, outputs)

    def _run_containers(self, record: dict[str, Any], hosts: list[Host], image: str, staged: Any,
                        outputs: OutputUploader) -> at.AttemptResult:
        backend = self.env.backend
        self._logs = JobLogs(self.env.account_id, self.env.region, None, LOG_GROUP)
        network = record.get("NetworkConfig") or {}
        if len(hosts) > 1:
            backend.create_network(layout.network_name(self.name), self._labels,
                                   internal=bool(network.get("EnableNetworkIsolation")))
        platform_env = self.env.platform_env(record.get("RoleArn"))
        specs = []
        feeders = []
        for host in hosts:
            folders = [StagedFolder(self.work / "config" / host.name, layout.CONFIG_DIR, read_only=True),
                       *staged[host.name].folders, *output_folders(record),
                       StagedFolder(None, layout.OUTPUT_DIR, private=True)]
            layout.prepare_mount_points(folders)
            specs.append((host, layout.host_spec(record, image, host, hosts, folders, region=self.env.region,
                                                 home_id=self.env.home_id, resource_limits=self.env.resource_limits,
                                                 platform_env=platform_env)))
            feeders += pipe_feeders(staged[host.name], self.env.s3_client)
        max_runtime = float((record.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
        deadlines = at.Deadlines(max_runtime=max_runtime,
                                 checkpoint_every=CONTINUOUS_UPLOAD_SECONDS if outputs.continuous else None)
        for kind, flag in self._signals.items():
            if flag.is_set():
                self._control.put((kind, None))
        run = at.Attempt(backend, specs, self._control, self.env.stop_grace_seconds, deadlines)
        started = time.time()
        logs = self._logs

        def follow(host: Host, container_id: str) -> None:
            logs.follow(stream_for(self.name, host.name, started), lambda: backend.logs(container_id, follow=True))

        def sync() -> None:
            self._upload(outputs, run.result.container_ids, only_continuous=True)

        try:
            run.start_containers(follow)
            for feeder in feeders:
                feeder.start()
            return run.wait(sync if outputs.continuous else None)
        except BaseException:
            for container_id in run.result.container_ids.values():
                backend.kill(container_id)
            raise
        finally:
            for feeder in feeders:
                feeder.stop()
            logs.wait_readers()
            logs.flush()

    def _upload(self, outputs: OutputUploader, containers: dict[str, str], only_continuous: bool) -> None:
        def copy_out(host: str, path: str, dest: Path) -> bool:
            return self.env.backend.copy_out(containers[host], path, dest)
        try:
            outputs.upload(copy_out, sorted(containers), self.work / "outputs", only_continuous)
        except Exception:
            if not only_continuous:
                raise
            log.exception("continuous upload of %s failed; retried on the next sync", self.name)

    def _conclude(self, record: dict[str, Any], hosts: list[Host], result: at.AttemptResult,
                  outputs: OutputUploader) -> None:
        message = self._exit_message(hosts, result)
        if result.outcome == at.SHUTDOWN:
            return self._finish(rec.FAILED, reason=SHUTDOWN_REASON, message=message)
        if result.outcome == at.FAILED:
            reason = failure_of(self.env.backend, hosts, result, self.work / "failure")
            return self._finish(rec.FAILED, reason=reason, message=message)
        if result.outcome == at.STOPPED or self._signals[at.SIGNAL_STOP].is_set():
            return self._finish(rec.STOPPED, message=message)
        if result.outcome == at.MAX_RUNTIME:
            limit = (record.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400)
            return self._finish(rec.STOPPED, message=message,
                                reason=f"MaxRuntimeExceeded: The processing job ran longer than MaxRuntimeInSeconds "
                                       f"({limit} s) and was stopped.")
        try:
            self._upload(outputs, result.container_ids, only_continuous=False)
            self.env.make_s3_durable()  # Completed only once the outputs are on disk for good
        except Exception as exc:
            log.exception("uploading the outputs of %s failed", self.name)
            return self._finish(rec.FAILED, reason=f"ClientError: Uploading the outputs failed: {exc}",
                                message=message)
        self._finish(rec.COMPLETED, message=message)

    def _exit_message(self, hosts: list[Host], result: at.AttemptResult) -> str | None:
        """``/opt/ml/output/message`` of every host, joined in host order (ExitMessage)."""
        parts = []
        for host in hosts:
            container_id = result.container_ids.get(host.name)
            folder = self.work / "exit" / host.name
            try:
                if container_id and self.env.backend.copy_out(container_id, layout.OUTPUT_DIR, folder):
                    message = folder / "message"
                    if message.is_file():
                        parts.append(message.read_bytes()[:4096].decode("utf-8", errors="replace").strip())
            except RuntimeError_ as exc:
                log.warning("reading the exit message of %s/%s failed: %s", self.name, host.name, exc)
        text = "\n".join(p for p in parts if p)
        return text[: rec.REASON_LIMIT] or None

    # -- the end of a job -------------------------------------------------------------------

    def _ended_early(self) -> bool:
        if self._signals[at.SIGNAL_SHUTDOWN].is_set():
            self._finish(rec.FAILED, reason=SHUTDOWN_REASON)
            return True
        if self._signals[at.SIGNAL_STOP].is_set():
            self._finish(rec.STOPPED)
            return True
        return False

    def _finish(self, status: str, reason: str | None = None, message: str | None = None) -> None:
        """Remove what the job made, then write its terminal status in one update."""
        self._release()
        self.env.records.finish(self.name, status, time.time(), "ProcessingEndTime",
                                FailureReason=reason, ExitMessage=message)

    def _record(self) -> dict[str, Any]:
        record = self.env.records.get(self.name)
        if record is None:
            raise RuntimeError(f"processing job {self.name} vanished from the store")
        return record

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        release(self.env.backend, self._labels, self._logs, self.work, self.name)
