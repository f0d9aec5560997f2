"""The shared gateway network on a real engine: joined, not removable in use, recreated when gone.

The real ``smemu-containers`` network is shared with every emulator on this engine (other
test sessions included), so it is never removed here: these tests give the backend a network
of their own with the same options, on a subnet of their own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from emulator.runtime.docker_backend import DockerBackend
from emulator.runtime.gateway_network import ICC_OPTION, NETWORK_NAME, GatewayNetwork
from emulator.runtime.spec import ContainerSpec

pytestmark = pytest.mark.docker

BASE = "smemu-base/python:3.11"


@pytest.fixture()
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture()
def own_network(engine: docker.DockerClient) -> Iterator[GatewayNetwork]:
    """A gateway network like smemu-containers, but this test's own."""
    octet = 100 + int(uuid.uuid4().hex[:2], 16) % 100
    network = GatewayNetwork(engine, name=f"smemu-test-gw-{uuid.uuid4().hex[:8]}", subnet=f"10.213.{octet}.0/24",
                             gateway=f"10.213.{octet}.2")
    yield network
    for container in engine.containers.list(all=True, filters={"label": f"smemu.name={network.name}"}):
        container.remove(force=True)
    try:
        engine.api.remove_network(network.name)
    except docker.errors.NotFound:
        pass


def _exists(engine: docker.DockerClient, name: str) -> dict[str, Any] | None:
    found = [n for n in engine.api.networks(names=[name]) if n["Name"] == name]
    return found[0] if found else None


def _spec(network: GatewayNetwork, script: str) -> ContainerSpec:
    return ContainerSpec(name=f"{network.name}-{uuid.uuid4().hex[:6]}", image=BASE, entrypoint=["sh", "-c"],
                         command=[script], labels={"smemu.kind": "test-gateway-network", "smemu.name": network.name})


def test_containers_join_it_on_link_and_it_cannot_be_removed_under_them(
        engine: docker.DockerClient, own_network: GatewayNetwork) -> None:
    backend = DockerBackend()
    backend.gateway_network = own_network
    running = backend.start(_spec(own_network, "cat /proc/net/route; sleep 30"))
    try:
        attrs = engine.api.inspect_container(running)
        assert list(attrs["NetworkSettings"]["Networks"]) == [own_network.name]  # not the default bridge
        made = _exists(engine, own_network.name)
        assert made is not None and made["Options"][ICC_OPTION] == "false"
        deadline = time.monotonic() + 30
        routes: list[str] = []
        while time.monotonic() < deadline and not routes:
            routes = [line for _, line in backend.logs(running, follow=False) if line.startswith("eth0")]
        subnet_hex = "".join(f"{int(octet):02X}" for octet in reversed(own_network.subnet.split("/")[0].split(".")))
        assert any(line.split()[1] == subnet_hex and line.split()[2] == "00000000" for line in routes), routes
        with pytest.raises(docker.errors.APIError, match="active endpoints"):
            engine.api.remove_network(own_network.name)
    finally:
        backend.remove(running)


def test_a_removed_network_is_recreated_before_the_next_container_and_at_once_when_watched(
        engine: docker.DockerClient, own_network: GatewayNetwork) -> None:
    backend = DockerBackend()
    backend.gateway_network = own_network
    backend.remove(backend.start(_spec(own_network, "true")))
    engine.api.remove_network(own_network.name)
    assert _exists(engine, own_network.name) is None
    again = backend.start(_spec(own_network, "true"))
    try:
        assert _exists(engine, own_network.name) is not None
        assert list(engine.api.inspect_container(again)["NetworkSettings"]["Networks"]) == [own_network.name]
    finally:
        backend.remove(again)

    stop = backend.watch_gateway_network()
    try:
        engine.api.remove_network(own_network.name)
        deadline = time.monotonic() + 30
        while _exists(engine, own_network.name) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _exists(engine, own_network.name) is not None, "not recreated after removal"
    finally:
        stop()


def test_a_legacy_network_with_inter_container_traffic_is_replaced_only_when_unused(
        engine: docker.DockerClient, own_network: GatewayNetwork) -> None:
    from docker.types import IPAMConfig, IPAMPool

    engine.api.create_network(own_network.name, driver="bridge", labels={"smemu.kind": "network"},
                              ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=own_network.subnet,
                                                                     gateway=own_network.gateway)]))
    user = engine.containers.run(BASE, ["sleep", "30"], network=own_network.name, detach=True,
                                 labels={"smemu.kind": "test-gateway-network", "smemu.name": own_network.name})
    own_network.ensure()  # in use: kept as it is
    assert (_exists(engine, own_network.name) or {}).get("Options", {}).get(ICC_OPTION) is None
    user.remove(force=True)
    own_network.ensure()  # unused: recreated without inter-container communication
    assert (_exists(engine, own_network.name) or {})["Options"][ICC_OPTION] == "false"


def test_the_shared_network_is_the_ecs_address() -> None:
    network = GatewayNetwork(None)
    assert (network.name, network.subnet, network.gateway) == (NETWORK_NAME, "169.254.170.0/24", "169.254.170.2")
