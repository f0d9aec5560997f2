"""docker-py for the user-facing test tooling that drives the engine itself.

The emulator's platform reaches the engine only through
:class:`~emulator.runtime.spec.RuntimeBackend` and :class:`~emulator.runtime.spec.LocalEngine`.
The contract checker (``smemu check``, :mod:`emulator.contract`), the pytest plugin's container
fixtures and :mod:`emulator.testing` are different: they start containers through
testcontainers, follow the engine's events, read a container's sockets, i.e. they test what
the emulator did *from outside* it. They take their client and docker-py's errors from here,
so this package stays the only one that imports docker-py.
"""

from __future__ import annotations

import docker
import docker.errors as docker_errors

__all__ = ["docker_client", "docker_errors"]


def docker_client(**kwargs: object) -> docker.DockerClient:
    """A client for the engine of DOCKER_HOST (or the local socket); ``kwargs`` go to ``docker.from_env``."""
    return docker.from_env(**kwargs)  # type: ignore[arg-type]
