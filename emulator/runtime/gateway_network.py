"""The shared container network that puts the emulator's container gateway on-link.

Containers reach the emulator at 169.254.170.2 (the ECS credentials address, the only plain-
http address botocore accepts for ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` besides loopback
and the EKS one). That address is the host side of one Docker bridge, ``smemu-containers``
(169.254.170.0/24), which every emulator on the engine shares: each listens on its own port.

Every container the emulator starts without a network of its own (single-host jobs,
endpoint instances) is put on it, which gives three guarantees:

* **On-link route.** The container reaches 169.254.170.2 through its own interface on that
  bridge, never through its default route: if the address were gone, its credential request
  (token included) would otherwise leave through the host's default route to whoever answers.
* **Not removable under running containers.** Docker refuses to remove a network with
  active endpoints. Between jobs it can still be removed by hand, so the backend recreates it
  before it starts a container, and a container that cannot join it is not started.
* **Peers only where intended.** Inter-container communication is off on it
  (``com.docker.network.bridge.enable_icc=false``): jobs and endpoints on it cannot reach each
  other through it.

Hosts of a multi-host job cannot join it: Docker registers each container's hostname as a
name on every network it joins, so ``algo-1`` on the shared network would also resolve to
other jobs' hosts (measured: peers then connect to another job's host). They stay on their job
network and reach the gateway through its bridge, from a subnet the gateway admits. For them,
:meth:`GatewayNetwork.watch` recreates the network the moment the engine reports it destroyed,
so the address is gone for milliseconds, not for the rest of the job.

A network made by an older emulator with inter-container communication on is recreated
with the option when no container uses it (Docker refuses to remove a network with active
endpoints, so one in use is never removed); while one is attached it is kept and reported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

NETWORK_NAME = "smemu-containers"
NETWORK_SUBNET = "169.254.170.0/24"
GATEWAY_ADDRESS = "169.254.170.2"
ICC_OPTION = "com.docker.network.bridge.enable_icc"


class GatewayNetworkError(Exception):
    """The shared network cannot be made or is not what the emulator needs."""


class GatewayNetwork:
    """Ensures the shared network exists as the emulator needs it (docker-py client)."""

    def __init__(self, client: Any, name: str = NETWORK_NAME, subnet: str = NETWORK_SUBNET,
                 gateway: str = GATEWAY_ADDRESS) -> None:
        self.client = client
        self.name = name
        self.subnet = subnet
        self.gateway = gateway
        self._lock = threading.Lock()
        self._warned = False

    def ensure(self) -> None:
        """Create the network unless it exists; check its gateway address; a concurrent creator is fine."""
        import docker.errors
        from docker.types import IPAMConfig, IPAMPool

        with self._lock:
            for attempt in range(3):
                found = self._find()
                if found is not None and self._legacy_replaced(found):
                    found = self._find()
                if found is not None:
                    self._check(found)
                    return
                try:
                    self.client.api.create_network(
                        self.name, driver="bridge", check_duplicate=True,
                        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=self.subnet, gateway=self.gateway)]),
                        options={ICC_OPTION: "false"},
                        labels={"smemu.kind": "network", "smemu.name": self.name},
                    )
                    log.info("created the container gateway network %s (%s)", self.name, self.subnet)
                    return
                except docker.errors.APIError as exc:
                    if attempt == 2:  # not a race with another emulator: the subnet is taken
                        raise GatewayNetworkError(
                            f"cannot create Docker network {self.name} ({self.subnet}, gateway {self.gateway}): "
                            f"{exc.explanation or exc}") from exc

    def _find(self) -> dict[str, Any] | None:
        for network in self.client.api.networks(names=[self.name]):
            if network.get("Name") == self.name:
                return dict(network)
        return None

    def _legacy_replaced(self, network: dict[str, Any]) -> bool:
        """Remove a network made with inter-container communication on, if nothing is attached to it."""
        import docker.errors

        if (network.get("Options") or {}).get(ICC_OPTION) == "false":
            return False
        try:
            if self.client.api.inspect_network(network["Id"]).get("Containers"):
                return False
            self.client.api.remove_network(network["Id"])  # the engine refuses if one attached meanwhile
        except docker.errors.APIError as exc:
            log.debug("kept network %s: %s", self.name, exc)
            return False
        log.info("recreating the container gateway network %s without inter-container communication", self.name)
        return True

    def _check(self, network: dict[str, Any]) -> None:
        gateways = [c.get("Gateway") for c in (network.get("IPAM") or {}).get("Config") or []]
        if self.gateway not in gateways:
            raise GatewayNetworkError(
                f"Docker network {self.name} exists but its gateway is {gateways}, not {self.gateway}; remove it "
                f"(`docker network rm {self.name}`) when no container uses it")
        if (network.get("Options") or {}).get(ICC_OPTION) != "false" and not self._warned:
            self._warned = True
            log.warning("Docker network %s was created by an older emulator with inter-container communication on "
                        "and is in use, so it is kept: containers on it can reach each other until it is recreated "
                        "(the next start does that when nothing uses it).", self.name)

    def watch(self, events_client: Any) -> Callable[[], None]:
        """Recreate the network whenever the engine reports it destroyed; returns ``stop()``.

        ``events_client`` is a docker-py ``APIClient`` without a read timeout (the stream is
        quiet for as long as nothing happens).
        """
        stream = events_client.events(decode=True, filters={"type": "network", "event": "destroy"})
        stopped = threading.Event()

        def follow() -> None:
            try:
                for event in stream:
                    if stopped.is_set():
                        return
                    if ((event.get("Actor") or {}).get("Attributes") or {}).get("name") == self.name:
                        log.warning("Docker network %s was removed; recreating it", self.name)
                        try:
                            self.ensure()
                        except Exception as exc:  # reported; the next container start tries again
                            log.error("could not recreate network %s: %s", self.name, exc)
            except Exception as exc:  # the stream ends with the engine or with stop()
                if not stopped.is_set():
                    log.warning("stopped watching network %s: %s", self.name, exc)

        threading.Thread(target=follow, name="smemu-gateway-network-watch", daemon=True).start()

        def stop() -> None:
            stopped.set()
            stream.close()

        return stop
