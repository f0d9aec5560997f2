"""The edge port's listening sockets, one per front, bound by the control process.

Each front gets its own socket with SO_REUSEPORT, so the kernel spreads new connections
over the fronts (by a hash of the client's address and port) and no front wakes for a
connection another one takes. The control process binds them all before any front starts
(so ``port=0`` picks one port for all) and keeps its copies open, so a front that is
restarted takes over its socket's queue without losing a connection.

SO_REUSEPORT would also let a second emulator of the same user bind the same port and
silently share its traffic. So the port is first bound *without* the option: that fails with
EADDRINUSE when anything listens there, exactly as a single server's bind would.
"""

from __future__ import annotations

import errno
import socket

from emulator.polling import poll_until


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _probe(host: str, port: int) -> int:
    """Bind ``host:port`` exclusively and release it; returns the port (chosen when 0)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return int(probe.getsockname()[1])


def bind_edge(host: str, port: int, count: int, backlog: int = 1024, wait: float = 3.0) -> list[socket.socket]:
    """``count`` listening sockets sharing ``host:port``; OSError (EADDRINUSE) when it is taken.

    ``wait``: fronts of an emulator killed a moment ago exit as soon as they notice; give
    their sockets that long to close before calling the port taken.
    """
    def probed() -> int | None:
        try:
            return _probe(host, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return None

    found = poll_until(probed, wait, 0.1)
    port = found if found is not None else _probe(host, port)  # still taken: raise the kernel's EADDRINUSE
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(_family(host), socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
