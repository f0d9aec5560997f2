"""Runs one batch transform job in a background thread.

::

    InProgress  resolve the model's image, stage its model data, list the input objects,
                start one model container per instance and wait for /ping, ask each for
                /execution-parameters, then transform the objects: object i goes to
                instance i mod n (sorted by key; an instance may get none, as on AWS)
    Completed   every object's ``<key>.out`` is in S3
    Failed      an object could not be transformed (the others still are, as on AWS), or
                the image, the model data, the input or an instance failed
    Stopped     StopTransformJob: no new requests; containers are stopped

Logs: ``/aws/sagemaker/TransformJobs``, one stream per instance, ``<job>/<instance id>-<epoch>``,
with the container's output and the platform's lines about objects that failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.hosting.model_data import ModelDataError, stage_model_data
from emulator.hosting.plan import ContainerPlan
from emulator.images import MissingImage
from emulator.jobs import records as rec
from emulator.jobs.channels import ChannelError, DataObject, list_objects
from emulator.jobs.logs import JobLogs, release, stream_for
from emulator.runtime.spec import EngineUnavailable, ImageNotFound, RuntimeBackend, RuntimeError_
from emulator.s3 import S3Location
from emulator.transform import instances as inst
from emulator.transform.objects import ObjectFailed, Plan, transform_object

log = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TransformJobs"
SHUTDOWN_REASON = ("InternalServerError: The emulator stopped while the transform job was running; its "
                   "containers were removed. Start the job again.")


@dataclass
class TransformEnv:
    """What a runner needs from the platform."""

    records: rec.JobRecords
    backend: RuntimeBackend
    resolve_image: Callable[[str], str]
    s3_client: Callable[[], Any]
    platform_env: dict[str, str]
    work_root: Path
    account_id: str
    region: str
    home_id: str
    resource_limits: bool = True
    make_s3_durable: Callable[[], None] = lambda: None
    """Returns once the objects the store acknowledged survive a power loss (S3Store.make_durable)."""
    startup_timeout: float = 600.0
    download_timeout: float = 600.0


class TransformRunner:
    """One job's thread; ``stop()`` and ``shutdown()`` end it early."""

    def __init__(self, env: TransformEnv, name: str, container: ContainerPlan,
                 on_done: Callable[[str], None]) -> None:
        self.env = env
        self.name = name
        self.container = container
        self.work = env.work_root / name
        self._on_done = on_done
        self._stop = threading.Event()
        self._shutdown = threading.Event()
        self._logs = JobLogs(env.account_id, env.region, None, LOG_GROUP)
        self._released = False
        self._streams: dict[str, str] = {}
        self.thread = threading.Thread(target=self._run, name=f"smemu-transform-{name}", daemon=True)

    def start(self) -> None:
        """Run the job in the background."""
        self.thread.start()

    def stop(self) -> None:
        """StopTransformJob: send no more requests."""
        self._stop.set()

    def shutdown(self) -> None:
        """The emulator is stopping: end the job now."""
        self._shutdown.set()
        self._stop.set()

    def _ending(self) -> bool:
        return self._stop.is_set()

    # -- the job ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._execute()
        except Exception as exc:
            log.exception("transform job %s failed inside the emulator", self.name)
            self._finish(rec.FAILED, f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            self._release()
            self._on_done(self.name)

    def _execute(self) -> None:
        record = self._record()
        self.env.records.update(self.name, lambda r: r.setdefault("TransformStartTime", time.time()), time.time())
        try:
            image = self.env.resolve_image(self.container.image)
        except ImageNotFound as exc:
            reason = exc.reason("transform") if isinstance(exc, MissingImage) else str(exc)
            return self._finish(rec.FAILED, f"ClientError: {reason}")
        except EngineUnavailable as exc:
            return self._finish(rec.FAILED, f"InternalServerError: {exc}")
        model_dir = self.work / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        source = record["TransformInput"]["DataSource"]["S3DataSource"]
        try:
            if self.container.model_data is not None:
                stage_model_data(self.env.s3_client(), self.container.model_data, model_dir,
                                 self.container.download_label, self.env.download_timeout)
            channel = {"ChannelName": "input", "DataSource": {"S3DataSource": source}}
            objects = list_objects(channel, self.env.s3_client(), self.env.region, "")
        except (ModelDataError, ChannelError) as exc:
            return self._finish(rec.FAILED, str(exc) if str(exc).startswith("ClientError") else f"ClientError: {exc}")
        count = int(record["TransformResources"]["InstanceCount"])
        env = inst.environment(record, self.container, self.env.platform_env)
        started: list[inst.Instance] = []
        try:
            for number in range(1, count + 1):
                instance = inst.start_instance(self.env.backend, record, number, image, model_dir, env,
                                               self.env.home_id, self.env.resource_limits)
                started.append(instance)
                self._follow(instance)
            for instance in started:
                inst.wait_healthy(self.env.backend, instance, self.env.startup_timeout, self._ending)
        except inst.InstanceFailed as exc:
            return self._finish(rec.FAILED, str(exc))
        except RuntimeError_ as exc:
            return self._finish(rec.FAILED, f"ClientError: Could not start the model container: {exc}")
        if self._ending():
            return self._finish_stopped()
        failures = self._transform(record, objects, started)
        if self._ending():
            return self._finish_stopped()
        if failures:
            return self._finish(rec.FAILED, failures[0] if len(failures) == 1 else
                                f"{failures[0]} ({len(failures) - 1} more objects failed; see the job's logs)")
        try:
            self.env.make_s3_durable()  # Completed only once every output is on disk for good
        except OSError as exc:
            return self._finish(rec.FAILED, f"ClientError: Could not make the outputs durable: {exc}")
        self._finish(rec.COMPLETED)

    def _follow(self, instance: inst.Instance) -> None:
        stream = self._streams[instance.instance_id] = stream_for(self.name, instance.instance_id, time.time())
        backend = self.env.backend
        self._logs.follow(stream, lambda: backend.logs(instance.container_id, follow=True))

    def _transform(self, record: dict[str, Any], objects: list[DataObject], started: list[inst.Instance]) -> list[str]:
        """Run every instance's share of the objects in parallel; the failure reasons, in object order."""
        failures: dict[int, str] = {}
        threads = []
        for index, instance in enumerate(started):
            share = [(i, o) for i, o in enumerate(objects) if i % len(started) == index]
            thread = threading.Thread(target=self._instance_share, args=(record, instance, share, failures),
                                      name=f"smemu-transform-{self.name}-{instance.number}", daemon=True)
            threads.append(thread)
            thread.start()
        for thread in threads:
            thread.join()
        return [failures[i] for i in sorted(failures)]

    def _instance_share(self, record: dict[str, Any], instance: inst.Instance,
                        share: list[tuple[int, DataObject]], failures: dict[int, str]) -> None:
        settings = inst.batch_settings(record, instance)
        plan = Plan.of(record, settings.strategy, settings.max_payload_mb)
        output = S3Location.parse(record["TransformOutput"]["S3OutputPath"])
        stream = self._streams[instance.instance_id]
        self._logs.add_line(stream, settings.log_line())
        assert instance.pool is not None
        with ThreadPoolExecutor(max_workers=settings.max_concurrent,
                                thread_name_prefix=f"smemu-invoke-{instance.number}") as executor:
            for index, item in share:
                if self._ending():
                    return
                where = item.s3.uri if item.s3 else str(item.local)
                try:
                    result = transform_object(self._read(item), where, plan, instance.pool, executor, self._ending)
                    if result is None:
                        return
                    target = output.join(item.relative + ".out")
                    extra = {"ContentType": plan.accept} if plan.accept else {}
                    self.env.s3_client().put_object(Bucket=target.bucket, Key=target.key, Body=result, **extra)
                except ObjectFailed as exc:
                    failures[index] = str(exc)
                    self._logs.add_line(stream, str(exc))
                except Exception as exc:  # an S3 failure: this object fails, the others go on
                    log.exception("transform job %s: object %s failed", self.name, where)
                    failures[index] = f"ClientError: Cannot transform {where}: {exc}"

    def _read(self, item: DataObject) -> bytes:
        if item.local is not None:
            return item.local.read_bytes()
        assert item.s3 is not None
        body = self.env.s3_client().get_object(Bucket=item.s3.bucket, Key=item.s3.key)["Body"]
        return bytes(body.read())

    # -- the end of a job --------------------------------------------------------------------

    def _finish_stopped(self) -> None:
        if self._shutdown.is_set():
            return self._finish(rec.FAILED, SHUTDOWN_REASON)
        self._finish(rec.STOPPED)

    def _finish(self, status: str, reason: str | None = None) -> None:
        """Remove the containers, write every log line, then the terminal status."""
        self._release()
        self.env.records.finish(self.name, status, time.time(), "TransformEndTime", FailureReason=reason)

    def _record(self) -> dict[str, Any]:
        record = self.env.records.get(self.name)
        if record is None:
            raise RuntimeError(f"transform job {self.name} vanished from the store")
        return record

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        release(self.env.backend, inst.labels(self.name, self.env.home_id), self._logs, self.work, self.name)
