"""The three S3 stores, behind one small interface the server, the edge and the platform use.

==========  ===============================  ==========  =============================================
kind        where objects live               durable     S3 requests on the edge port go to
==========  ===============================  ==========  =============================================
minio       MinIO, a child process, data in  yes         :class:`S3Proxy` -> that MinIO
            ``SMEMU_HOME/s3`` (default)
external    ``SMEMU_S3_ENDPOINT``            the store's :class:`S3Proxy` -> that endpoint
memory      moto's S3, in this process       **no**      moto (as every other AWS service)
==========  ===============================  ==========  =============================================

The platform's own S3 work (channel staging, artifact upload) talks to the store directly,
with the store's credentials (:attr:`ObjectStore.endpoint`).
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from emulator.config import Settings
from emulator.objectstore.minio import (
    ManagedMinio,
    StoreEndpoint,
    StoreUnavailable,
    find_minio_binary,
    missing_binary_message,
)

log = logging.getLogger(__name__)

WsgiApp = Callable[..., Iterable[bytes]]


class ObjectStore:
    """One S3 store: started and stopped with the emulator, reachable at :attr:`endpoint`."""

    kind = "memory"
    durable = False

    def start(self) -> None:
        """Start the store if the emulator runs it (returns at once; see :meth:`wait_ready`)."""

    def wait_ready(self) -> None:
        """Return once the store answers (raises StoreUnavailable when it does not)."""

    def stop(self) -> None:
        """Stop what :meth:`start` started."""

    @property
    def endpoint(self) -> StoreEndpoint | None:
        """Where the platform reaches the store directly; None: through the edge port (moto's S3)."""
        return None

    def edge_app(self, moto: WsgiApp) -> WsgiApp:
        """What serves S3 requests on the edge port (``moto``: moto's application)."""
        from emulator.objectstore.proxy import memory_store_edge

        return memory_store_edge(moto)

    def make_durable(self) -> None:
        """Called before a job reads Completed: returns once its acknowledged objects survive a power loss."""

    def describe(self) -> dict[str, Any]:
        """The store as ``/_smemu/health`` shows it."""
        return {"kind": self.kind, "durable": self.durable}


class MemoryStore(ObjectStore):
    """moto's S3 in this process: nothing written to disk, every object lost when the emulator stops."""


class _ProxiedStore(ObjectStore):
    durable = True

    def __init__(self) -> None:
        self._proxy: WsgiApp | None = None

    def edge_app(self, moto: WsgiApp) -> WsgiApp:
        if self._proxy is None:
            from emulator.objectstore.proxy import S3Proxy

            self._proxy = S3Proxy(self._current_endpoint)
        return self._proxy

    def _current_endpoint(self) -> StoreEndpoint:
        endpoint = self.endpoint
        assert endpoint is not None
        return endpoint

    def describe(self) -> dict[str, Any]:
        endpoint = self.endpoint
        return {**super().describe(), "endpoint": endpoint.url if endpoint else None}


class ExternalStore(_ProxiedStore):
    """An S3 the user runs (``SMEMU_S3_ENDPOINT``): its durability is its own."""

    kind = "external"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        assert settings.s3_endpoint
        self._endpoint = StoreEndpoint(settings.s3_endpoint.rstrip("/"), settings.s3_access_key,
                                       settings.s3_secret_key)

    @property
    def endpoint(self) -> StoreEndpoint:
        return self._endpoint


class MinioStore(_ProxiedStore):
    """The default: MinIO run by the emulator (objectstore/minio.py)."""

    kind = "minio"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        binary = find_minio_binary(settings)
        if binary is None:
            raise StoreUnavailable(missing_binary_message(settings))
        self.data_dir = settings.s3_data_dir
        self.server = ManagedMinio(settings, binary)

    @property
    def endpoint(self) -> StoreEndpoint:
        return self.server.endpoint

    def start(self) -> None:
        self.server.start(wait=False)

    def wait_ready(self) -> None:
        self.server.wait_ready()

    def stop(self) -> None:
        self.server.stop()

    def make_durable(self) -> None:
        """``syncfs(2)`` of the filesystem holding MinIO's data: its last renames reach the disk too.

        MinIO fdatasyncs an object's data and metadata before it answers a PUT, but not the
        directory entry of the rename that commits it; syncfs makes that durable as well.
        """
        _syncfs(self.data_dir)

    def describe(self) -> dict[str, Any]:
        ready = self.server.ready_seconds
        return {**super().describe(), "pid": self.server.pid, "restarts": self.server.restarts,
                "ready_seconds": None if ready is None else round(ready, 3), "data": str(self.data_dir)}


def _syncfs(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), f"syncfs({folder}) failed")
    except AttributeError:  # pragma: no cover - not Linux: sync everything
        os.sync()
    finally:
        os.close(fd)


def open_store(settings: Settings) -> ObjectStore:
    """The store the settings choose (not started yet); raises StoreUnavailable with what to do."""
    kind = settings.s3_kind
    if kind == "external":
        return ExternalStore(settings)
    if kind == "memory":
        log.warning("S3 store: moto's in-memory S3 (SMEMU_S3_STORE=memory). Objects are NOT durable: every "
                    "object is lost when the emulator stops")
        return MemoryStore()
    return MinioStore(settings)
