"""What hosting publishes for the fronts, how a front applies it, and the channel that carries it."""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest

from emulator.edge.channel import FrameReader, encode
from emulator.edge.sockets import bind_edge
from emulator.edge.table import FrontTable
from emulator.hosting.container_http import ConnectionPool
from emulator.hosting.data_plane import FORWARD, SERVE_DIRECT, SERVE_MULTI_MODEL, SERVE_SINGLE
from emulator.hosting.multi_model import MultiModelPlan
from emulator.hosting.plan import ContainerPlan, VariantPlan
from emulator.hosting.publication import table_snapshot, variant_service
from emulator.hosting.routing import ContainerTarget, EndpointRoute, InstanceRoute, VariantRoute
from emulator.hosting.validation import DIRECT, SERIAL, SINGLE


def _variant(name: str, mode: str = SINGLE, containers: int = 1, multi_model: MultiModelPlan | None = None,
             serverless: dict[str, Any] | None = None) -> VariantRoute:
    plans = tuple(ContainerPlan(i + 1, f"c{i}" if containers > 1 else "primary", "image", {}, 8080 + i, None,
                                multi_model=multi_model) for i in range(containers))
    plan = VariantPlan(name, "model", 1.0, 1, "ml.m5.large", mode, plans, serverless=serverless)
    targets = tuple(ContainerTarget(c.hostname, f"{name}-{c.index}", ConnectionPool("10.0.0.2", c.port), "stream")
                    for c in plans)
    return VariantRoute(plan, 2.0, (InstanceRoute(f"i-{name}", targets),))


def test_what_a_front_may_serve_is_decided_by_hosting() -> None:
    cached, uncached = MultiModelPlan("s3://b/p/"), MultiModelPlan("s3://b/p/", caching=False)
    route = EndpointRoute("ep", [])
    assert variant_service(route, _variant("a")) == SERVE_SINGLE
    assert variant_service(route, _variant("b", DIRECT, containers=2)) == SERVE_DIRECT
    assert variant_service(route, _variant("c", SERIAL, containers=2)) == FORWARD  # each answer feeds the next
    assert variant_service(route, _variant("d", multi_model=cached)) == SERVE_MULTI_MODEL
    assert variant_service(route, _variant("e", multi_model=uncached)) == FORWARD  # unloads after every call
    assert variant_service(route, _variant("f", serverless={"MemorySizeInMB": 1024})) == FORWARD  # cold starts
    assert variant_service(EndpointRoute("ep", [], capture=object()), _variant("g")) == FORWARD  # captured there
    assert variant_service(EndpointRoute("ep", [], async_config={"x": 1}), _variant("h")) == FORWARD


def test_the_published_table_is_plain_data_a_front_rebuilds() -> None:
    route = EndpointRoute("MyEndpoint", [_variant("a"), _variant("b", DIRECT, containers=2)])
    published = table_snapshot([route])
    assert list(published) == ["myendpoint"]
    reader = FrameReader()
    message = encode(("routes", 3, published))
    messages = [m for i in range(0, len(message), 7) for m in reader.feed(message[i : i + 7])]  # any chunking
    assert messages == [("routes", 3, published)]
    table = FrontTable()
    table.apply(3, published)
    front_route = table.routes["myendpoint"]
    assert (front_route.id, front_route.name, table.version) == (route.id, "MyEndpoint", 3)
    assert front_route.variants["b"].instances[0].by_hostname["c1"].address == ("10.0.0.2", 8081)
    assert front_route.variants["b"].serve == SERVE_DIRECT


def test_applying_a_version_keeps_unchanged_routes_and_remembers_busy_retired_ones() -> None:
    old = EndpointRoute("ep", [_variant("a")])
    other = EndpointRoute("other", [_variant("o")])
    table = FrontTable()
    table.apply(1, table_snapshot([old, other]))
    kept, busy = table.routes["other"], table.routes["ep"]
    busy.inflight = 1
    new = EndpointRoute("ep", [_variant("a")])
    table.apply(2, table_snapshot([new, other]))
    assert table.routes["other"] is kept  # same id: the same object, its cursors and counts
    assert table.routes["ep"].id == new.id and table.inflight(old.id) is busy
    busy.inflight = 0
    assert table.inflight(old.id) is None and old.id not in table.retired


def test_placements_follow_their_containers() -> None:
    route = EndpointRoute("ep", [_variant("m", multi_model=MultiModelPlan("s3://b/p/"))])
    table = FrontTable()
    table.apply(1, table_snapshot([route]))
    variant = table.routes["ep"].variants["m"]
    assert table.warm(variant, "a.tar.gz") is None
    table.place("m-1", "a.tar.gz", "hash-a", True)
    container, model = table.warm(variant, "a.tar.gz")  # type: ignore[misc]
    assert (container.container_id, model) == ("m-1", "hash-a")
    table.apply(2, {})  # the container left the table: so do its placements
    assert table.placements == {}


def test_the_edge_port_is_shared_by_our_fronts_and_refused_to_anyone_else() -> None:
    sockets = bind_edge("127.0.0.1", 0, 3)
    try:
        port = sockets[0].getsockname()[1]
        assert {s.getsockname()[1] for s in sockets} == {port}
        with pytest.raises(OSError) as taken:
            bind_edge("127.0.0.1", port, 2, wait=0.2)  # a second emulator on the same port
        assert taken.value.errno == errno.EADDRINUSE
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the kernel queues the connection on one of the sockets
    finally:
        for sock in sockets:
            sock.close()
