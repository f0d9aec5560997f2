"""The routing table: endpoint name -> variants -> instances -> containers, and the
connections to them.

This is the only state the invocation path reads. The deployer builds a new immutable
:class:`EndpointRoute` whenever a fleet changes and swaps it in with one assignment, so a
request sees either the old fleet or the new one, never half of each, and no lock is
taken to look a route up. Connections to containers are kept alive in a small pool per
container (:mod:`.container_http`), so an invocation costs one HTTP exchange on loopback and
no Docker API call.

The table may have an observer (:class:`TableObserver`): the data plane's front processes,
which serve invocations from their own copy of the table. ``publish`` and ``withdraw``
return only once the observer has applied the change everywhere, and ``drain`` waits for
requests in flight on a retired route there too, so a fleet is never stopped under a
request that another process sent to it.
"""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulator.hosting.container_http import ConnectionPool
from emulator.hosting.plan import VariantPlan


@dataclass(frozen=True)
class ContainerTarget:
    """One running container, reachable at ``pool``."""

    hostname: str
    container_id: str
    pool: ConnectionPool
    log_stream: str


@dataclass(frozen=True)
class InstanceRoute:
    """One instance of a variant: its containers, in the model's order."""

    instance_id: str
    containers: tuple[ContainerTarget, ...]

    def container(self, hostname: str) -> ContainerTarget | None:
        """The container with that hostname (Direct invocation), or None."""
        for target in self.containers:
            if target.hostname == hostname:
                return target
        return None


@dataclass
class VariantRoute:
    """A variant's instances and the round-robin cursor over them."""

    plan: VariantPlan
    weight: float
    instances: tuple[InstanceRoute, ...]
    _cursor: Iterator[int] = field(default_factory=itertools.count, repr=False)
    last_used: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        """The variant's name (what x-Amzn-Invoked-Production-Variant reports)."""
        return self.plan.name

    def next_instance(self) -> InstanceRoute | None:
        """Round-robin over instances; None when a serverless variant has none running."""
        instances = self.instances
        if not instances:
            return None
        return instances[next(self._cursor) % len(instances)]


_route_ids = itertools.count(1)


class EndpointRoute:
    """One endpoint's variants, weights and in-flight request count."""

    def __init__(
        self,
        name: str,
        variants: list[VariantRoute],
        mode: str = "",
        async_config: dict[str, Any] | None = None,
        capture: Any = None,
    ) -> None:
        self.name = name
        self.id = next(_route_ids)
        """Unique in this process: the data plane names the route it counts requests on by it."""
        self.variants = {v.name: v for v in variants}
        self.async_config = async_config
        self.capture = capture
        self._order = [v for v in variants if v.weight > 0]
        self._cumulative = list(itertools.accumulate(v.weight for v in self._order))
        self.retired = False
        """Set when a newer route replaced this one; requests that find it retired look again."""
        self._inflight = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def choose_variant(self, rand: float | None = None) -> VariantRoute | None:
        """A variant drawn with probability weight / sum of weights (None if all weights are 0)."""
        if not self._cumulative:
            return None
        point = (random.random() if rand is None else rand) * self._cumulative[-1]
        index = bisect.bisect_right(self._cumulative, point)
        return self._order[min(index, len(self._order) - 1)]

    def enter(self) -> None:
        """Count a request in (the deployer drains a retired route before stopping its fleet)."""
        with self._lock:
            self._inflight += 1

    def leave(self) -> None:
        """Count a request out."""
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()

    @property
    def inflight(self) -> int:
        """Requests currently being served through this route."""
        return self._inflight

    def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; False when ``timeout`` passed first."""
        end = time.monotonic() + timeout
        with self._lock:
            while self._inflight > 0:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def pools(self) -> list[ConnectionPool]:
        """Every connection pool of the route (to close them when the fleet is retired)."""
        return [t.pool for v in self.variants.values() for i in v.instances for t in i.containers]


class TableObserver(Protocol):
    """Another reader of the table (the data plane), kept in step with every change."""

    def table_changed(self, table: RoutingTable) -> None:
        """Apply the table as it is now everywhere; returns once applied (or a deadline passed)."""

    def drain(self, route: EndpointRoute, timeout: float) -> bool:
        """Wait until no request is in flight on ``route`` outside this process; False on timeout."""


class RoutingTable:
    """Endpoint name (case-insensitive, as SageMaker's names are) -> current route."""

    def __init__(self) -> None:
        self._routes: dict[str, EndpointRoute] = {}
        self.observer: TableObserver | None = None
        """Set by the server when front processes serve invocations from copies of this table."""

    def get(self, name: str) -> EndpointRoute | None:
        """The live route of an endpoint, or None."""
        return self._routes.get(name.lower())

    def publish(self, route: EndpointRoute) -> EndpointRoute | None:
        """Make ``route`` live; returns the route it replaced."""
        key = route.name.lower()
        previous = self._routes.get(key)
        self._routes[key] = route
        self._changed()
        return previous

    def withdraw(self, name: str) -> EndpointRoute | None:
        """Stop routing to an endpoint; returns its last route."""
        route = self._routes.pop(name.lower(), None)
        if route is not None:
            self._changed()
        return route

    def drain(self, route: EndpointRoute, timeout: float) -> bool:
        """Wait until no request is in flight on a retired route, here and in the observer's
        processes; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        drained = True
        if self.observer is not None:
            drained = self.observer.drain(route, timeout)
        return route.drain(max(0.0, deadline - time.monotonic())) and drained

    def routes(self) -> list[EndpointRoute]:
        """Every live route."""
        return list(self._routes.values())

    def _changed(self) -> None:
        if self.observer is not None:
            self.observer.table_changed(self)

    def names(self) -> list[str]:
        """Names of the endpoints being routed to."""
        return [route.name for route in self._routes.values()]
