"""The instance-type catalogue: every type botocore knows resolves, with AWS's published figures."""

from __future__ import annotations

import botocore.session
import pytest

from emulator import instances
from emulator.instances import (
    ALL_GPUS,
    CATALOGUE,
    GAUDI,
    GIB,
    INFERENTIA,
    NVIDIA,
    TRAINIUM,
    describe,
    instance_resources,
    instance_type,
    local_instance,
)

ENUMS = ("TrainingInstanceType", "ProductionVariantInstanceType", "ProcessingInstanceType", "TransformInstanceType")
NOT_CONTAINER_TYPES = {"system", "ml.geospatial.interactive"}
"""Values of other instance-type enums that are no machine a container runs on (Studio apps)."""


def _model() -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def _enum(name: str) -> list[str]:
    return list(_model().shape_for(name).enum)


@pytest.mark.parametrize("enum", ENUMS)
def test_every_value_of_the_request_enums_is_in_the_catalogue(enum: str) -> None:
    values = _enum(enum)
    assert values, enum
    missing = [v for v in values if v not in CATALOGUE]
    assert missing == [], f"{enum} values without catalogue figures: {missing}"
    for value in values:
        spec = instance_type(value)
        assert not spec.derived and spec.vcpus >= 1 and spec.memory_gib >= 1, spec
        assert spec.accelerators >= 0 and (spec.accelerators == 0) == (spec.accelerator_kind is None), spec


def test_every_instance_type_enum_of_the_model_resolves_and_the_catalogue_invents_none() -> None:
    model = _model()
    values: set[str] = set()
    for name in model.shape_names:
        shape = model.shape_for(name)
        if "InstanceType" in name and shape.type_name == "string" and shape.enum:
            values |= set(shape.enum)
    assert set(ENUMS) <= {n for n in model.shape_names if n.endswith("InstanceType")}
    assert sorted(values - set(CATALOGUE) - NOT_CONTAINER_TYPES) == []
    assert sorted(set(CATALOGUE) - values) == [], "catalogue types that SageMaker does not accept"


@pytest.mark.parametrize(("name", "vcpus", "memory_gib", "accelerators", "model", "kind"), [
    ("ml.t3.medium", 2, 4, 0, None, None),
    ("ml.t3.micro", 2, 1, 0, None, None),
    ("ml.m5.large", 2, 8, 0, None, None),
    ("ml.m5.24xlarge", 96, 384, 0, None, None),
    ("ml.m4.10xlarge", 40, 160, 0, None, None),
    ("ml.c4.large", 2, 3.75, 0, None, None),
    ("ml.c4.8xlarge", 36, 60, 0, None, None),
    ("ml.c5.9xlarge", 36, 72, 0, None, None),
    ("ml.c5n.large", 2, 5.25, 0, None, None),
    ("ml.c5n.9xlarge", 36, 96, 0, None, None),
    ("ml.c8g.medium", 1, 2, 0, None, None),
    ("ml.r5.large", 2, 16, 0, None, None),
    ("ml.r7i.48xlarge", 192, 1536, 0, None, None),
    ("ml.p2.xlarge", 4, 61, 1, "NVIDIA K80", NVIDIA),
    ("ml.p3.2xlarge", 8, 61, 1, "NVIDIA V100", NVIDIA),
    ("ml.p3.16xlarge", 64, 488, 8, "NVIDIA V100", NVIDIA),
    ("ml.p4d.24xlarge", 96, 1152, 8, "NVIDIA A100 40GB", NVIDIA),
    ("ml.p5.48xlarge", 192, 2048, 8, "NVIDIA H100", NVIDIA),
    ("ml.p5en.48xlarge", 192, 2048, 8, "NVIDIA H200", NVIDIA),
    ("ml.g4dn.12xlarge", 48, 192, 4, "NVIDIA T4", NVIDIA),
    ("ml.g5.xlarge", 4, 16, 1, "NVIDIA A10G", NVIDIA),
    ("ml.g5.12xlarge", 48, 192, 4, "NVIDIA A10G", NVIDIA),
    ("ml.g5.48xlarge", 192, 768, 8, "NVIDIA A10G", NVIDIA),
    ("ml.g6.16xlarge", 64, 256, 1, "NVIDIA L4", NVIDIA),
    ("ml.g6e.xlarge", 4, 32, 1, "NVIDIA L40S", NVIDIA),
    ("ml.inf2.24xlarge", 96, 384, 6, "AWS Inferentia2", INFERENTIA),
    ("ml.inf1.6xlarge", 24, 48, 4, "AWS Inferentia", INFERENTIA),
    ("ml.trn1.32xlarge", 128, 512, 16, "AWS Trainium", TRAINIUM),
    ("ml.trn2.48xlarge", 192, 2048, 16, "AWS Trainium2", TRAINIUM),
    ("ml.dl1.24xlarge", 96, 768, 8, "Habana Gaudi", GAUDI),
])
def test_published_figures(name: str, vcpus: int, memory_gib: float, accelerators: int, model: str | None,
                           kind: str | None) -> None:
    spec = instance_type(name)
    assert (spec.vcpus, spec.memory_gib, spec.accelerators, spec.accelerator_model, spec.accelerator_kind) == (
        vcpus, memory_gib, accelerators, model, kind)
    assert spec.memory_bytes == int(memory_gib * GIB)
    assert instance_resources(name) == (vcpus, int(memory_gib * GIB), accelerators if kind == NVIDIA else 0)


def test_only_nvidia_accelerators_count_as_gpus() -> None:
    assert instance_type("ml.inf2.xlarge").gpus == 0 and instance_type("ml.inf2.xlarge").accelerators == 1
    assert instance_type("ml.trn1.2xlarge").gpus == 0
    assert instance_type("ml.g5.2xlarge").gpus == 1


def test_graviton_types_are_arm() -> None:
    assert instance_type("ml.c7g.large").arch == "arm64"
    assert instance_type("ml.m8g.medium").arch == "arm64"
    assert instance_type("ml.p6e-gb200.36xlarge").arch == "arm64"
    assert instance_type("ml.c7i.large").arch == "x86_64"


def test_family_names_with_hyphens() -> None:
    spec = instance_type("ml.p6-b200.48xlarge")
    assert spec.family == "p6-b200" and spec.gpus == 8 and spec.accelerator_model == "NVIDIA B200"


def test_local_mode_types_are_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    instances._host_resources.cache_clear()
    monkeypatch.setattr(instances.os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    monkeypatch.setattr(instances.os, "sysconf", lambda key: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1024}[key])
    try:
        local = instance_type("local")
        assert (local.vcpus, local.memory_bytes, local.gpus, local.is_local) == (3, 4096 * 1024, 0, True)
        gpu = instance_type("local_gpu")
        assert gpu.gpus == ALL_GPUS and gpu.accelerator_kind == NVIDIA and gpu.is_local
        assert "every GPU of this machine" in describe("local_gpu")
    finally:
        instances._host_resources.cache_clear()
    with pytest.raises(ValueError):
        local_instance("ml.m5.large")


def test_a_type_newer_than_the_table_is_derived_from_its_family() -> None:
    newer = instance_type("ml.g5.96xlarge")
    assert newer.derived and newer.vcpus == 384 and newer.memory_gib == 1536 and newer.gpus == 16
    unknown_family = instance_type("ml.g9.2xlarge")
    assert unknown_family.derived and unknown_family.gpus == 1 and unknown_family.accelerator_kind == NVIDIA
    memory = instance_type("ml.r9.large")
    assert memory.derived and (memory.vcpus, memory.memory_gib, memory.gpus) == (2, 16, 0)


@pytest.mark.parametrize("name", ["m5.large", "ml.m5", "ml.m5.huge", "", "ML.M5.LARGE"])
def test_names_that_are_no_instance_type(name: str) -> None:
    with pytest.raises(ValueError):
        instance_type(name)


def test_describe() -> None:
    assert describe("ml.g5.12xlarge") == "ml.g5.12xlarge (48 vCPUs, 192 GiB, 4 x NVIDIA A10G)"
    assert describe("ml.m5.large") == "ml.m5.large (2 vCPUs, 8 GiB)"
