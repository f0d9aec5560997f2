"""The project's local Kubernetes cluster for a test session (scripts/kube), and a backend on it.

The cluster comes up once per session through ``scripts/kube up --holder <this process>`` and
goes down at the end through ``scripts/kube down --holder ...`` (another session still using
it keeps it up). The first run on a machine builds Kubernetes (minutes, cached afterwards).
Every test module that uses these fixtures is marked ``kubernetes``: ``-m "not kubernetes"``
runs the rest of the suite without a cluster.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.config import KubernetesSettings, Settings, load_settings
from tests.conftest import free_port

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
TEST_IMAGE = os.environ.get("SMEMU_BASE_IMAGE", "smemu-base/python:3.11")
REQUEST_FRACTION = 0.05
"""Pods request a twentieth of their instance: two ml.m5.large hosts fit on a 2-core node."""


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[str]:
    """The kubeconfig of the running local cluster (KUBECONFIG is set for the session)."""
    if os.geteuid() != 0:
        pytest.fail("the local Kubernetes cluster needs root (scripts/kube); deselect with -m 'not kubernetes'")
    holder = str(os.getpid())
    up = subprocess.run([str(SCRIPTS / "kube"), "up", "--holder", holder], stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, text=True, check=False)
    if up.returncode != 0:
        pytest.fail(f"scripts/kube up failed ({up.returncode}); its output is above")
    kubeconfig = up.stdout.strip().splitlines()[-1]
    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = kubeconfig
    try:
        yield kubeconfig
    finally:
        if saved is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = saved
        subprocess.run([str(SCRIPTS / "kube"), "down", "--holder", holder], stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="session")
def kube_settings(kube_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with SMEMU_RUNTIME=kubernetes and a namespace of this session's own."""
    home = tmp_path_factory.mktemp("smemu-kube-home")
    options = KubernetesSettings(namespace=f"smemu-test-{uuid.uuid4().hex[:8]}", request_fraction=REQUEST_FRACTION,
                                 start_timeout_seconds=120)
    base = load_settings({k: v for k, v in os.environ.items() if k == "SMEMU_BASE_IMAGE"})
    return base.with_overrides(home=Path(home), runtime="kubernetes", kubernetes=options)


@pytest.fixture(scope="session")
def kube_backend(kube_settings: Settings) -> Iterator[Any]:
    """A KubernetesBackend on the local cluster; its namespace is deleted at the end."""
    from emulator.runtime.kubernetes_backend import KubernetesBackend

    backend = KubernetesBackend(kube_settings)
    try:
        yield backend
    finally:
        try:
            backend.core.delete_namespace(kube_settings.kubernetes.namespace)
        finally:
            backend.close()


@pytest.fixture(scope="session")
def kube_server(kube_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session's emulator on the cluster, set up as the Docker session emulator is (tests/conftest.py)."""
    from emulator.server import EmulatorServer

    settings = kube_settings.with_overrides(port=free_port(), host="127.0.0.1", hold_seconds=0,
                                            host_folders=(tmp_path_factory.getbasetemp().resolve(),))
    server = EmulatorServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kube_test_image(kube_backend: Any) -> str:
    """The offline base image, delivered to the cluster as a locally built image would be."""
    return str(kube_backend.ensure_image(TEST_IMAGE))
