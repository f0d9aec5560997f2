"""GPU device assignment (emulator.gpus), what the Docker backend asks the engine for, and the
training service's refusal or fallback when a GPU type finds no GPUs (fake backend)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from emulator.config import load_settings
from emulator.context import CallContext
from emulator.errors import ResourceLimitExceeded
from emulator.gpus import (
    USAGE_ENDPOINT,
    USAGE_TRAINING,
    GpuPolicy,
    GpuUnavailable,
    assign,
    parse_fallback,
    parse_selection,
)
from emulator.runtime.spec import ContainerSpec, GpuRequestFailed, RuntimeError_

OFF = GpuPolicy()
CPU = GpuPolicy(fallback="cpu")
SHARE = GpuPolicy(fallback="share")
FOUR = ["0", "1", "2", "3"]


# -- settings ------------------------------------------------------------------------------------

def test_selection_and_fallback_parsing() -> None:
    assert parse_selection(None) == "all" and parse_selection("ALL") == "all"
    assert parse_selection("none") == "none" and parse_selection("void") == "none"
    assert parse_selection(" 0, 2 ") == ("0", "2")
    assert parse_selection("GPU-8f3c1d2e-aaaa-bbbb-cccc-0123456789ab") == ("GPU-8f3c1d2e-aaaa-bbbb-cccc-0123456789ab",)
    for bad in ("yes", "0,0", "1;2", ","):
        with pytest.raises(ValueError):
            parse_selection(bad)
    assert parse_fallback(None) == "off" and parse_fallback("CPU") == "cpu" and parse_fallback("share") == "share"
    with pytest.raises(ValueError, match="SMEMU_GPU_FALLBACK"):
        parse_fallback("gpu")


def test_settings_read_and_check_the_gpu_variables() -> None:
    settings = load_settings({"SMEMU_GPUS": "1,0", "SMEMU_GPU_FALLBACK": "cpu", "SMEMU_GPU_RUNTIME": "nvidia-cdi"})
    policy = GpuPolicy.from_settings(settings)
    assert policy == GpuPolicy(selection=("1", "0"), fallback="cpu", runtime="nvidia-cdi")
    assert GpuPolicy.from_settings(load_settings({})) == GpuPolicy()
    with pytest.raises(ValueError, match="SMEMU_GPUS"):
        load_settings({"SMEMU_GPUS": "first"})


# -- assignment ------------------------------------------------------------------------------------

def test_cpu_types_get_nothing_and_need_no_gpu_runtime() -> None:
    assert assign(["ml.m5.large", "ml.c5.xlarge"], None, OFF) == [[], []]


def test_hosts_of_a_multi_host_job_get_distinct_devices_in_order() -> None:
    assert assign(["ml.g5.2xlarge"] * 3, FOUR, OFF) == [["0"], ["1"], ["2"]]
    assert assign(["ml.g5.12xlarge"], FOUR, OFF) == [FOUR]
    # heterogeneous instance groups: a CPU group and a GPU group
    assert assign(["ml.m5.large", "ml.p3.8xlarge"], FOUR, OFF) == [[], FOUR]
    assert assign(["ml.g5.xlarge", "ml.g4dn.12xlarge"], ["0", "1", "2", "3", "4"], OFF) == [["0"], ["1", "2", "3", "4"]]


def test_smemu_gpus_selects_devices() -> None:
    assert assign(["ml.g5.xlarge"] * 2, FOUR, GpuPolicy(selection=("3", "1"))) == [["3"], ["1"]]
    with pytest.raises(GpuUnavailable, match="SMEMU_GPUS names GPU 7, which this machine does not have"):
        assign(["ml.g5.xlarge"], FOUR, GpuPolicy(selection=("7",)))
    # devices that cannot be counted: the user's ids are trusted
    assert assign(["ml.g5.xlarge"], ["all"], GpuPolicy(selection=("2",))) == [["2"]]


def test_too_few_gpus_is_refused_with_the_quota_wording_aws_uses() -> None:
    with pytest.raises(GpuUnavailable) as caught:
        assign(["ml.g5.12xlarge"] * 2, FOUR, OFF)
    error = caught.value
    assert (error.instance_type, error.requested, error.limit) == ("ml.g5.12xlarge", 2, 1)
    message = error.limit_message(USAGE_TRAINING)
    assert message.startswith(
        "The account-level service limit 'ml.g5.12xlarge for training job usage' is 1 Instances, with current "
        "utilization of 0 Instances and a request delta of 2 Instances. Please use AWS Service Quotas to request an "
        "increase for this quota.")
    assert "2 x ml.g5.12xlarge need 8 GPU(s), and this machine offers 4 (0, 1, 2, 3)." in message
    assert "SMEMU_GPU_FALLBACK=share" in message
    assert error.capacity_reason().startswith(
        "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML "
        "instance type. (sagemaker-emulator: 2 x ml.g5.12xlarge need 8 GPU(s)")


def test_no_gpu_runtime_is_refused_naming_the_runtime_and_the_switch() -> None:
    with pytest.raises(GpuUnavailable) as caught:
        assign(["ml.g5.xlarge"], None, OFF)
    assert caught.value.limit == 0 and caught.value.requested == 1
    message = caught.value.limit_message(USAGE_ENDPOINT)
    assert "'ml.g5.xlarge for endpoint usage' is 0 Instances" in message
    assert "no NVIDIA container runtime (no runtime named 'nvidia' is registered" in message
    assert "SMEMU_GPU_FALLBACK=cpu" in message and "docs/gpu.md" in message
    with pytest.raises(GpuUnavailable, match="has an NVIDIA runtime, but this machine has no GPU"):
        assign(["ml.g5.xlarge"], [], OFF)
    with pytest.raises(GpuUnavailable, match=r"GPUs are turned off \(SMEMU_GPUS=none\)"):
        assign(["ml.g5.xlarge"], FOUR, GpuPolicy(selection="none"))


def test_cpu_fallback_runs_without_gpus_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="emulator.gpus"):
        assert assign(["ml.g5.xlarge", "ml.g5.xlarge"], None, CPU, what="training job j") == [[], []]
    assert "GPU FALLBACK: training job j runs WITHOUT GPUs" in caplog.text
    assert "SMEMU_GPU_FALLBACK=cpu" in caplog.text
    assert assign(["ml.g5.12xlarge"], ["0"], CPU) == [[]]


def test_share_fallback_spreads_too_few_gpus_round_robin() -> None:
    assert assign(["ml.g5.xlarge"] * 3, ["0", "1"], SHARE) == [["0"], ["1"], ["0"]]
    assert assign(["ml.g5.12xlarge"], ["0", "1"], SHARE) == [["0", "1"]]
    with pytest.raises(GpuUnavailable):  # sharing needs at least one GPU
        assign(["ml.g5.xlarge"], None, SHARE)


def test_uncountable_devices_give_every_gpu_host_all() -> None:
    assert assign(["ml.m5.large", "ml.g5.xlarge", "ml.g5.xlarge"], ["all"], OFF) == [[], ["all"], ["all"]]


def test_non_nvidia_accelerators_are_refused_unless_cpu_fallback() -> None:
    with pytest.raises(GpuUnavailable, match=r"ml.inf2.xlarge has 1 x AWS Inferentia2 \(aws-inferentia\)"):
        assign(["ml.inf2.xlarge"], FOUR, OFF)
    with pytest.raises(GpuUnavailable, match="NVIDIA GPUs only"):
        assign(["ml.trn1.2xlarge"], FOUR, SHARE)
    assert assign(["ml.inf2.xlarge"], None, CPU) == [[]]


def test_local_gpu_gets_every_gpu() -> None:
    assert assign(["local_gpu"], FOUR, OFF) == [FOUR]
    assert assign(["local"], None, OFF) == [[]]


# -- the Docker backend's create arguments -----------------------------------------------------

class _FakeApi:
    def create_endpoint_config(self, aliases: Any = None) -> dict[str, Any]:
        return {"Aliases": aliases}


class _FakeClient:
    def __init__(self, runtimes: dict[str, Any], default: str = "runc") -> None:
        self._info = {"NCPU": 8, "Runtimes": runtimes, "DefaultRuntime": default}
        self.api = _FakeApi()

    def info(self) -> dict[str, Any]:
        return self._info


def _backend(runtimes: dict[str, Any], default: str = "runc", gpu_runtime: str | None = None) -> Any:
    from unittest import mock

    from emulator.runtime import docker_backend

    # No engine is contacted: the streaming client is replaced (docker-py would ask it for its version).
    with mock.patch.object(docker_backend.docker, "APIClient", lambda **_kwargs: None):
        return docker_backend.DockerBackend(client=_FakeClient(runtimes, default),  # type: ignore[arg-type]
                                            gpu_runtime=gpu_runtime)


def test_backend_sends_a_gpu_device_request_through_the_nvidia_runtime() -> None:
    backend = _backend({"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}})
    assert backend.gpus_available()
    args = backend._create_arguments(ContainerSpec(name="c", image="i", gpu_device_ids=["1", "2"],
                                                   environment={"NVIDIA_VISIBLE_DEVICES": "all"}))
    assert args["runtime"] == "nvidia"
    (request,) = args["device_requests"]
    assert request["DeviceIDs"] == ["1", "2"] and request["Capabilities"] == [["gpu"]] and request["Count"] == 0
    assert args["environment"]["NVIDIA_VISIBLE_DEVICES"] == "1,2", "the assignment wins over the image's 'all'"
    every = backend._create_arguments(ContainerSpec(name="c", image="i", gpu_device_ids=["all"]))
    assert every["device_requests"][0]["Count"] == -1 and every["environment"]["NVIDIA_VISIBLE_DEVICES"] == "all"
    cpu = backend._create_arguments(ContainerSpec(name="c", image="i"))
    assert "device_requests" not in cpu and "runtime" not in cpu
    assert cpu["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void", "a CUDA image on a CPU type gets no GPU"


def test_backend_without_gpu_runtime_changes_nothing_for_cpu_containers() -> None:
    backend = _backend({"runc": {}})
    assert not backend.gpus_available() and backend.gpu_devices() is None
    assert "NVIDIA_VISIBLE_DEVICES" not in backend._create_arguments(ContainerSpec(name="c", image="i"))["environment"]


def test_backend_runtime_named_in_config_or_the_engine_default() -> None:
    named = _backend({"runc": {}, "nvidia-cdi": {}}, gpu_runtime="nvidia-cdi")
    assert named.gpus_available()
    assert named._create_arguments(ContainerSpec(name="c", image="i", gpu_device_ids=["0"]))["runtime"] == "nvidia-cdi"
    assert not _backend({"runc": {}, "nvidia": {}}, gpu_runtime="nvidia-cdi").gpus_available()
    default = _backend({"runc": {}}, default="nvidia", gpu_runtime="default")
    args = default._create_arguments(ContainerSpec(name="c", image="i", gpu_device_ids=["0"]))
    assert "runtime" not in args and args["device_requests"][0]["DeviceIDs"] == ["0"]


def test_backend_counts_local_gpus_with_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from emulator.runtime import docker_backend

    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    backend = _backend({"runc": {}, "nvidia": {}})
    assert backend.gpu_devices() == ["0", "1"]
    monkeypatch.setattr(docker_backend, "_engine_is_local", lambda: False)
    assert _backend({"runc": {}, "nvidia": {}}).gpu_devices() == ["all"], "a remote engine's GPUs are not ours"
    monkeypatch.undo()
    monkeypatch.setenv("DOCKER_HOST", "tcp://engine.invalid:2375")  # only read, never contacted
    assert docker_backend._engine_is_local() is False
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker.sock")
    assert docker_backend._engine_is_local() is True


def test_engine_refusing_gpus_is_reported_as_such() -> None:
    from emulator.runtime.docker_backend import _gpu_errors

    spec = ContainerSpec(name="c", image="i", gpu_device_ids=["0"])
    with pytest.raises(GpuRequestFailed, match="NVIDIA Container Toolkit"), _gpu_errors(spec):
        raise RuntimeError_('creating container c: could not select device driver "" with capabilities: [[gpu]]')
    with pytest.raises(RuntimeError_) as caught, _gpu_errors(ContainerSpec(name="c", image="i")):
        raise RuntimeError_("could not select device driver")
    assert not isinstance(caught.value, GpuRequestFailed)


# -- training service with a fake backend --------------------------------------------------------

CTX = CallContext(region="us-east-1", account_id="123456789012")


def _harness(tmp_path: Path, devices: Any, **settings: Any) -> Any:
    from tests.unit.test_training_service import Harness

    harness = Harness(tmp_path)
    script = list(devices) if isinstance(devices, tuple) else None
    harness.backend.gpu_devices = (lambda: script.pop(0) if len(script) > 1 else script[0]) if script \
        else (lambda: devices)  # type: ignore[method-assign]
    if settings:
        harness.platform.settings = harness.platform.settings.with_overrides(**settings)
    return harness


def _gpu_job(harness: Any, name: str, instance_type: str = "ml.g5.xlarge", count: int = 1) -> dict[str, Any]:
    return harness.create(name, ResourceConfig={"InstanceType": instance_type, "InstanceCount": count,
                                                "VolumeSizeInGB": 1})


def test_create_refuses_a_gpu_job_where_there_is_no_gpu_runtime(tmp_path: Path) -> None:
    harness = _harness(tmp_path, None)
    try:
        with pytest.raises(ResourceLimitExceeded) as caught:
            _gpu_job(harness, "nogpu")
        assert "'ml.g5.xlarge for training job usage' is 0 Instances" in str(caught.value)
        assert harness.service.store.get("training-job", "nogpu") is None, "a refused create records nothing"
        harness.create("cpu-job")  # CPU types never ask for GPUs
        assert harness.final("cpu-job")["TrainingJobStatus"] == "Completed"
    finally:
        harness.service.stop()


def test_hosts_get_their_own_devices(tmp_path: Path) -> None:
    harness = _harness(tmp_path, ["0", "1"])
    try:
        _gpu_job(harness, "two", count=2)
        assert harness.final("two")["TrainingJobStatus"] == "Completed"
        assert sorted((s.hostname, tuple(s.gpu_device_ids or ())) for s in harness.backend.started) == [
            ("algo-1", ("0",)), ("algo-2", ("1",))]
    finally:
        harness.service.stop()


def test_cpu_fallback_runs_the_job_without_gpus(tmp_path: Path) -> None:
    harness = _harness(tmp_path, None, gpu_fallback="cpu")
    try:
        _gpu_job(harness, "fallback")
        assert harness.final("fallback")["TrainingJobStatus"] == "Completed"
        assert [s.gpu_device_ids for s in harness.backend.started] == [None]
    finally:
        harness.service.stop()


def test_gpus_gone_by_the_time_the_job_starts_fail_it_as_a_capacity_error(tmp_path: Path) -> None:
    harness = _harness(tmp_path, (["0"], None))  # there at create, gone when the job starts
    try:
        _gpu_job(harness, "gone")
        job = harness.final("gone")
        assert job["TrainingJobStatus"] == "Failed"
        assert job["FailureReason"].startswith("CapacityError: Unable to provision requested ML compute capacity.")
        assert "no NVIDIA container runtime" in job["FailureReason"]
        assert harness.backend.started == []
    finally:
        harness.service.stop()


def test_engine_refusing_the_device_request_fails_the_job_as_a_capacity_error(tmp_path: Path) -> None:
    harness = _harness(tmp_path, ["0"])

    def refuse(spec: ContainerSpec) -> str:
        raise GpuRequestFailed("The Docker engine could not give the container GPUs 0: could not select device driver")

    harness.backend.start = refuse  # type: ignore[method-assign]
    try:
        _gpu_job(harness, "refused")
        job = harness.final("refused")
        assert job["TrainingJobStatus"] == "Failed"
        assert job["FailureReason"].startswith("CapacityError: Unable to provision")
        assert "could not select device driver" in job["FailureReason"]
    finally:
        harness.service.stop()


# -- endpoints: the fleet's plan -----------------------------------------------------------------

def _fleet(tmp_path: Path, devices: Any, **settings: Any) -> Any:
    from emulator.config import Settings
    from emulator.hosting.fleet import Fleet
    from tests.unit.test_hosting_fakes import FakeBackend

    backend = FakeBackend()
    backend.gpus = devices
    return Fleet(backend, tmp_path, gpu_policy=GpuPolicy.from_settings(Settings(home=tmp_path, **settings)))


def _config(instance_type: str, count: int) -> dict[str, Any]:
    return {"ProductionVariants": [{"VariantName": "v", "ModelName": "m", "InstanceType": instance_type,
                                    "InitialInstanceCount": count}]}


def test_endpoint_instances_get_their_own_devices(tmp_path: Path) -> None:
    from emulator.hosting.plan import VariantPlan

    fleet = _fleet(tmp_path, FOUR)
    variant = VariantPlan(name="v", model_name="m", weight=1.0, instance_count=2, instance_type="ml.g5.2xlarge",
                          mode="SingleModel", containers=())
    assert fleet.gpu_plan(variant, 2, "ep") == [["0"], ["1"]]
    assert fleet.check_gpus(_config("ml.g5.2xlarge", 4), "ep") is None
    refusal = fleet.check_gpus(_config("ml.g5.2xlarge", 5), "ep")
    assert refusal is not None and "'ml.g5.2xlarge for endpoint usage' is 4 Instances" in refusal
    assert "request delta of 5 Instances" in refusal
    assert fleet.check_gpus(_config("ml.m5.large", 9), "ep") is None


def test_endpoint_without_gpu_runtime_is_refused_unless_cpu_fallback(tmp_path: Path) -> None:
    assert "is 0 Instances" in (_fleet(tmp_path, None).check_gpus(_config("ml.g5.xlarge", 1), "ep") or "")
    assert _fleet(tmp_path, None, gpu_fallback="cpu").check_gpus(_config("ml.g5.xlarge", 1), "ep") is None
