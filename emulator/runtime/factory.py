"""The one place that decides which runtime backend a platform gets (SMEMU_RUNTIME).

``docker`` (default): this machine's Docker engine (:mod:`emulator.runtime.docker_backend`).
``kubernetes``: the cluster of the standard KUBECONFIG (:mod:`emulator.runtime.kubernetes_backend`,
docs/kubernetes.md). :func:`local_engine` is this machine's engine whatever SMEMU_RUNTIME says:
the user's images, pushes to the emulator's registry and the container gateway's network are
there. The platform wraps both in :mod:`emulator.runtime.lazy` and injects them into its
services, so the emulator starts even when no engine answers yet, and a failed connection is
tried again next time. Backends are shared by platforms with the same settings (one
connection pool per cluster).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from emulator.runtime.spec import LocalEngine, RuntimeBackend

_clusters: dict[tuple[Any, str], RuntimeBackend] = {}
_lock = threading.Lock()


def backend_for(settings: Any) -> RuntimeBackend:
    """The backend ``settings.runtime`` names, connected on first use (EngineUnavailable if it cannot be)."""
    if settings.runtime == "kubernetes":
        key = (settings.kubernetes, os.environ.get("KUBECONFIG", ""))
        with _lock:
            if key not in _clusters:
                from emulator.runtime.kubernetes_backend import KubernetesBackend

                _clusters[key] = KubernetesBackend(settings)
            return _clusters[key]
    return local_engine()


def local_engine() -> LocalEngine:
    """This machine's Docker engine, connected on first use (EngineUnavailable naming the fix if it cannot be)."""
    from emulator.runtime.docker_backend import get_backend

    return get_backend()
