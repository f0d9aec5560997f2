"""Kept-alive connections waiting for their next request, last in first out (both of a front's
pools: to containers and to the control process)."""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar


class _Connection(Protocol):
    transport: asyncio.Transport | None


C = TypeVar("C", bound=_Connection)


class IdleConnections(Generic[C]):
    """At most ``limit`` idle connections; one that closed is never handed out again."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._idle: list[C] = []

    def take(self) -> C | None:
        """The most recently used open connection, or None."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                return connection
        return None

    def release(self, connection: C, keep: bool = True) -> None:
        """A connection whose exchange completed: kept for the next one, or closed."""
        if keep and len(self._idle) < self.limit:
            self._idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()

    def forget(self, connection: C) -> None:
        """A connection that closed."""
        try:
            self._idle.remove(connection)
        except ValueError:
            pass

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            connection = self._idle.pop()
            if connection.transport is not None:
                connection.transport.close()

    def __len__(self) -> int:
        return len(self._idle)
