"""The catalogue of SageMaker ML instance types: vCPUs, memory, accelerators (a data module).

What it is used for:

* container limits: each container gets its instance type's memory as a hard limit (no swap),
  so a job that would be OOM-killed on the real instance is OOM-killed here, and its vCPUs as
  a CPU quota (clamped by the runtime to this machine's cores). ``SMEMU_RESOURCE_LIMITS=0``
  turns both off (docs/instances.md);
* GPUs: an NVIDIA GPU type asks the runtime for that many devices per instance
  (``emulator.gpus`` splits this machine's devices between hosts and instances); Inferentia,
  Trainium and Gaudi types are recognised and refused with a clear reason (docs/gpu.md);
* ``resourceconfig.json`` and the FailureReason of an OOM kill name the type and its memory;
* the SageMaker SDK's local-mode names ``local`` and ``local_gpu`` map to this machine.

Figures are AWS's published ones for the instance families, per instance (not per
accelerator): vCPUs, memory in GiB, accelerator count, model and kind. Every value of
botocore's ``TrainingInstanceType``, ``ProductionVariantInstanceType``,
``ProcessingInstanceType`` and ``TransformInstanceType`` enums (and the other instance-type
enums of the SageMaker model) is in the table; tests/unit/test_instances.py checks that
against the pinned botocore. A type that a later botocore adds and this table lacks is still
answered, derived from its family and size (``InstanceType.derived`` is then True), so an
upgrade never breaks a job.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

log = logging.getLogger(__name__)

GIB = 1024**3

NVIDIA = "nvidia-gpu"
"""Accelerator kind of NVIDIA GPU types: passed to containers through the NVIDIA runtime."""
INFERENTIA = "aws-inferentia"
TRAINIUM = "aws-trainium"
GAUDI = "habana-gaudi"

LOCAL = "local"
LOCAL_GPU = "local_gpu"
ALL_GPUS = -1
"""``accelerators`` of ``local_gpu``: every GPU this machine offers, as SDK local mode gives."""


class InstanceResources(NamedTuple):
    """Resources of one instance of a type, as the container limits use them."""

    vcpus: int
    memory_bytes: int
    gpus: int
    """NVIDIA GPUs per instance (0 for CPU types and for non-NVIDIA accelerators)."""


@dataclass(frozen=True)
class InstanceType:
    """One ML instance type."""

    name: str
    vcpus: int
    memory_gib: float
    accelerators: int = 0
    """Accelerator devices per instance (GPUs, Inferentia/Trainium chips, Gaudi cards)."""
    accelerator_model: str | None = None
    """E.g. ``NVIDIA A10G``, ``AWS Inferentia2``."""
    accelerator_kind: str | None = None
    """:data:`NVIDIA`, :data:`INFERENTIA`, :data:`TRAINIUM`, :data:`GAUDI`, or None."""
    arch: str = "x86_64"
    """``arm64`` for Graviton (and Grace) types."""
    derived: bool = False
    """True when the figures were derived from the name (a type this table does not list)."""

    @property
    def family(self) -> str:
        """``g5`` of ``ml.g5.xlarge``."""
        parts = self.name.split(".")
        return parts[1] if len(parts) == 3 else self.name

    @property
    def memory_bytes(self) -> int:
        """The memory limit a container of this type gets."""
        return int(self.memory_gib * GIB)

    @property
    def gpus(self) -> int:
        """NVIDIA GPUs per instance; :data:`ALL_GPUS` for ``local_gpu``."""
        return self.accelerators if self.accelerator_kind == NVIDIA else 0

    @property
    def is_local(self) -> bool:
        """``local`` or ``local_gpu`` (SDK local mode): this machine's own resources."""
        return self.name in (LOCAL, LOCAL_GPU)

    @property
    def resources(self) -> InstanceResources:
        """``(vcpus, memory_bytes, gpus)``."""
        return InstanceResources(self.vcpus, self.memory_bytes, self.gpus)


# -- the table ------------------------------------------------------------------------------------

_ARM = "arm64"
_X86 = "x86_64"

Sizes = dict[str, tuple[int, float, int]]
"""Size name -> (vCPUs, memory GiB, accelerators per instance)."""


@dataclass(frozen=True)
class _Family:
    sizes: Sizes
    kind: str | None = None
    model: str | None = None
    arch: str = _X86


def _vcpus_of(size: str) -> int:
    """vCPUs of a size name by AWS's rule: large 2, xlarge 4, Nxlarge 4N."""
    if size == "large":
        return 2
    match = re.fullmatch(r"(\d*)xlarge", size)
    if match is None:
        raise ValueError(size)
    return 4 * int(match.group(1) or "1")


def _ratio(gib_per_vcpu: float, sizes: str, arch: str = _X86,
           explicit: dict[str, tuple[int, float]] | None = None) -> _Family:
    """A CPU family with ``gib_per_vcpu`` of memory per vCPU, sized by name (:func:`_vcpus_of`).

    ``explicit``: sizes that break the rule (``medium``, ``c4.8xlarge``), as ``(vCPUs, GiB)``.
    """
    table: Sizes = {}
    for size in sizes.split():
        if explicit and size in explicit:
            vcpus, memory = explicit[size]
        else:
            vcpus = _vcpus_of(size)
            memory = vcpus * gib_per_vcpu
        table[size] = (vcpus, memory, 0)
    return _Family(table, arch=arch)


def _accelerated(kind: str, model: str, sizes: Sizes, arch: str = _X86) -> _Family:
    """A family with accelerators."""
    return _Family(dict(sizes), kind, model, arch)


_GRAVITON = "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge"
_ICE_LAKE = "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge"
_SAPPHIRE = "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge"
_M5 = "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge"
_G5_G6: Sizes = {  # 1 GPU per instance, except 12xlarge and 24xlarge (4) and 48xlarge (8)
    "xlarge": (4, 16, 1), "2xlarge": (8, 32, 1), "4xlarge": (16, 64, 1), "8xlarge": (32, 128, 1),
    "12xlarge": (48, 192, 4), "16xlarge": (64, 256, 1), "24xlarge": (96, 384, 4), "48xlarge": (192, 768, 8),
}

_FAMILIES: dict[str, _Family] = {
    # Burstable.
    "t2": _ratio(4, "medium large xlarge 2xlarge", explicit={"medium": (2, 4)}),
    "t3": _ratio(4, "micro small medium large xlarge 2xlarge",
                 explicit={"micro": (2, 1), "small": (2, 2), "medium": (2, 4)}),
    # General purpose: 4 GiB per vCPU.
    "m4": _ratio(4, "xlarge 2xlarge 4xlarge 10xlarge 16xlarge"),
    "m5": _ratio(4, _M5),
    "m5d": _ratio(4, _M5),
    "m6g": _ratio(4, _GRAVITON, _ARM),
    "m6gd": _ratio(4, _GRAVITON, _ARM),
    "m6i": _ratio(4, _ICE_LAKE),
    "m6id": _ratio(4, _ICE_LAKE),
    "m7i": _ratio(4, _SAPPHIRE),
    "m8g": _ratio(4, "medium " + _SAPPHIRE, _ARM, explicit={"medium": (1, 4)}),
    # Compute optimised: 2 GiB per vCPU (c4: 1.875; c5n: 2.625, its two largest sizes excepted).
    "c4": _ratio(1.875, "large xlarge 2xlarge 4xlarge 8xlarge", explicit={"8xlarge": (36, 60)}),
    "c5": _ratio(2, "large xlarge 2xlarge 4xlarge 9xlarge 12xlarge 18xlarge 24xlarge"),
    "c5d": _ratio(2, "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge"),
    "c5n": _ratio(2.625, "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
                  explicit={"9xlarge": (36, 96), "18xlarge": (72, 192)}),
    "c6g": _ratio(2, _GRAVITON, _ARM),
    "c6gd": _ratio(2, _GRAVITON, _ARM),
    "c6gn": _ratio(2, _GRAVITON, _ARM),
    "c6i": _ratio(2, _ICE_LAKE),
    "c6id": _ratio(2, _ICE_LAKE),
    "c6in": _ratio(2, _ICE_LAKE),
    "c7g": _ratio(2, _GRAVITON, _ARM),
    "c7i": _ratio(2, _SAPPHIRE),
    "c8g": _ratio(2, "medium " + _SAPPHIRE, _ARM, explicit={"medium": (1, 2)}),
    # Memory optimised: 8 GiB per vCPU.
    "r5": _ratio(8, _M5),
    "r5d": _ratio(8, _M5),
    "r6g": _ratio(8, _GRAVITON, _ARM),
    "r6gd": _ratio(8, _GRAVITON, _ARM),
    "r6i": _ratio(8, _ICE_LAKE),
    "r6id": _ratio(8, _ICE_LAKE),
    "r7gd": _ratio(8, "medium " + _GRAVITON, _ARM, explicit={"medium": (1, 8)}),
    "r7i": _ratio(8, _SAPPHIRE),
    "r8g": _ratio(8, "medium " + _SAPPHIRE, _ARM, explicit={"medium": (1, 8)}),
    # Storage optimised (HyperPod clusters).
    "i3en": _ratio(8, "large xlarge 2xlarge 3xlarge 6xlarge 12xlarge 24xlarge"),
    # NVIDIA GPUs.
    "p2": _accelerated(NVIDIA, "NVIDIA K80", {"xlarge": (4, 61, 1), "8xlarge": (32, 488, 8),
                                              "16xlarge": (64, 732, 16)}),
    "p3": _accelerated(NVIDIA, "NVIDIA V100", {"2xlarge": (8, 61, 1), "8xlarge": (32, 244, 4),
                                               "16xlarge": (64, 488, 8)}),
    "p3dn": _accelerated(NVIDIA, "NVIDIA V100 32GB", {"24xlarge": (96, 768, 8)}),
    "p4d": _accelerated(NVIDIA, "NVIDIA A100 40GB", {"24xlarge": (96, 1152, 8)}),
    "p4de": _accelerated(NVIDIA, "NVIDIA A100 80GB", {"24xlarge": (96, 1152, 8)}),
    "p5": _accelerated(NVIDIA, "NVIDIA H100", {"4xlarge": (16, 256, 1), "48xlarge": (192, 2048, 8)}),
    "p5e": _accelerated(NVIDIA, "NVIDIA H200", {"48xlarge": (192, 2048, 8)}),
    "p5en": _accelerated(NVIDIA, "NVIDIA H200", {"48xlarge": (192, 2048, 8)}),
    "p6-b200": _accelerated(NVIDIA, "NVIDIA B200", {"48xlarge": (192, 2048, 8)}),
    "p6-b300": _accelerated(NVIDIA, "NVIDIA B300", {"48xlarge": (192, 4096, 8)}),
    "p6e-gb200": _accelerated(NVIDIA, "NVIDIA GB200", {"36xlarge": (144, 960, 4)}, _ARM),
    "g4dn": _accelerated(NVIDIA, "NVIDIA T4", {
        "xlarge": (4, 16, 1), "2xlarge": (8, 32, 1), "4xlarge": (16, 64, 1), "8xlarge": (32, 128, 1),
        "12xlarge": (48, 192, 4), "16xlarge": (64, 256, 1)}),
    "g5": _accelerated(NVIDIA, "NVIDIA A10G", _G5_G6),
    "g6": _accelerated(NVIDIA, "NVIDIA L4", _G5_G6),
    "g6e": _accelerated(NVIDIA, "NVIDIA L40S", {
        "xlarge": (4, 32, 1), "2xlarge": (8, 64, 1), "4xlarge": (16, 128, 1), "8xlarge": (32, 256, 1),
        "12xlarge": (48, 384, 4), "16xlarge": (64, 512, 1), "24xlarge": (96, 768, 4), "48xlarge": (192, 1536, 8)}),
    "g7e": _accelerated(NVIDIA, "NVIDIA RTX PRO 6000 Blackwell Server Edition", {
        "2xlarge": (8, 64, 1), "4xlarge": (16, 128, 1), "8xlarge": (32, 256, 1), "12xlarge": (48, 512, 2),
        "24xlarge": (96, 1024, 4), "48xlarge": (192, 2048, 8)}),
    "gr6": _accelerated(NVIDIA, "NVIDIA L4", {"4xlarge": (16, 128, 1), "8xlarge": (32, 256, 1)}),
    # AWS and Habana accelerators: recognised, not emulated (docs/gpu.md).
    "inf1": _accelerated(INFERENTIA, "AWS Inferentia", {
        "xlarge": (4, 8, 1), "2xlarge": (8, 16, 1), "6xlarge": (24, 48, 4), "24xlarge": (96, 192, 16)}),
    "inf2": _accelerated(INFERENTIA, "AWS Inferentia2", {
        "xlarge": (4, 16, 1), "8xlarge": (32, 128, 1), "24xlarge": (96, 384, 6), "48xlarge": (192, 768, 12)}),
    "trn1": _accelerated(TRAINIUM, "AWS Trainium", {"2xlarge": (8, 32, 1), "32xlarge": (128, 512, 16)}),
    "trn1n": _accelerated(TRAINIUM, "AWS Trainium", {"32xlarge": (128, 512, 16)}),
    "trn2": _accelerated(TRAINIUM, "AWS Trainium2", {"3xlarge": (12, 128, 1), "48xlarge": (192, 2048, 16)}),
    "dl1": _accelerated(GAUDI, "Habana Gaudi", {"24xlarge": (96, 768, 8)}),
}


def _build_catalogue() -> dict[str, InstanceType]:
    catalogue: dict[str, InstanceType] = {}
    for family, entry in _FAMILIES.items():
        for size, (vcpus, memory, accelerators) in entry.sizes.items():
            name = f"ml.{family}.{size}"
            catalogue[name] = InstanceType(
                name=name, vcpus=vcpus, memory_gib=float(memory), accelerators=accelerators,
                accelerator_model=entry.model, accelerator_kind=entry.kind, arch=entry.arch,
            )
    return catalogue


CATALOGUE: dict[str, InstanceType] = _build_catalogue()
"""Every ML instance type by name."""


# -- lookups ---------------------------------------------------------------------------------------

_NAME = re.compile(r"^ml\.(?P<family>[a-z][a-z0-9-]*?)\.(?P<size>medium|small|micro|large|\d*xlarge)$")


def instance_type(name: str) -> InstanceType:
    """The catalogue entry of ``name``; ``local``/``local_gpu`` describe this machine.

    Raises ValueError for a name that is not an ML instance type at all (the request
    validation, botocore's enum, has normally refused it already).
    """
    known = CATALOGUE.get(name)
    if known is not None:
        return known
    if name in (LOCAL, LOCAL_GPU):
        return local_instance(name)
    return _derive(name)


def instance_resources(name: str) -> InstanceResources:
    """``(vcpus, memory_bytes, gpus)`` of one instance of ``name`` (see :func:`instance_type`)."""
    return instance_type(name).resources


def local_instance(name: str = LOCAL) -> InstanceType:
    """SDK local mode's ``local`` (this machine, no GPU) or ``local_gpu`` (every GPU here)."""
    if name not in (LOCAL, LOCAL_GPU):
        raise ValueError(f"not a local-mode instance type: {name!r}")
    vcpus, memory = _host_resources()
    gpu = name == LOCAL_GPU
    return InstanceType(
        name=name, vcpus=vcpus, memory_gib=memory / GIB, accelerators=ALL_GPUS if gpu else 0,
        accelerator_model="this machine's GPUs" if gpu else None, accelerator_kind=NVIDIA if gpu else None,
        arch=_host_arch(),
    )


@lru_cache(maxsize=1)
def _host_resources() -> tuple[int, int]:
    vcpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 4 * GIB
    return vcpus, int(memory)


def _host_arch() -> str:
    machine = os.uname().machine
    return _ARM if machine in ("aarch64", "arm64") else machine


@lru_cache(maxsize=64)
def _derive(name: str) -> InstanceType:
    """Figures for a type the table lacks, from its family's siblings or its family letter."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not a SageMaker instance type: {name!r}")
    family, size = match.group("family"), match.group("size")
    if size in ("micro", "small", "medium"):
        vcpus = {"micro": 2, "small": 2, "medium": 1}[size]
    else:
        vcpus = _vcpus_of(size)
    sibling = _FAMILIES.get(family) or _FAMILIES.get(re.sub(r"[a-z]+$", "", family))
    accelerators, kind, model, arch = 0, None, None, _X86
    per_vcpu: float
    if sibling is not None:
        # The family is known: keep its memory per vCPU and accelerators per vCPU.
        ref_vcpus, ref_memory, ref_acc = max(sibling.sizes.values())
        per_vcpu = ref_memory / ref_vcpus
        if ref_acc:
            accelerators = max(1, round(ref_acc * vcpus / ref_vcpus))
        kind, model, arch = sibling.kind, sibling.model, sibling.arch
    else:
        letter = family[:1]
        per_vcpu = {"c": 2, "r": 8, "x": 16, "i": 8}.get(letter, 4)
        if letter in ("g", "p"):
            accelerators, kind, model = (8 if vcpus >= 96 else 4 if vcpus >= 48 else 1), NVIDIA, "NVIDIA GPU"
        elif family.startswith("inf"):
            accelerators, kind, model = 1, INFERENTIA, "AWS Inferentia"
        elif family.startswith("trn"):
            accelerators, kind, model = 1, TRAINIUM, "AWS Trainium"
    log.info("instance type %s is not in the catalogue; using derived figures", name)
    return InstanceType(name=name, vcpus=vcpus, memory_gib=vcpus * per_vcpu, accelerators=accelerators,
                        accelerator_model=model, accelerator_kind=kind, arch=arch, derived=True)


def describe(name: str) -> str:
    """``ml.g5.xlarge (4 vCPUs, 16 GiB, 1 x NVIDIA A10G)`` for messages."""
    spec = instance_type(name)
    text = f"{spec.name} ({spec.vcpus} vCPUs, {spec.memory_gib:g} GiB"
    if spec.accelerators == ALL_GPUS:
        text += ", every GPU of this machine"
    elif spec.accelerators:
        text += f", {spec.accelerators} x {spec.accelerator_model}"
    return text + ")"
