"""Multi-model endpoints, the I/O part: one instance's models, loaded on demand.

:class:`InstanceModels` plays SageMaker's side of the multi-model container API for one
instance (research/inference-contract.md §3.2-3.3):

1. a TargetModel not on disk is downloaded from ``<prefix><TargetModel>`` and extracted
   (safely, as any model archive) to ``/opt/ml/models/<name>/model``;
2. ``POST /models {"model_name", "url"}`` loads it; 200 (any 2xx) and 409 mean loaded,
   507 makes the platform unload the least recently used idle model and try again, anything
   else is a refusal that reaches the caller as ModelError;
3. ``POST /models/<name>/invoke`` serves the invocation (the router maps its answers);
4. ``DELETE /models/<name>`` unloads, when a budget is exceeded, when the container
   answered 507, or after every call when ModelCacheSetting is Disabled.

Concurrency: the first caller of a model starts its load in a thread of its own and every
caller of that model waits on the same load, so simultaneous first invocations load it
exactly once, and a slow load never blocks invocations of other models. A caller waits at
most ``wait`` seconds (SageMaker: 60) and then gets :class:`ModelNotReady`, while the load
goes on for up to :data:`LOAD_LIMIT` seconds, as on SageMaker. The bookkeeping is
:class:`~.multi_model.ModelCache`, always touched under this instance's lock; HTTP and S3
work happens outside it.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from emulator.hosting.container_http import ConnectionPool, ContainerResponse, ContainerUnreachable
from emulator.hosting.model_data import ModelDataError, remove_tree, safe_extract
from emulator.hosting.multi_model import (
    LOADING,
    TARGET_MODEL_HEADER,
    UNLOADING,
    Budget,
    CachedModel,
    ModelCache,
    MultiModelPlan,
    container_url,
    object_key,
)
from emulator.runtime.spec import RuntimeError_
from emulator.s3 import S3Location

log = logging.getLogger(__name__)

LOAD_LIMIT = 360.0
"""How long SageMaker keeps downloading and loading a model after the caller gave up."""
UNLOAD_TIMEOUT = 60.0
_CHUNK = 1 << 20

EventSink = Callable[[str, float], None]
"""``(metric name, microseconds)``: ModelDownloadingTime, ModelLoadingTime, ModelUnloadingTime."""
PlacementSink = Callable[[str, str, bool], None]
"""``(TargetModel, model name, loaded)``: a cached model became loaded, or is about to be unloaded."""
FolderSink = Callable[[str, "Path | None"], None]
"""``(model name, its folder on this machine or None)``: the folder was extracted or removed, and the
container must see it before it is told (``RuntimeBackend.copy_in``: a pod has its own copy)."""


class LoadError(Exception):
    """A model could not be made ready; the router turns it into the runtime's error."""


class TargetMissing(LoadError):
    """No object at ``<prefix><TargetModel>`` (or it cannot be read)."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"s3://{bucket}/{key}")
        self.bucket, self.key = bucket, key


class TargetUnusable(LoadError):
    """The object is not a model archive the platform can extract safely."""


class LoadRefused(LoadError):
    """The container answered ``POST /models`` with an error status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"POST /models answered {status}")
        self.status, self.body = status, body


class ContainerFailed(LoadError):
    """The container did not answer the model API (closed the connection, or timed out)."""

    def __init__(self, detail: str, timed_out: bool = False) -> None:
        super().__init__(detail)
        self.timed_out = timed_out


class ModelNotReady(Exception):
    """The model is still downloading or loading after the caller's wait."""


class _Waiter:
    """What callers of a busy model wait on; carries the load's error, if any."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.error: LoadError | None = None

    def finish(self, error: LoadError | None = None) -> None:
        self.error = error
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(max(0.0, timeout))


class InstanceModels:
    """The models of one multi-model container: the cache, the loads and the unloads."""

    def __init__(
        self,
        instance_id: str,
        pool: ConnectionPool,
        folder: Path,
        plan: MultiModelPlan,
        budget: Budget,
        s3_client: Callable[[], Any],
        background: Callable[[Callable[[], None]], None],
        on_event: EventSink | None = None,
        load_limit: float = LOAD_LIMIT,
        on_placement: PlacementSink | None = None,
        on_folder: FolderSink | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.pool = pool
        self.folder = folder
        """This instance's models folder on this machine (mounted at /opt/ml/models)."""
        self.plan = plan
        self.cache = ModelCache(budget)
        self.s3_client = s3_client
        self.background = background
        """Runs a function soon in another thread (unloads the caller need not wait for)."""
        self.on_event = on_event
        self.on_placement = on_placement if plan.caching else None
        """Told when a model can be invoked without the platform (the data plane serves those)."""
        self.load_limit = load_limit
        self.on_folder = on_folder
        self.location = S3Location.parse(plan.prefix)
        self.lock = threading.Lock()

    @property
    def stats(self) -> Any:
        """The cache's counters (hits, misses, loads, evictions, ...)."""
        return self.cache.stats

    # -- what invocations do ---------------------------------------------------------------

    def acquire(self, target: str, wait: float) -> tuple[CachedModel, bool]:
        """The model, loaded and counted as in use; ``(entry, hit)``.

        Starts (or joins) the model's load when it is not loaded. Raises
        :class:`ModelNotReady` after ``wait`` seconds, or the load's :class:`LoadError`.
        The caller must :meth:`release` the entry.
        """
        deadline = time.monotonic() + wait
        missed = False
        while True:
            with self.lock:
                entry = self.cache.get(target)
                if entry is not None and entry.ready:
                    entry.in_use += 1
                    self.cache.touch(entry, time.time())
                    if not missed:
                        entry.hits += 1
                        self.cache.stats.hits += 1
                    return entry, not missed
                if not missed:
                    missed = True
                    self.cache.stats.misses += 1
                if entry is None or entry.busy is None:
                    entry = entry if entry is not None else self.cache.add(target)
                    entry.busy = LOADING
                    entry.waiter = _Waiter()
                    self.cache.touch(entry, time.time())
                    threading.Thread(
                        target=self._load, args=(entry, entry.waiter), name=f"mme-load-{entry.name[:8]}", daemon=True
                    ).start()
                waiter: _Waiter = entry.waiter
            if not waiter.wait(deadline - time.monotonic()):
                raise ModelNotReady(target)
            if waiter.error is not None:
                raise waiter.error

    def release(self, entry: CachedModel) -> None:
        """An invocation is done with a model: unload it if caching is disabled, and catch up
        on a cache budget that busy models kept from being enforced."""
        with self.lock:
            entry.in_use -= 1
            victims = []
            if entry.in_use == 0 and not self.plan.caching and entry.ready:
                entry.busy = UNLOADING
                entry.waiter = _Waiter()
                victims.append(entry)
            victims.extend(self._claim(self.cache.claim_disk_victims()))
        if victims:
            self.background(lambda: self._unload_all(victims, remove_files=True))

    def invoke(self, entry: CachedModel, body: bytes, headers: dict[str, str], timeout: float) -> ContainerResponse:
        """``POST /models/<name>/invoke``; a 507 unloads the least recently used other model
        and retries (GPU containers answer so when out of memory). Raises ``TimeoutError`` or
        :class:`ContainerUnreachable`."""
        path = f"/models/{entry.name}/invoke"
        headers = {**headers, TARGET_MODEL_HEADER: entry.target}
        deadline = time.monotonic() + timeout
        while True:
            response = self.pool.request(
                "POST", path, body, headers, max(0.001, deadline - time.monotonic()), max_body=6 * 1024 * 1024
            )
            if response.status != 507:
                return response
            with self.lock:
                victim = self.cache.claim_lru_loaded(entry)
                if victim is not None:
                    self._claim([victim])
            if victim is None:
                return response
            self._unload(victim, remove_files=False)

    def forget_loaded(self, entry: CachedModel) -> None:
        """The container answered 404 for a model we loaded: load it again on the next call."""
        with self.lock:
            if entry.ready:
                entry.loaded = False
        self._placed(entry, False)

    def _placed(self, entry: CachedModel, loaded: bool) -> None:
        if self.on_placement is not None:
            self.on_placement(entry.target, entry.name, loaded)

    # -- loading --------------------------------------------------------------------------

    def _claim(self, victims: list[CachedModel]) -> list[CachedModel]:
        """Give claimed victims a waiter (callers wait for the unload to finish). Lock held."""
        for victim in victims:
            victim.waiter = _Waiter()
        return victims

    def _load(self, entry: CachedModel, waiter: _Waiter) -> None:
        """Worker: make ``entry`` loaded (download if needed, make room, POST /models)."""
        error: LoadError | None = None
        started = time.monotonic()
        try:
            if not entry.on_disk:
                self._make_room_on_disk(entry)
                size = self._download(entry, started)
                with self.lock:
                    entry.size, entry.on_disk = size, True
                self._make_room_on_disk(entry)
            with self.lock:
                victims = self._claim(self.cache.claim_memory_victims(entry, entry.size))
            self._unload_all(victims, remove_files=False)
            self._register(entry, started)
        except LoadError as exc:
            error = exc
        except Exception as exc:  # every waiter must be released, whatever went wrong
            log.exception("loading model %s failed", entry.target)
            error = LoadError(f"the emulator could not load the model: {type(exc).__name__}: {exc}")
        if error is not None and entry.on_disk and not entry.loaded:
            # Still marked loading, so no other caller starts a load into this folder meanwhile.
            self._remove_files(entry)
            entry.on_disk = False
        with self.lock:
            entry.busy, entry.waiter = None, None
            if error is not None:
                self.cache.stats.failures += 1
                self.cache.discard(entry)
        if error is None and entry.loaded:
            self._placed(entry, True)
        waiter.finish(error)

    def _make_room_on_disk(self, entry: CachedModel) -> None:
        with self.lock:
            victims = self._claim(self.cache.claim_disk_victims(keep=entry))
        self._unload_all(victims, remove_files=True)

    def _download(self, entry: CachedModel, started: float) -> int:
        """Fetch and extract the model archive; returns the extracted size in bytes."""
        key = object_key(self.location.key, entry.target)
        home = self.folder / entry.name
        remove_tree(home)
        s3 = self.s3_client()
        with tempfile.TemporaryDirectory(prefix="smemu-mme-") as scratch:
            archive = Path(scratch) / "model.tar.gz"
            try:
                response = s3.get_object(Bucket=self.location.bucket, Key=key)
            except ClientError as exc:
                raise TargetMissing(self.location.bucket, key) from exc
            body = response["Body"]
            try:
                with archive.open("wb") as handle:
                    for chunk in iter(lambda: body.read(_CHUNK), b""):
                        handle.write(chunk)
                        if time.monotonic() - started > self.load_limit:
                            raise ContainerFailed(f"downloading s3://{self.location.bucket}/{key} took too long", True)
            finally:
                body.close()
            try:
                safe_extract(archive, home / "model")
            except ModelDataError as exc:
                remove_tree(home)
                raise TargetUnusable(str(exc)) from exc
        if self.on_folder is not None:
            self.on_folder(entry.name, home)
        seconds = time.monotonic() - started
        with self.lock:
            self.cache.stats.downloads += 1
            self.cache.stats.download_seconds += seconds
        self._event("ModelDownloadingTime", seconds)
        return sum(p.stat().st_size for p in home.rglob("*") if p.is_file())

    def _register(self, entry: CachedModel, started: float) -> None:
        """POST /models until loaded: 2xx and 409 succeed, 507 evicts one idle model and retries."""
        payload = json.dumps({"model_name": entry.name, "url": container_url(entry.name)}).encode()
        headers = {"Content-Type": "application/json", TARGET_MODEL_HEADER: entry.target}
        while True:
            remaining = self.load_limit - (time.monotonic() - started)
            if remaining <= 0:
                raise ContainerFailed(f"loading the model took longer than {self.load_limit:g} s", True)
            began = time.monotonic()
            try:
                response = self.pool.request("POST", "/models", payload, headers, remaining, max_body=64 * 1024)
            except TimeoutError as exc:
                raise ContainerFailed(f"POST /models did not answer within {self.load_limit:g} s", True) from exc
            except ContainerUnreachable as exc:
                raise ContainerFailed(str(exc)) from exc
            if 200 <= response.status < 300 or response.status == 409:
                seconds = time.monotonic() - began
                with self.lock:
                    entry.loaded = True
                    entry.loads += 1
                    entry.last_load_seconds = seconds
                    stats = self.cache.stats
                    stats.loads += 1
                    stats.load_seconds += seconds
                    stats.max_load_seconds = max(stats.max_load_seconds, seconds)
                self._event("ModelLoadingTime", seconds)
                return
            if response.status == 507:
                with self.lock:
                    victim = self.cache.claim_lru_loaded(entry)
                    if victim is not None:
                        self._claim([victim])
                if victim is not None:
                    self._unload(victim, remove_files=False)
                    continue
            raise LoadRefused(response.status, response.body)

    # -- unloading ------------------------------------------------------------------------

    def _unload_all(self, victims: list[CachedModel], remove_files: bool) -> None:
        for victim in victims:
            self._unload(victim, remove_files)

    def _unload(self, entry: CachedModel, remove_files: bool) -> None:
        """DELETE /models/<name> (when loaded), then optionally delete its folder; wakes waiters."""
        began = time.monotonic()
        if entry.loaded:
            self._placed(entry, False)
            try:
                response = self.pool.request(
                    "DELETE", f"/models/{entry.name}", b"", {TARGET_MODEL_HEADER: entry.target}, UNLOAD_TIMEOUT
                )
                if response.status not in (200, 404):
                    log.warning(
                        "instance %s: DELETE /models/%s (%s) answered %s",
                        self.instance_id, entry.name, entry.target, response.status,
                    )
            except (TimeoutError, ContainerUnreachable) as exc:
                log.warning("instance %s: unloading %s failed: %s", self.instance_id, entry.target, exc)
            self._event("ModelUnloadingTime", time.monotonic() - began)
        if remove_files:
            self._remove_files(entry)
        with self.lock:
            self.cache.unloaded(entry, files_removed=remove_files)
            waiter, entry.waiter = entry.waiter, None
        if waiter is not None:
            waiter.finish()

    def _remove_files(self, entry: CachedModel) -> None:
        """Delete a model's folder here and, where the container has a copy of its own, there."""
        remove_tree(self.folder / entry.name)
        if self.on_folder is not None:
            try:
                self.on_folder(entry.name, None)
            except RuntimeError_ as exc:  # the files are gone here; a stale copy there is never loaded again
                log.warning("instance %s: removing the files of %s failed: %s", self.instance_id, entry.target, exc)

    def _event(self, name: str, seconds: float) -> None:
        if self.on_event is not None:
            self.on_event(name, seconds * 1_000_000)

    # -- observability ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """This instance's models and counters, for ``GET /_smemu/endpoints/<name>/models``."""
        with self.lock:
            models = [
                {
                    "TargetModel": e.target,
                    "ModelName": e.name,
                    "State": e.state,
                    "SizeBytes": e.size,
                    "InUse": e.in_use,
                    "Hits": e.hits,
                    "Loads": e.loads,
                    "LastLoadSeconds": round(e.last_load_seconds, 6),
                    "LastUsed": e.last_used,
                }
                for e in self.cache
            ]
            budget = self.cache.budget
            return {
                "InstanceId": self.instance_id,
                "LoadedModelCount": self.cache.loaded_count,
                "Budget": {
                    "MaxModels": budget.max_models,
                    "MaxBytes": budget.max_bytes,
                    "MemoryBytes": budget.memory_bytes,
                },
                "Stats": self.cache.stats.as_dict(),
                "Models": models,
            }
