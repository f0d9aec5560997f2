"""The Docker backend against a real engine: the RuntimeBackend seam, in Docker's terms."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import docker
from emulator.runtime.docker_backend import DockerBackend, get_backend
from emulator.runtime.spec import (
    ContainerNotFound,
    ContainerSpec,
    EngineUnavailable,
    ImageNotFound,
    StagedFolder,
)
from tests.conftest import unique_name

pytestmark = pytest.mark.docker

BASE = "smemu-base/python:3.11"


@pytest.fixture()
def backend() -> DockerBackend:
    return get_backend()


@pytest.fixture()
def labels(backend: DockerBackend) -> Iterator[dict[str, str]]:
    """Labels for one test's objects; everything carrying them is removed afterwards."""
    found = {"smemu.kind": "test-backend", "smemu.name": unique_name("backend")}
    try:
        yield found
    finally:
        backend.remove_labelled(found)


def spec(labels: dict[str, str], script: str, **fields: Any) -> ContainerSpec:
    return ContainerSpec(name=f"{labels['smemu.name']}-{fields.pop('suffix', 'c')}", image=BASE,
                         entrypoint=["sh", "-c"], command=[script], labels=labels, **fields)


def lines(backend: DockerBackend, container_id: str) -> list[str]:
    return [line for _, line in backend.logs(container_id, follow=False)]


def test_folders_logs_labels_and_copy_out(backend: DockerBackend, labels: dict[str, str], tmp_path: Path) -> None:
    staged, seed = tmp_path / "input", tmp_path / "seed"
    staged.mkdir()
    (staged / "config.json").write_text("{}")
    (seed / "sub").mkdir(parents=True)
    (seed / "sub" / "ckpt").write_text("epoch 3")
    long_line = "x" * 40_000
    container_id = backend.start(spec(
        labels,
        "cat /opt/ml/ckpt/sub/ckpt; echo; echo to-stderr >&2; "
        f"echo {long_line}; touch /opt/ml/input/new 2>/dev/null || echo read-only; "
        "mkdir -p /opt/ml/model/deep && echo weights > /opt/ml/model/deep/w.bin",
        folders=[StagedFolder(staged, "/opt/ml/input", read_only=True),
                 StagedFolder(None, "/opt/ml/model", private=True),
                 StagedFolder(seed, "/opt/ml/ckpt", private=True)],
        expose_ports=[8080]))
    assert backend.wait(container_id) is not None

    output = lines(backend, container_id)
    assert {"epoch 3", "to-stderr", "read-only"} <= set(output)
    assert long_line in output, "a line Docker splits into 16 KiB pieces comes back whole"
    assert all(isinstance(ts, float) and ts > 1e9 for ts, _ in backend.logs(container_id, follow=False))
    assert backend.copy_out(container_id, "/opt/ml/model", tmp_path / "model")
    assert (tmp_path / "model" / "deep" / "w.bin").read_text() == "weights\n"
    assert not backend.copy_out(container_id, "/opt/ml/missing", tmp_path / "missing")
    assert sorted(p.name for p in staged.iterdir()) == ["config.json"], "nothing was written into the host folder"

    attrs = docker.from_env().api.inspect_container(container_id)
    assert attrs["Config"]["Labels"].items() >= labels.items()
    assert attrs["Config"]["Labels"]["smemu.home"] in attrs["Name"]  # the home id, in the name too
    assert not any("docker.sock" in (m.get("Source") or "") for m in attrs["Mounts"])
    bindings = attrs["HostConfig"]["PortBindings"]["8080/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    assert backend.find(labels)[0].id == container_id


def test_network_aliases_isolation_and_internal_networks(backend: DockerBackend, labels: dict[str, str]) -> None:
    network = labels["smemu.name"]
    backend.create_network(network, labels, internal=True)
    made = docker.from_env().networks.list(filters={"label": f"smemu.name={network}"})
    assert [n.attrs["Internal"] for n in made] == [True]
    assert made[0].name.startswith(f"smemu-{made[0].attrs['Labels']['smemu.home']}-")  # the home id in the name
    server = backend.start(spec(labels, "python3 -m http.server 7000", hostname="algo-1", network=network,
                                suffix="algo-1"))
    client = backend.start(spec(
        labels,
        "for i in $(seq 50); do python3 -c \"import urllib.request as u; u.urlopen('http://algo-1:7000/')\" "
        "&& echo reached && exit 0; sleep 0.1; done; exit 1",
        hostname="algo-2", network=network, suffix="algo-2"))
    exit_ = backend.wait(client, timeout=30)
    assert exit_ is not None and exit_.exit_code == 0, lines(backend, client)
    assert "reached" in lines(backend, client)
    backend.kill(server)

    isolated = backend.start(spec(labels, "cat /proc/net/dev", network_isolated=True, suffix="iso"))
    backend.wait(isolated)
    interfaces = {line.split(":")[0].strip() for line in lines(backend, isolated)[2:]}
    assert interfaces == {"lo"}


def test_oom_stop_grace_and_wait_timeout(backend: DockerBackend, labels: dict[str, str]) -> None:
    hog = backend.start(spec(labels, "python3 -c \"x = b'1' * (300 * 1024 * 1024)\"",
                             memory_bytes=64 * 1024**2, suffix="oom"))
    exit_ = backend.wait(hog)
    assert exit_ is not None and exit_.oom_killed and exit_.exit_code == 137

    stubborn = backend.start(spec(labels, "trap '' TERM; echo up; while true; do sleep 0.1; done",
                                  suffix="stubborn"))
    assert backend.wait(stubborn, timeout=0.5) is None
    assert backend.is_running(stubborn)
    started = time.monotonic()
    backend.stop(stubborn, grace_seconds=1)
    assert 1 <= time.monotonic() - started < 10
    assert backend.wait(stubborn) == type(exit_)(exit_code=137, oom_killed=False)


def test_errors_are_the_runtime_errors(backend: DockerBackend, labels: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImageNotFound) as raised:
        backend.ensure_image("smemu-no/such-image:1")
    assert "never pulls" in str(raised.value) and "smemu-no/such-image:1" in str(raised.value)
    with pytest.raises(ImageNotFound):
        backend.start(ContainerSpec(name=labels["smemu.name"], image="smemu-no/such-image:1", labels=labels))

    gone = backend.start(spec(labels, "true", suffix="gone"))
    backend.wait(gone)
    backend.remove(gone)
    backend.remove(gone)  # a missing container is fine
    backend.kill(gone)
    assert not backend.is_running(gone)
    with pytest.raises(ContainerNotFound):
        backend.wait(gone)

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(EngineUnavailable):
        DockerBackend()


def test_ensure_image_takes_exact_local_names_only(backend: DockerBackend) -> None:
    client = docker.from_env()
    repository = unique_name("smemu-ecr-test")
    client.images.get(BASE).tag(repository, "v1")
    try:
        assert backend.ensure_image(f"{repository}:v1") == f"{repository}:v1"
        with pytest.raises(ImageNotFound):  # ECR URIs are emulator.images' business, not the engine's
            backend.ensure_image(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}:v1")
    finally:
        client.images.remove(f"{repository}:v1")


def test_remove_labelled_removes_containers_networks_and_volumes(backend: DockerBackend,
                                                                  labels: dict[str, str]) -> None:
    backend.create_network(labels["smemu.name"], labels)
    backend.start(spec(labels, "sleep 30", network=labels["smemu.name"],
                       folders=[StagedFolder(None, "/opt/ml/model", private=True)]))
    client = docker.from_env()
    selector = {"label": f"smemu.name={labels['smemu.name']}"}
    assert client.volumes.list(filters=selector), "private folders are labelled volumes"
    assert backend.remove_labelled(labels) >= 2
    assert client.containers.list(all=True, filters=selector) == []
    assert client.networks.list(filters=selector) == []
    assert client.volumes.list(filters=selector) == []
