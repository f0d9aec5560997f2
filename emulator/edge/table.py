"""A front process's copy of the routing table, rebuilt from what hosting publishes.

Plain objects with slots, built once per published version (``emulator/hosting/publication.py``
describes the data): the invocation path only does dictionary look-ups, one weighted draw and
a round-robin step. Each route counts the requests a front has in flight on it, so the control
process can wait for a retired fleet to drain here before stopping its containers.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable
from typing import Any

from emulator.hosting.data_plane import SERVE_MULTI_MODEL


class FrontContainer:
    """One container of an instance and where the front reaches it."""

    __slots__ = ("address", "container_id", "hostname", "pool")

    def __init__(self, hostname: str, container_id: str, host: str, port: int) -> None:
        self.hostname = hostname
        self.container_id = container_id
        self.address = (host, port)
        self.pool: Any = None
        """The front's connection pool for ``address`` (set on first use)."""


class FrontInstance:
    """One instance: its containers, in the model's order."""

    __slots__ = ("by_hostname", "containers", "id")

    def __init__(self, instance_id: str, containers: list[FrontContainer]) -> None:
        self.id = instance_id
        self.containers = containers
        self.by_hostname = {c.hostname: c for c in containers}


class FrontVariant:
    """A variant, what the front may serve of it, and a round-robin cursor over its instances."""

    __slots__ = ("_cursor", "instances", "name", "serve", "weight")

    def __init__(self, name: str, weight: float, serve: str, instances: list[FrontInstance]) -> None:
        self.name = name
        self.weight = weight
        self.serve = serve
        self.instances = instances
        self._cursor = itertools.count()

    def next_instance(self) -> FrontInstance | None:
        """Round-robin over instances (None when the variant has none)."""
        instances = self.instances
        if not instances:
            return None
        return instances[next(self._cursor) % len(instances)]


class FrontRoute:
    """One endpoint's variants and the requests this front has in flight on them."""

    __slots__ = ("_cumulative", "_order", "id", "inflight", "name", "on_idle", "variants")

    def __init__(self, route_id: int, name: str, variants: list[FrontVariant]) -> None:
        self.id = route_id
        self.name = name
        self.variants = {v.name: v for v in variants}
        self._order = [v for v in variants if v.weight > 0]
        self._cumulative = list(itertools.accumulate(v.weight for v in self._order))
        self.inflight = 0
        self.on_idle: Callable[[FrontRoute], None] | None = None
        """Called when ``inflight`` drops to 0 while the control process waits for a drain."""

    def choose_variant(self) -> FrontVariant | None:
        """A variant drawn with probability weight / sum of weights (None if all weights are 0)."""
        cumulative = self._cumulative
        if not cumulative:
            return None
        index = bisect.bisect_right(cumulative, random.random() * cumulative[-1])
        order = self._order
        return order[index] if index < len(order) else order[-1]

    def leave(self) -> None:
        """Count a request out (the caller counted it in with ``inflight += 1``)."""
        self.inflight -= 1
        if self.inflight == 0 and self.on_idle is not None:
            self.on_idle(self)


def build_route(data: dict[str, Any]) -> FrontRoute:
    """A :class:`FrontRoute` from one published route (``publication.route_snapshot``)."""
    variants = []
    for variant in data["variants"]:
        instances = [
            FrontInstance(
                instance["id"],
                [FrontContainer(c["hostname"], c["container_id"], c["host"], int(c["port"]))
                 for c in instance["containers"]],
            )
            for instance in variant["instances"]
        ]
        variants.append(FrontVariant(variant["name"], float(variant["weight"]), variant["serve"], instances))
    return FrontRoute(int(data["id"]), data["name"], variants)


class FrontTable:
    """Endpoint routes by lower-cased name, the published version, and multi-model placements."""

    def __init__(self) -> None:
        self.version = 0
        self.routes: dict[str, FrontRoute] = {}
        self.retired: dict[int, FrontRoute] = {}
        """Routes replaced by a newer version that still have requests in flight here."""
        self.placements: dict[str, dict[str, str]] = {}
        """container id -> {TargetModel: the container's model name} of loaded, cached models."""

    def apply(self, version: int, routes: dict[str, dict[str, Any]]) -> None:
        """Make a published version current; routes that keep their id are kept as they are."""
        current = self.routes
        fresh: dict[str, FrontRoute] = {}
        for key, data in routes.items():
            existing = current.get(key)
            fresh[key] = existing if existing is not None and existing.id == data["id"] else build_route(data)
        kept = {route.id for route in fresh.values()}
        for route in current.values():
            if route.id not in kept and route.inflight > 0:
                self.retired[route.id] = route
        self.routes = fresh
        self.version = version
        containers = {c.container_id for r in fresh.values() for v in r.variants.values()
                      for i in v.instances for c in i.containers}
        for container_id in [c for c in self.placements if c not in containers]:
            del self.placements[container_id]

    def inflight(self, route_id: int) -> FrontRoute | None:
        """The route with that id if requests are still in flight on it here, else None."""
        for route in self.routes.values():
            if route.id == route_id:
                return route if route.inflight > 0 else None
        route = self.retired.get(route_id)
        if route is not None and route.inflight == 0:
            del self.retired[route_id]
            return None
        return route

    def place(self, container_id: str, target: str, model: str, loaded: bool) -> None:
        """Record that a container has (or no longer has) a TargetModel loaded."""
        models = self.placements.get(container_id)
        if loaded:
            if models is None:
                models = self.placements[container_id] = {}
            models[target] = model
        elif models is not None:
            models.pop(target, None)

    def warm(self, variant: FrontVariant, target: str) -> tuple[FrontContainer, str] | None:
        """The first instance of a multi-model variant that has ``target`` loaded, and its model name."""
        if variant.serve != SERVE_MULTI_MODEL:
            return None
        placements = self.placements
        for instance in variant.instances:
            container = instance.containers[0]
            models = placements.get(container.container_id)
            if models is not None:
                model = models.get(target)
                if model is not None:
                    return container, model
        return None
