"""InvokeEndpoint on multi-model endpoints: pick the instance, make the model ready, invoke it.

The router keeps one :class:`~.model_loader.InstanceModels` per running multi-model
container (found again by container id whenever the routing table is rebuilt, so a weight
change or a scale-out keeps what is loaded) and routes each TargetModel as SageMaker does
(research/inference-contract.md §3.2): to the instance that has the model, else to the one it
was loaded on before (sticky), else to the instance with the fewest models. The choice is
recorded before the lock is released, so simultaneous first calls of a model all go to the
same instance and load it once.

Errors are SageMaker's: a TargetModel that escapes the prefix or names no object is a
ValidationError, a load the container refuses and every container failure is ModelError
(never 5xx), a load still under way after the wait is ModelNotReadyException (429).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from emulator.context import CallContext
from emulator.errors import InternalFailure, ModelNotReadyException, ServiceError, ValidationError
from emulator.hosting.container_http import ContainerResponse, ContainerUnreachable
from emulator.hosting.data_plane import Placement
from emulator.hosting.invoke import MAX_PAYLOAD, Invocation, no_instance
from emulator.hosting.model_loader import (
    ContainerFailed,
    InstanceModels,
    LoadError,
    LoadRefused,
    ModelNotReady,
    TargetMissing,
    TargetUnusable,
)
from emulator.hosting.multi_model import MODELS_PATH, CacheStats, target_problem
from emulator.hosting.multi_model_metrics import Gauge, MetricsPublisher
from emulator.hosting.routing import EndpointRoute, InstanceRoute, RoutingTable, VariantRoute
from emulator.hosting.runtime_errors import broken_error, model_error, timeout_error

log = logging.getLogger(__name__)

WHO = "primary"
"""How ModelError messages name a multi-model container (it is the model's PrimaryContainer)."""


class MultiModelRouter:
    """Multi-model invocations of every endpoint, and what they have loaded."""

    def __init__(
        self,
        table: RoutingTable,
        work_dir: Path,
        s3_client: Callable[[], Any],
        max_models: int | None = None,
        max_bytes: int | None = None,
        memory_budget: bool = True,
        metrics: MetricsPublisher | None = None,
        copy_in: Callable[[str, str, Path | None], None] | None = None,
    ) -> None:
        self.table = table
        self.copy_in = copy_in
        """``RuntimeBackend.copy_in``: models reach containers that have their own copy of the folder."""
        self.work_dir = work_dir
        self.s3_client = s3_client
        self.max_models = max_models
        self.max_bytes = max_bytes
        self.memory_budget = memory_budget
        """Whether the instance type's memory bounds the loaded models (SMEMU_RESOURCE_LIMITS)."""
        self.metrics = metrics
        if metrics is not None and metrics.gauges is None:
            metrics.gauges = self._gauges
        self._models: dict[str, tuple[str, str, str, InstanceModels]] = {}
        """container id -> (endpoint key, variant, region, models)."""
        self._routes: dict[str, EndpointRoute] = {}
        self._affinity: dict[tuple[str, str], dict[str, str]] = {}
        self._cursor: dict[tuple[str, str], int] = {}
        self._active: set[str] = set()
        """Container ids with activity since the last metrics flush (LoadedModelCount)."""
        self._lock = threading.Lock()
        self._s3: Any = None
        self._s3_lock = threading.Lock()
        self._unloader = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mme-unload")
        self.placements: Callable[[Placement], None] | None = None
        """Told when a cached model becomes invocable without the platform, or stops being so."""
        self.catch_up: Callable[[], None] | None = None
        """Applies the hits the data plane served so far (called before this router decides)."""

    # -- invoking ---------------------------------------------------------------------------

    def invoke(
        self,
        route: EndpointRoute,
        variant: VariantRoute,
        target: str,
        invocation: Invocation,
        ctx: CallContext,
        timeout: float,
    ) -> ContainerResponse:
        """Serve one InvokeEndpoint with TargetModel; raises the runtime's errors."""
        problem = target_problem(target)
        if problem is not None:
            raise ValidationError(f"TargetModel {target} {problem}.")
        if self.catch_up is not None:
            self.catch_up()
        models = self._choose(route, variant, target, ctx.region)
        headers = invocation.headers(invocation.content_type, invocation.accept)
        response: ContainerResponse | None = None
        for attempt in (0, 1):
            began = time.monotonic()
            try:
                entry, hit = models.acquire(target, timeout)
            except ModelNotReady:
                self._record(ctx.region, route, variant, "ModelCacheHit", 0.0, "None")
                raise ModelNotReadyException(
                    f"Model {target} is still being downloaded or loaded on endpoint {route.name}; "
                    "retry the request."
                ) from None
            except LoadError as exc:
                raise self._load_error(exc, route, target, ctx) from None
            if attempt == 0:
                self._record(ctx.region, route, variant, "ModelCacheHit", 1.0 if hit else 0.0, "None")
                if not hit:
                    waited = (time.monotonic() - began) * 1_000_000
                    self._record(ctx.region, route, variant, "ModelLoadingWaitTime", waited, "Microseconds")
            try:
                response = models.invoke(entry, invocation.body, headers, timeout)
            except TimeoutError:
                raise timeout_error(route, WHO, timeout, ctx) from None
            except ContainerUnreachable as exc:
                raise broken_error(route, WHO, str(exc), ctx) from None
            finally:
                models.release(entry)
            if response.status == 404 and attempt == 0:
                models.forget_loaded(entry)  # the container lost it: load it again, once
                continue
            break
        assert response is not None
        if response.truncated:
            raise broken_error(route, WHO, f"the response is larger than {MAX_PAYLOAD} bytes", ctx)
        if not 200 <= response.status < 300:
            raise model_error(route, WHO, response.status, response.body, ctx)
        return response

    def _load_error(self, exc: LoadError, route: EndpointRoute, target: str, ctx: CallContext) -> ServiceError:
        if isinstance(exc, TargetMissing):
            return ValidationError(
                f"Failed to download model data(bucket: {exc.bucket}, key: {exc.key}). Please ensure that there "
                "is an object located at the URL and that the role passed to CreateModel has permissions to "
                "download the object."
            )
        if isinstance(exc, TargetUnusable):
            return ValidationError(f"Failed to extract model data for TargetModel {target}: {exc}.")
        if isinstance(exc, LoadRefused):
            return model_error(route, WHO, exc.status, exc.body, ctx)
        if isinstance(exc, ContainerFailed):
            if exc.timed_out:
                return timeout_error(route, WHO, 0, ctx)
            return broken_error(route, WHO, str(exc), ctx)
        return InternalFailure(str(exc))

    # -- choosing the instance ------------------------------------------------------------------

    def _choose(self, route: EndpointRoute, variant: VariantRoute, target: str, region: str) -> InstanceModels:
        """The instance that serves ``target`` (recorded, so concurrent first calls agree)."""
        key = (route.name.lower(), variant.name)
        with self._lock:
            self._sync(route)
            instances = variant.instances
            if not instances:
                raise no_instance(route, variant)
            candidates = [self._instance(route, variant, instance, region) for instance in instances]
            for models in candidates:
                if models.cache.get(target) is not None:
                    return models
            affinity = self._affinity.setdefault(key, {})
            previous = affinity.get(target)
            for models in candidates:
                if models.instance_id == previous:
                    return models
            cursor = self._cursor.get(key, -1) + 1
            self._cursor[key] = cursor
            size = len(candidates)
            best = min(range(size), key=lambda i: (len(candidates[i].cache), (i - cursor) % size))
            chosen = candidates[best]
            affinity[target] = chosen.instance_id
            return chosen

    def _instance(
        self, route: EndpointRoute, variant: VariantRoute, instance: InstanceRoute, region: str
    ) -> InstanceModels:
        target = instance.containers[0]
        known = self._models.get(target.container_id)
        if known is not None:
            return known[3]
        plan = variant.plan.multi_model
        assert plan is not None
        memory = None
        if self.memory_budget and variant.plan.instance_type:
            from emulator.instances import instance_resources

            try:
                memory = int(instance_resources(variant.plan.instance_type)[1])
            except ValueError:
                memory = None
        endpoint, variant_name, container_id = route.name, variant.name, target.container_id

        def on_event(metric: str, microseconds: float) -> None:  # called with no lock held
            with self._lock:
                self._active.add(container_id)
            if self.metrics is not None:
                self.metrics.record(region, endpoint, variant_name, metric, microseconds, "Microseconds")

        def on_placement(target_model: str, model: str, loaded: bool) -> None:
            if self.placements is not None:
                self.placements(Placement(container_id, target_model, model, loaded))

        on_folder = None
        if self.copy_in is not None:
            copy_in = self.copy_in

            def on_folder(model: str, source: Path | None) -> None:
                copy_in(container_id, f"{MODELS_PATH}/{model}", source)

        models = InstanceModels(
            instance.instance_id,
            target.pool,
            self._folder(route.name, variant, instance.instance_id),
            plan,
            plan.budget(self.max_models, self.max_bytes, memory),
            self._shared_s3,
            self._background,
            on_event,
            on_placement=on_placement,
            on_folder=on_folder,
        )
        self._models[container_id] = (route.name.lower(), variant.name, region, models)
        return models

    def _shared_s3(self) -> Any:
        """One S3 client for every load thread (made once: making a client costs far more than a
        small model's download; using one from several threads is safe)."""
        if self._s3 is None:
            with self._s3_lock:
                if self._s3 is None:
                    self._s3 = self.s3_client()
        return self._s3

    def _folder(self, endpoint: str, variant: VariantRoute, instance_id: str) -> Path:
        """The instance's models folder, which the fleet made when it started the container."""
        index = variant.plan.containers[0].index
        base = self.work_dir / "endpoints" / endpoint.lower()
        for found in base.glob(f"*/{variant.name}/{index}-models/{instance_id}"):
            return found
        raise InternalFailure(
            f"Endpoint {endpoint}: the models folder of instance {instance_id} is missing under {base}."
        )

    def _sync(self, route: EndpointRoute) -> None:
        """Forget the instances of an endpoint that its current route no longer has. Lock held."""
        key = route.name.lower()
        if self._routes.get(key) is route:
            return
        current = self.table.get(route.name)
        if current is not None and current is not route:
            return  # a retired route still draining: keep everything
        self._routes[key] = route
        alive = {t.container_id for v in route.variants.values() for i in v.instances for t in i.containers}
        for container_id, (endpoint, *_rest) in list(self._models.items()):
            if endpoint == key and container_id not in alive:
                del self._models[container_id]

    def _background(self, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("unloading models in the background failed")

        try:
            self._unloader.submit(run)
        except RuntimeError:  # shutting down: do it here
            run()

    def apply_hits(self, hits: list[tuple[str, str, int, float]]) -> None:
        """Cache hits the data plane served: ``(container id, TargetModel, count, last used)``.

        Counted as if served here (hits, the model's last use for LRU eviction, ModelCacheHit).
        """
        for container_id, target, count, when in hits:
            with self._lock:
                known = self._models.get(container_id)
            if known is None:
                continue
            endpoint, variant, region, models = known
            with models.lock:
                entry = models.cache.get(target)
                if entry is None:
                    continue
                entry.hits += count
                models.cache.stats.hits += count
                models.cache.touch(entry, max(when, entry.last_used))
            if self.metrics is not None:
                for _ in range(count):
                    self.metrics.record(region, self._display_name(endpoint), variant, "ModelCacheHit", 1.0, "None")

    # -- observability ---------------------------------------------------------------------------

    def _record(
        self, region: str, route: EndpointRoute, variant: VariantRoute, metric: str, value: float, unit: str
    ) -> None:
        if self.metrics is not None:
            self.metrics.record(region, route.name, variant.name, metric, value, unit)

    def _gauges(self) -> list[Gauge]:
        """LoadedModelCount of every instance that loaded or unloaded something since the last flush."""
        with self._lock:
            active, self._active = self._active, set()
            found = [self._models[c] for c in active if c in self._models]
        return [
            (region, self._display_name(endpoint), variant, "LoadedModelCount", float(models.cache.loaded_count))
            for endpoint, variant, region, models in found
        ]

    def _display_name(self, key: str) -> str:
        route = self._routes.get(key)
        return route.name if route is not None else key

    def describe(self, endpoint: str) -> dict[str, Any] | None:
        """Loaded models, hits, misses, loads, evictions and load times per variant and instance;
        None when the endpoint is not serving."""
        if self.catch_up is not None:
            self.catch_up()
        route = self.table.get(endpoint)
        if route is None:
            return None
        variants = []
        totals = CacheStats()
        for variant in route.variants.values():
            plan = variant.plan.multi_model
            if plan is None:
                variants.append({"VariantName": variant.name, "MultiModel": False, "Instances": []})
                continue
            instances: list[dict[str, Any]] = []
            variant_stats = CacheStats()
            for instance in variant.instances:
                with self._lock:
                    known = self._models.get(instance.containers[0].container_id)
                if known is None:
                    instances.append({"InstanceId": instance.instance_id, "LoadedModelCount": 0,
                                      "Stats": CacheStats().as_dict(), "Models": []})
                    continue
                models = known[3]
                instances.append(models.snapshot())
                with models.lock:
                    variant_stats.add(models.stats)
            totals.add(variant_stats)
            variants.append(
                {
                    "VariantName": variant.name,
                    "MultiModel": True,
                    "ModelDataUrl": plan.prefix,
                    "ModelCacheSetting": "Enabled" if plan.caching else "Disabled",
                    "LoadedModelCount": sum(int(i["LoadedModelCount"]) for i in instances),
                    "Stats": variant_stats.as_dict(),
                    "Instances": instances,
                }
            )
        return {"EndpointName": route.name, "Stats": totals.as_dict(), "Variants": variants}

    def stop(self) -> None:
        """Stop background unloads (containers keep what they loaded) and the metrics thread."""
        self._unloader.shutdown(wait=False, cancel_futures=True)
        if self.metrics is not None:
            self.metrics.stop()
