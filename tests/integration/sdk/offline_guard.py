"""Refuse every network connection that does not stay on this machine's loopback.

Imported first by the SageMaker SDK scripts the tests run, so a call the SDK makes past the
emulator (telemetry, a hard-coded STS endpoint) fails the test loudly instead of leaving the
machine.
"""

from __future__ import annotations

import socket
from typing import Any

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def _host(address: Any) -> str | None:
    return str(address[0]) if isinstance(address, tuple) else None


def _guarded_connect(self: socket.socket, address: Any) -> None:
    host = _host(address)
    if host is not None and host not in _LOOPBACK:
        raise OSError(f"off-box connection refused by the test guard: {address!r}")
    _connect(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and str(host) not in _LOOPBACK:
        raise OSError(f"name lookup refused by the test guard: {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo
