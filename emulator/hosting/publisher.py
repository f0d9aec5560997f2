"""From running instances to routes: connection pools, routing entries and log followers.

The deployer decides *when* a fleet serves; this module knows *how* a fleet becomes a
route in the routing table. Connection pools are kept per container across route
rebuilds (a weight change or a scale-out keeps the warm connections) and closed when the
container is retired.
"""

from __future__ import annotations

from typing import Any

from emulator.hosting.capture import CaptureWriter
from emulator.hosting.container_http import ConnectionPool
from emulator.hosting.deployment import Deployment, EndpointState
from emulator.hosting.fleet import RunningInstance
from emulator.hosting.logs import LogShipper, last_event_seconds, stream_name
from emulator.hosting.plan import VariantPlan
from emulator.hosting.routing import ContainerTarget, EndpointRoute, InstanceRoute, VariantRoute
from emulator.hosting.runtime_errors import log_group
from emulator.hosting.validation import SINGLE


def container_stream(variant: VariantPlan, instance: RunningInstance, hostname: str) -> str:
    """The CloudWatch stream of one container of an instance."""
    return stream_name(variant.name, instance.instance_id, None if variant.mode == SINGLE else hostname)


class RoutePublisher:
    """Builds routes for deployments and follows their containers' logs."""

    def __init__(self, capture: CaptureWriter, shipper: LogShipper, backend: Any) -> None:
        self.capture = capture
        self.shipper = shipper
        self.backend = backend
        self._pools: dict[str, ConnectionPool] = {}

    def instance_route(self, variant: VariantPlan, instance: RunningInstance) -> InstanceRoute:
        """The routing entry of one running instance."""
        targets = []
        for container in instance.containers:
            pool = self._pools.get(container.container_id)
            if pool is None:
                pool = ConnectionPool(*container.reach)
                self._pools[container.container_id] = pool
            stream = container_stream(variant, instance, container.hostname)
            targets.append(ContainerTarget(container.hostname, container.container_id, pool, stream))
        return InstanceRoute(instance.instance_id, tuple(targets))

    def route(self, name: str, deployment: Deployment) -> EndpointRoute:
        """The route of a deployment's current instances, weights and capture settings."""
        variants = [
            VariantRoute(
                plan=variant,
                weight=deployment.weights[variant.name],
                instances=tuple(
                    self.instance_route(variant, i) for i in deployment.instances.get(variant.name, [])
                ),
            )
            for variant in deployment.plan.variants
        ]
        return EndpointRoute(
            name,
            variants,
            async_config=deployment.plan.async_config,
            capture=self.capture.for_config(deployment.plan.capture_config),
        )

    def close_pools(self, instances: list[RunningInstance]) -> None:
        """Close the connections to instances that are going away."""
        for instance in instances:
            for container in instance.containers:
                pool = self._pools.pop(container.container_id, None)
                if pool is not None:
                    pool.close()

    def close_all(self) -> None:
        """Close every connection (emulator shutdown)."""
        for pool in list(self._pools.values()):
            pool.close()
        self._pools.clear()

    def follow(
        self, state: EndpointState, variant: VariantPlan, instance: RunningInstance, resume: bool = False
    ) -> None:
        """Ship an instance's container output to CloudWatch Logs.

        ``resume``: the container was re-adopted after a restart, and the engine replays its
        output from the start; lines already in the stream are skipped.
        """
        group = log_group(state.name)
        for container in instance.containers:
            stream = container_stream(variant, instance, container.hostname)
            skip = last_event_seconds(state.account_id, state.region, group, stream) if resume else None
            self.shipper.follow(
                self.backend,
                container.container_id,
                state.account_id,
                state.region,
                group,
                stream,
                skip_until=skip,
            )
