"""Every runtime backend implements the whole seam (DESIGN.md decision 9).

The platform's services call the :class:`~emulator.runtime.spec.RuntimeBackend` protocol and
nothing else, so each backend, the lazy wrappers and the unit tests' fakes must offer every
method with the protocol's parameters; a method missing from a fake would otherwise grow a
``hasattr`` shim in product code again.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from emulator.runtime.docker_backend import DockerBackend
from emulator.runtime.kubernetes_backend import KubernetesBackend
from emulator.runtime.lazy import LazyBackend, LazyEngine
from emulator.runtime.spec import LocalEngine, RuntimeBackend
from tests.unit.test_hosting_fakes import FakeBackend
from tests.unit.test_training_fakes import FakeTrainingBackend


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    """The public methods a protocol declares (its own and inherited), with their signatures."""
    methods: dict[str, inspect.Signature] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        for name, member in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(member):
                methods[name] = inspect.signature(member)
    return methods


def parameters(signature: inspect.Signature) -> list[tuple[str, Any]]:
    """Parameter names, kinds and defaults (annotations may be spelled differently)."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


RUNTIME_BACKENDS = [DockerBackend, KubernetesBackend, LazyBackend, LazyEngine, FakeBackend, FakeTrainingBackend]
LOCAL_ENGINES = [DockerBackend, LazyEngine]


def test_the_protocols_declare_the_seam() -> None:
    runtime = protocol_methods(RuntimeBackend)
    assert {"start", "wait", "stop", "logs", "copy_out", "remove_labelled", "create_network", "gpu_devices",
            "published_port", "network_address", "container_subnets", "copy_in"} <= set(runtime)
    engine = protocol_methods(LocalEngine)
    assert set(runtime) < set(engine)
    assert {"image_id", "pull_image", "push_image", "login", "engine_version", "ensure_gateway_network",
            "watch_gateway_network"} <= set(engine) - set(runtime)


def assert_implements(klass: type, protocol: type) -> None:
    """Every method of ``protocol`` is on ``klass`` with the same parameters."""
    for name, expected in protocol_methods(protocol).items():
        method = getattr(klass, name, None)
        assert callable(method), f"{klass.__name__} lacks {protocol.__name__}.{name}"
        assert parameters(inspect.signature(method)) == parameters(expected), \
            f"{klass.__name__}.{name}{inspect.signature(method)} differs from the protocol's {expected}"


@pytest.mark.parametrize("backend", RUNTIME_BACKENDS, ids=lambda c: c.__name__)
def test_every_backend_implements_every_runtime_method(backend: type) -> None:
    assert_implements(backend, RuntimeBackend)


@pytest.mark.parametrize("engine", LOCAL_ENGINES, ids=lambda c: c.__name__)
def test_local_engines_implement_every_engine_method(engine: type) -> None:
    assert_implements(engine, LocalEngine)


def test_a_method_missing_from_a_backend_is_caught() -> None:
    class Partial(FakeBackend):
        start = None  # type: ignore[assignment]

    class Renamed(FakeBackend):
        def wait(self, container: str, timeout: float | None = None) -> None:  # type: ignore[override]
            return None

    with pytest.raises(AssertionError, match="Partial lacks RuntimeBackend.start"):
        assert_implements(Partial, RuntimeBackend)
    with pytest.raises(AssertionError, match=r"Renamed.wait\(self, container"):
        assert_implements(Renamed, RuntimeBackend)


def test_the_lazy_backend_connects_on_first_use_and_forwards() -> None:
    made: list[FakeBackend] = []

    def factory() -> FakeBackend:
        made.append(FakeBackend())
        return made[-1]

    lazy = LazyBackend(factory)
    assert not lazy.connected and made == []
    lazy.close()  # closing an unconnected backend connects nothing
    assert made == []
    assert lazy.ensure_image("img") == "img"
    assert lazy.connected and len(made) == 1
    assert lazy.container_subnets("home") == [] and lazy.network_address("x", 8080) is None
    assert lazy.find({"smemu.kind": "none"}) == []
    assert len(made) == 1


def test_only_the_runtime_package_talks_to_docker_and_nobody_probes_a_backend() -> None:
    import re
    from pathlib import Path

    import emulator

    root = Path(emulator.__file__).parent
    imports_docker = re.compile(r"^\s*(import docker\b|from docker\b)", re.M)
    probes = re.compile(r"\b(getattr|hasattr)\(\s*(self\.)?(backend|engine|platform)\b")
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        relative = path.relative_to(root).as_posix()
        if imports_docker.search(text) and not relative.startswith("runtime/"):
            found.append(f"{relative} imports docker-py")
        if probes.search(text):
            found.append(f"{relative} probes a backend or the platform with getattr/hasattr")
    assert found == []
