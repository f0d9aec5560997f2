"""The same scenarios on both runtime backends: the ``runtime`` fixture (docker, kubernetes).

A test that takes ``runtime`` runs twice: against the session's emulator on Docker, and against
an emulator with SMEMU_RUNTIME=kubernetes on the project's local cluster (marked
``kubernetes``, so ``-m "not kubernetes"`` keeps the Docker run only). Each backend has one
emulator for the whole session; the test reaches it through :class:`Runtime`'s boto3 clients
and checks what is left on the engine or the cluster through its backend, so the scenario's
body is the same on both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pytest

from emulator.config import Settings
from tests.conftest import create_sagemaker_role, make_client, unique_name

pytest_plugins = ["tests.integration.kube_cluster"]

RUNTIMES = ("docker", pytest.param("kubernetes", marks=pytest.mark.kubernetes))


@dataclass
class Runtime:
    """One backend's emulator, its clients, and what its engine or cluster holds."""

    name: str
    """``docker`` or ``kubernetes``."""
    settings: Settings
    server: Any
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client of the emulator (made once per service)."""
        if service not in self._clients:
            self._clients[service] = make_client(service, self.url, **config)
        return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def invoker(self) -> Any:
        """``sagemaker-runtime``, with a long read timeout."""
        return self.client("sagemaker-runtime", read_timeout=120)

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @cached_property
    def role_arn(self) -> str:
        return create_sagemaker_role(self.url)

    def bucket(self) -> str:
        """A fresh bucket."""
        name = unique_name("bucket")
        self.s3.create_bucket(Bucket=name)
        return name

    @property
    def backend(self) -> Any:
        """The emulator's runtime backend (DockerBackend or KubernetesBackend)."""
        from emulator.runtime.factory import backend_for

        return backend_for(self.settings)

    def containers(self, name: str) -> list[Any]:
        """This emulator's containers or pods labelled with a job's or endpoint's name, running or not.

        The home is named: the Docker backend otherwise fills in the process's last emulator's.
        """
        from emulator.runtime.naming import HOME_LABEL, home_id

        return list(self.backend.find({"smemu.name": name, HOME_LABEL: home_id(self.settings.home)}))

    def leftovers(self, name: str) -> list[str]:
        """Everything still labelled with a job's or endpoint's name: containers, networks, volumes
        on Docker; pods, Services and NetworkPolicies on the cluster."""
        if self.name == "docker":
            import docker

            from tests.integration.test_training_helpers import leftovers

            client = docker.from_env()
            try:
                return leftovers(client, name)
            finally:
                client.close()
        from emulator.runtime.kube_objects import selector

        backend = self.backend
        found = []
        for kind, listing in (("pod", backend.core.list_namespaced_pod),
                              ("service", backend.core.list_namespaced_service),
                              ("networkpolicy", backend.networking.list_namespaced_network_policy)):
            items = listing(backend.namespace, label_selector=selector({"smemu.name": name})).items
            found += [f"{kind} {item.metadata.name}" for item in items]
        return found

    def listing(self, container_id: str, path: str) -> set[str]:
        """The names in a folder of a running container (``ls`` in it)."""
        if self.name == "docker":
            import docker

            client = docker.from_env()
            try:
                result = client.containers.get(container_id).exec_run(["ls", path])
            finally:
                client.close()
            assert result.exit_code == 0, result.output
            return set(result.output.decode().split())
        from emulator.runtime import kube_exec
        from emulator.runtime.kube_objects import MAIN

        backend = self.backend
        session = kube_exec.Exec(backend.configuration, backend.namespace, container_id, MAIN, ["ls", path])
        output = b"".join(session.stdout())
        result = session.finish()
        assert result.exit_code == 0, result.stderr
        return set(output.decode().split())


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    """The session's emulator on one backend (the test runs once per backend)."""
    server = request.getfixturevalue("emulator" if request.param == "docker" else "kube_server")
    return Runtime(request.param, server.settings, server)
