"""The one place that decides which runtime backend a platform gets (SMEMU_RUNTIME).

``docker`` (default): this machine's Docker engine (:mod:`emulator.runtime.docker_backend`).
``kubernetes``: the cluster of the standard KUBECONFIG (:mod:`emulator.runtime.kubernetes_backend`,
docs/kubernetes.md). The platform hands its services ``backend_for`` bound to its Settings
(``Platform.backend_factory``); they call it when they first need containers, so the emulator
starts even when no engine answers yet, and a failed connection is tried again next time.
Backends are shared by platforms with the same settings (one connection pool per cluster).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from emulator.runtime.spec import RuntimeBackend

_clusters: dict[tuple[Any, str], RuntimeBackend] = {}
_lock = threading.Lock()


def backend_for(settings: Any) -> RuntimeBackend:
    """The backend ``settings.runtime`` names, connected on first use (EngineUnavailable if it cannot be)."""
    if getattr(settings, "runtime", "docker") == "kubernetes":
        key = (settings.kubernetes, os.environ.get("KUBECONFIG", ""))
        with _lock:
            if key not in _clusters:
                from emulator.runtime.kubernetes_backend import KubernetesBackend

                _clusters[key] = KubernetesBackend(settings)
            return _clusters[key]
    from emulator.runtime.docker_backend import get_backend

    return get_backend()
