"""Serverless variants: a container that stops after idling and cold-starts on the next call.

A serverless variant is brought up once at CreateEndpoint (so a broken image fails the
endpoint, as AWS validates it), then an idle reaper stops its container after
``idle_seconds`` without invocations. The next invocation finds no instance and starts one
inside the call (the cold start), with the memory limit of ``MemorySizeInMB``; concurrent
callers wait for the same start rather than starting one each.
"""

from __future__ import annotations

import logging
import threading
import time

from emulator.errors import ModelError, ValidationError
from emulator.hosting.deployer import Deployer
from emulator.hosting.fleet import LaunchFailed
from emulator.hosting.routing import EndpointRoute, InstanceRoute, VariantRoute

log = logging.getLogger(__name__)

DEFAULT_IDLE_SECONDS = 300.0


class Serverless:
    """Cold starts and idle stops of serverless variants."""

    def __init__(self, deployer: Deployer, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.deployer = deployer
        self.idle_seconds = idle_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._reap_forever, name="serverless-reaper", daemon=True)
        self._thread.start()

    def cold_start(self, route: EndpointRoute, variant: VariantRoute) -> InstanceRoute:
        """Start the variant's container inside an invocation (or wait for a start under way)."""
        state = self.deployer.state(route.name)
        deployment = state.active if state is not None else None
        if state is None or deployment is None or not variant.plan.is_serverless:
            raise ValidationError(f"Endpoint {route.name} has no running instance of variant {variant.name}.")
        with state.serverless_lock:
            instance = variant.next_instance()
            if instance is not None:
                return instance
            try:
                launched = self.deployer.launch_variant(state, deployment, variant.plan, 1)
            except LaunchFailed as exc:
                raise ModelError(
                    f"The serverless variant {variant.name} of endpoint {route.name} could not start: {exc.reason}",
                    original_status_code=0,
                    original_message=exc.reason,
                ) from exc
            deployment.instances[variant.name] = launched
            instance = self.deployer.routes.instance_route(variant.plan, launched[0])
            variant.instances = (instance,)
            variant.last_used = time.monotonic()
            return instance

    def reap(self) -> None:
        """Stop every serverless container idle for longer than ``idle_seconds``."""
        now = time.monotonic()
        for state in list(self.deployer.states.values()):
            route = self.deployer.table.get(state.name)
            deployment = state.active
            if route is None or deployment is None:
                continue
            for variant in route.variants.values():
                if not variant.plan.is_serverless or not variant.instances:
                    continue
                if now - variant.last_used < self.idle_seconds:
                    continue
                with state.serverless_lock:
                    instances = variant.instances
                    variant.instances = ()
                    if route.inflight > 0:  # a call got the instance before it was cleared
                        variant.instances = instances
                        continue
                    running = deployment.instances.get(variant.name, [])
                    deployment.instances[variant.name] = []
                log.info(
                    "endpoint %s: serverless variant %s idle, stopping its container",
                    state.name,
                    variant.name,
                )
                self.deployer.retire(None, running)

    def _reap_forever(self) -> None:
        interval = max(0.2, min(1.0, self.idle_seconds / 4))
        while not self._stopped.wait(interval):
            try:
                self.reap()
            except Exception:
                log.exception("reaping idle serverless containers failed")

    def stop(self) -> None:
        """Stop reaping (running containers stay, to be re-adopted)."""
        self._stopped.set()
        self._thread.join(timeout=5)
