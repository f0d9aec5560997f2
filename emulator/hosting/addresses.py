"""Where the emulator reaches a container's serving port: on the container's own network when
it can, through the published loopback port otherwise.

A published port on Docker goes through the engine's userland proxy, one more process and TCP
hop for every invocation (measured here: about 0.25 ms of the p50 and a large share of the
CPU of a small request). Where this process reaches the container's bridge address directly
(the emulator runs on the Docker host itself, Linux), it talks to the container there, as
SageMaker's router talks to an instance's address. Whether it does is probed once per
container network: a connection that is accepted or refused means the network is reachable;
a timeout or "no route" means it is not (Docker Desktop, an emulator inside a container),
and the published port is used.
"""

from __future__ import annotations

import socket
import threading

from emulator.runtime.spec import RuntimeBackend

PROBE_SECONDS = 0.25


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
    except ConnectionRefusedError:
        return True  # the container's kernel answered: nothing listens yet, the network is fine
    except OSError:
        return False
    return True


class Reachability:
    """Chooses each container's address, remembering which networks answer directly."""

    def __init__(self) -> None:
        self._networks: dict[str, bool] = {}
        self._lock = threading.Lock()

    def address(self, backend: RuntimeBackend, container_id: str, port: int) -> tuple[tuple[str, int], tuple[str, int]]:
        """``(published address, address to use)``; raises what ``published_port`` raises.

        ``backend.network_address`` is the container's own address for ``port``, or None where
        the backend has none to offer (Kubernetes, the unit tests' fakes).
        """
        published = backend.published_port(container_id, port)
        direct = backend.network_address(container_id, port)
        if direct is None:
            return published, published
        network = direct[0].rsplit(".", 1)[0]
        with self._lock:
            known = self._networks.get(network)
        if known is None:
            known = _reachable(*direct)
            with self._lock:
                self._networks[network] = known
        return published, (direct if known else published)
