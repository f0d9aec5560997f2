"""The hosting service: SageMaker's model, endpoint-configuration and endpoint operations,
and the sagemaker-runtime operations, wired to the pieces of this package.

Handlers are named after operations and stay thin: they validate, write the record and
the first status, and hand long work to the :class:`~.deployer.Deployer`. The runtime
handlers are handed to the edge (:meth:`HostingService.edge_handlers`); they read only the
routing table. The runtime backend is injected (``Platform.backend``).

Settings read here:
``invocation_timeout_seconds`` (60, SMEMU_INVOCATION_TIMEOUT_SECONDS),
``endpoint_startup_timeout_seconds`` (240), ``endpoint_download_timeout_seconds`` (600),
``serverless_idle_seconds`` (300), ``container_stop_grace_seconds`` (30),
``mme_cache_models`` / ``mme_cache_bytes`` (None: no cache budget besides the instance's memory),
``endpoint_health_check_seconds`` (5; 0 turns instance replacement off).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from emulator.context import CallContext
from emulator.errors import ValidationException, already_exists, could_not_find
from emulator.gpus import GpuPolicy
from emulator.hosting import lifecycle
from emulator.hosting.async_inference import AsyncInvoker
from emulator.hosting.capture import CaptureWriter
from emulator.hosting.deployer import Deployer, Timeouts
from emulator.hosting.deployment import pending_summary
from emulator.hosting.fleet import Fleet
from emulator.hosting.fleet_view import fleet_view
from emulator.hosting.healing import HealthMonitor
from emulator.hosting.invoke import InvocationMetrics, Invoker
from emulator.hosting.listing import list_page
from emulator.hosting.logs import LogShipper
from emulator.hosting.multi_model_metrics import MetricsPublisher
from emulator.hosting.multi_model_router import MultiModelRouter
from emulator.hosting.publisher import RoutePublisher
from emulator.hosting.recovery import recover
from emulator.hosting.resources import ModelOperations
from emulator.hosting.routing import RoutingTable
from emulator.hosting.serverless import Serverless
from emulator.hosting.streaming import StreamInvoker
from emulator.hosting.validation import validate_weights_update
from emulator.platform import EdgeHandlers
from emulator.quotas import check_instance_quota, count_by_type
from emulator.runtime.spec import RuntimeBackend

log = logging.getLogger(__name__)

Request = dict[str, Any]
_SUMMARY_KEYS = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")


class HostingService(ModelOperations):
    """Models, endpoint configurations, endpoints, and invoking them."""

    def __init__(self, platform: Any, backend: RuntimeBackend) -> None:
        settings = platform.settings
        self.platform = platform
        self.settings = settings
        self.store = platform.store
        self.s3_client: Callable[[], Any] = platform.s3.client
        self.table = RoutingTable()
        self.shipper = LogShipper()
        self.capture = CaptureWriter(self.s3_client)
        self.fleet = Fleet(
            backend,
            settings.home,
            resource_limits=settings.resource_limits,
            stop_grace=settings.container_stop_grace_seconds,
            resolve_image=platform.resolve_image,
            gpu_policy=GpuPolicy.from_settings(settings),
            aws_environment=platform.container_environment,
        )
        timeout = settings.invocation_timeout_seconds
        self.deployer = Deployer(
            self.store,
            self.fleet,
            self.table,
            self.s3_client,
            RoutePublisher(self.capture, self.shipper, self.fleet.backend),
            settings.work_dir,
            Timeouts(
                startup=settings.endpoint_startup_timeout_seconds,
                download=settings.endpoint_download_timeout_seconds,
                drain=timeout + 5.0,
            ),
        )
        self.serverless = Serverless(
            self.deployer, settings.serverless_idle_seconds
        )
        self.health = HealthMonitor(self.deployer, interval=settings.endpoint_health_check_seconds)
        self.metrics = MetricsPublisher(self._cloudwatch_client)
        self.multi_models = MultiModelRouter(
            self.table,
            settings.work_dir,
            self.s3_client,
            max_models=settings.mme_cache_models,
            max_bytes=settings.mme_cache_bytes,
            memory_budget=settings.resource_limits,
            metrics=self.metrics,
            copy_in=lambda container_id, path, source: self.fleet.backend.copy_in(container_id, path, source),
        )
        self.invoker = Invoker(
            self.table, timeout=timeout, cold_start=self.serverless.cold_start, multi_model=self.multi_models.invoke,
            metrics=InvocationMetrics(self.metrics),
        )
        self.async_invoker = AsyncInvoker(self.invoker, self.s3_client, self._sns_client)
        self.streamer = StreamInvoker(self.invoker)

    def edge_handlers(self) -> EdgeHandlers:
        """What the edge serves for hosting: the runtime operations, the streamed invocation,
        the endpoint views, and the data plane's hook."""
        return EdgeHandlers(
            runtime={"InvokeEndpoint": self.invoker.invoke_endpoint,
                     "InvokeEndpointAsync": self.async_invoker.invoke_endpoint_async},
            streaming={"InvokeEndpointWithResponseStream": self.streamer.handle},
            views={"endpoint-models": self.multi_models.describe,
                   "endpoint-fleet": lambda name: fleet_view(self.deployer, self.health, name)},
            data_plane=[self.attach_data_plane],
        )

    def attach_data_plane(self, plane: Any) -> None:
        """Let the data plane's front processes serve invocations from copies of the routing
        table (``emulator/edge/supervisor.py``): they get every change, multi-model placements,
        and report the cache hits they serve."""
        self.table.observer = plane
        self.multi_models.placements = plane.placement
        self.multi_models.catch_up = plane.catch_up
        plane.on_hits = self.multi_models.apply_hits
        if self.invoker.metrics is not None:
            plane.on_invocations = self.invoker.metrics.merge
        plane.table_changed(self.table)

    def _sns_client(self) -> Any:
        """An SNS client on the emulator's own edge (moto answers), for async notifications."""
        return boto3.session.Session().client(
            "sns",
            endpoint_url=f"http://127.0.0.1:{self.settings.port}",
            region_name=self.settings.region,
            aws_access_key_id="smemu",
            aws_secret_access_key="smemu",
        )

    def _cloudwatch_client(self, region: str) -> Any:
        """A CloudWatch client on the emulator's own edge (moto answers), for endpoint metrics."""
        return boto3.session.Session().client(
            "cloudwatch",
            endpoint_url=f"http://127.0.0.1:{self.settings.port}",
            region_name=region,
            aws_access_key_id="smemu",
            aws_secret_access_key="smemu",
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    # -- lifecycle of the service ---------------------------------------------------------

    def start(self) -> None:
        """Re-adopt endpoints left running by a previous emulator on the same home."""
        try:
            recover(self.deployer)
        except Exception:
            log.exception("re-adopting endpoints failed; they will show their last status")
        self.health.start()

    def stop(self) -> None:
        """Stop background work; endpoint containers keep running for the next start."""
        self.health.stop()
        self.serverless.stop()
        self.multi_models.stop()
        self.async_invoker.stop()
        self.deployer.stop()
        self.capture.stop()
        self.shipper.stop()

    # -- endpoints ----------------------------------------------------------------------

    def _snapshot(self, config_name: str, ctx: CallContext) -> tuple[dict[str, Any], dict[str, Any]]:
        """The endpoint configuration and its models as they are now."""
        config = self.store.get("endpoint-config", config_name)
        if config is None:
            raise could_not_find("endpoint configuration", ctx.arn("endpoint-config", config_name))
        models = {}
        for variant in config["ProductionVariants"]:
            model = self.store.get("model", variant["ModelName"])
            if model is None:
                raise could_not_find("model", ctx.arn("model", variant["ModelName"]))
            models[variant["ModelName"]] = model
        return config, models

    def _endpoint(self, name: str, ctx: CallContext) -> dict[str, Any]:
        record = self.store.get("endpoint", name)
        if record is None:
            raise could_not_find("endpoint", ctx.arn("endpoint", name))
        return record

    def create_endpoint(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """CreateEndpoint: answers at once with status Creating; a worker brings the fleet up."""
        name = request["EndpointName"]
        arn = ctx.arn("endpoint", name)
        config, models = self._snapshot(request["EndpointConfigName"], ctx)
        self._check_quota(_config_instances(config), name)  # before anything looks at each instance
        gpu_refusal = self.fleet.check_gpus(config, name)  # GPU types without GPUs here: emulator/gpus.py
        if gpu_refusal:
            from emulator.errors import ResourceLimitExceeded

            raise ResourceLimitExceeded(gpu_refusal)
        deployment = self.deployer.new_deployment(name, config, models, ctx.region)
        now = time.time()
        record: dict[str, Any] = {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": lifecycle.EndpointStatus.CREATING.value,
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        if config.get("AsyncInferenceConfig"):
            record["AsyncInferenceConfig"] = config["AsyncInferenceConfig"]
        if not self.store.insert("endpoint", name, record, now):
            raise already_exists("endpoint", arn)
        if request.get("Tags"):
            self.store.add_tags(arn.lower(), request["Tags"])
        self.deployer.create(name, ctx.region, ctx.account_id, deployment)
        return {"EndpointArn": arn}

    def describe_endpoint(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """DescribeEndpoint: the record the workers keep current."""
        return self._endpoint(request["EndpointName"], ctx)

    def list_endpoints(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """ListEndpoints."""
        page, token = list_page(
            self.store.list("endpoint"),
            request,
            "EndpointName",
            status_key="EndpointStatus",
            summary=lambda r: {k: r[k] for k in _SUMMARY_KEYS},
        )
        return {"Endpoints": page, **({"NextToken": token} if token else {})}

    @staticmethod
    def _check_updatable(record: dict[str, Any]) -> None:
        """UpdateEndpoint* needs an InService endpoint (SageMaker's wording otherwise)."""
        status, arn = record["EndpointStatus"], record["EndpointArn"]
        if not lifecycle.can_update(status):
            if status in {s.value for s in lifecycle.IN_PROGRESS}:
                raise ValidationException(f'Cannot update in-progress endpoint "{arn}".')
            raise ValidationException(f'Cannot update endpoint "{arn}" in status {status}.')

    def _begin_update(self, name: str, ctx: CallContext, **fields: Any) -> dict[str, Any]:
        """Check the endpoint is InService and move it to Updating, atomically."""

        def change(record: dict[str, Any]) -> None:
            self._check_updatable(record)
            record["EndpointStatus"] = lifecycle.check(
                record["EndpointStatus"], lifecycle.EndpointStatus.UPDATING
            ).value
            record["LastModifiedTime"] = time.time()
            record.update(fields)

        updated = self.store.update("endpoint", name, change)
        if updated is None:
            raise could_not_find("endpoint", ctx.arn("endpoint", name))
        return updated

    def update_endpoint(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """UpdateEndpoint: blue/green to another configuration, with no request dropped."""
        name = request["EndpointName"]
        record = self._endpoint(name, ctx)
        self._check_updatable(record)
        state = self.deployer.state(name)
        current = state.active if state is not None else None
        if current is None:
            raise ValidationException(f'Cannot update in-progress endpoint "{record["EndpointArn"]}".')
        config, models = self._snapshot(request["EndpointConfigName"], ctx)
        self._check_quota(_config_instances(config), name)
        deployment = self.deployer.new_deployment(name, config, models, ctx.region)
        if any(not v.is_serverless for v in current.plan.variants) and any(
            v.is_serverless for v in deployment.plan.variants
        ):
            raise ValidationException(
                "An endpoint with instance-based variants cannot be updated to serverless."
            )
        if request.get("RetainAllVariantProperties"):
            excluded = {p["VariantPropertyType"] for p in request.get("ExcludeRetainedVariantProperties", [])}
            deployment.retain_from(current, excluded)
        self._begin_update(name, ctx, PendingDeploymentSummary=pending_summary(deployment, time.time()))
        self.deployer.update(name, deployment)
        return {"EndpointArn": record["EndpointArn"]}

    def update_endpoint_weights_and_capacities(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """UpdateEndpointWeightsAndCapacities: new weights at once, new instances once healthy."""
        name = request["EndpointName"]
        record = self._endpoint(name, ctx)
        self._check_updatable(record)
        state = self.deployer.state(name)
        if state is None or state.active is None:
            raise ValidationException(f'Cannot update in-progress endpoint "{record["EndpointArn"]}".')
        validate_weights_update(request, state.active.weights, state.active.plan.config_name)
        types = {v.name: v.instance_type for v in state.active.plan.variants if not v.is_serverless}
        self._check_quota([(types.get(item["VariantName"]), int(item.get("DesiredInstanceCount") or
                                                                  state.active.counts.get(item["VariantName"], 0)))
                           for item in request["DesiredWeightsAndCapacities"]], name)
        self._begin_update(name, ctx)
        self.deployer.rescale(name, request["DesiredWeightsAndCapacities"])
        return {"EndpointArn": record["EndpointArn"]}

    def _check_quota(self, wanted: list[tuple[str | None, int]], endpoint: str) -> None:
        """ResourceLimitExceeded when ``wanted`` and every other endpoint's instances pass a quota."""
        in_use = count_by_type(
            (variant.instance_type, deployment.counts.get(variant.name, variant.instance_count))
            for key, state in list(self.deployer.states.items()) if key != endpoint.lower()
            for deployment in (state.active, state.pending) if deployment is not None
            for variant in deployment.plan.variants if not variant.is_serverless)
        check_instance_quota(self.settings.instance_quotas, "endpoint", count_by_type(wanted), in_use)

    def delete_endpoint(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """DeleteEndpoint: stops routing at once; the record goes when the fleet is gone."""
        name = request["EndpointName"]
        arn = ctx.arn("endpoint", name)
        deleting = lifecycle.EndpointStatus.DELETING.value
        already: list[bool] = []

        def change(record: dict[str, Any]) -> None:
            if record["EndpointStatus"] == deleting:
                already.append(True)
                return
            record["EndpointStatus"] = deleting
            record["LastModifiedTime"] = time.time()

        if self.store.update("endpoint", name, change) is None:
            raise could_not_find("endpoint", arn)
        if not already:
            self.deployer.delete(name)
        return {}


def _config_instances(config: dict[str, Any]) -> list[tuple[str | None, int]]:
    """``(instance type, count)`` of an endpoint configuration's instance-based variants."""
    return [(v.get("InstanceType"), int(v.get("InitialInstanceCount") or 1))
            for v in config.get("ProductionVariants") or [] if not v.get("ServerlessConfig")]
