"""What each SageMaker instance type gives a container: vCPUs, memory and GPUs.

Containers get the instance type's memory as a hard limit (so a job that would be OOM-killed
on the real instance is OOM-killed here) and its vCPUs as a CPU quota, clamped by the runtime
to the cores this machine has. The table lists the common types exactly; any other
``ml.<family>.<size>`` botocore accepts is derived from its family's memory per vCPU and its
size, which is how AWS sizes them (``large`` = 2 vCPUs, ``xlarge`` = 4, ``Nxlarge`` = 4N).
"""

from __future__ import annotations

import re
from typing import NamedTuple

GIB = 1024**3


class InstanceResources(NamedTuple):
    """Resources of one instance of a type."""

    vcpus: int
    memory_bytes: int
    gpus: int


def _gib(value: float) -> int:
    return int(value * GIB)


#: Exact figures of the instance types seen most often in examples and tests.
_KNOWN: dict[str, InstanceResources] = {
    "ml.t3.medium": InstanceResources(2, _gib(4), 0),
    "ml.t3.large": InstanceResources(2, _gib(8), 0),
    "ml.t3.xlarge": InstanceResources(4, _gib(16), 0),
    "ml.t3.2xlarge": InstanceResources(8, _gib(32), 0),
    "ml.m4.xlarge": InstanceResources(4, _gib(16), 0),
    "ml.m4.2xlarge": InstanceResources(8, _gib(32), 0),
    "ml.m4.4xlarge": InstanceResources(16, _gib(64), 0),
    "ml.m4.10xlarge": InstanceResources(40, _gib(160), 0),
    "ml.m4.16xlarge": InstanceResources(64, _gib(256), 0),
    "ml.m5.large": InstanceResources(2, _gib(8), 0),
    "ml.m5.xlarge": InstanceResources(4, _gib(16), 0),
    "ml.m5.2xlarge": InstanceResources(8, _gib(32), 0),
    "ml.m5.4xlarge": InstanceResources(16, _gib(64), 0),
    "ml.m5.12xlarge": InstanceResources(48, _gib(192), 0),
    "ml.m5.24xlarge": InstanceResources(96, _gib(384), 0),
    "ml.c4.xlarge": InstanceResources(4, _gib(7.5), 0),
    "ml.c4.2xlarge": InstanceResources(8, _gib(15), 0),
    "ml.c4.4xlarge": InstanceResources(16, _gib(30), 0),
    "ml.c4.8xlarge": InstanceResources(36, _gib(60), 0),
    "ml.c5.xlarge": InstanceResources(4, _gib(8), 0),
    "ml.c5.2xlarge": InstanceResources(8, _gib(16), 0),
    "ml.c5.4xlarge": InstanceResources(16, _gib(32), 0),
    "ml.c5.9xlarge": InstanceResources(36, _gib(72), 0),
    "ml.c5.18xlarge": InstanceResources(72, _gib(144), 0),
    "ml.p2.xlarge": InstanceResources(4, _gib(61), 1),
    "ml.p2.8xlarge": InstanceResources(32, _gib(488), 8),
    "ml.p2.16xlarge": InstanceResources(64, _gib(732), 16),
    "ml.p3.2xlarge": InstanceResources(8, _gib(61), 1),
    "ml.p3.8xlarge": InstanceResources(32, _gib(244), 4),
    "ml.p3.16xlarge": InstanceResources(64, _gib(488), 8),
    "ml.p3dn.24xlarge": InstanceResources(96, _gib(768), 8),
    "ml.p4d.24xlarge": InstanceResources(96, _gib(1152), 8),
    "ml.p4de.24xlarge": InstanceResources(96, _gib(1152), 8),
    "ml.p5.48xlarge": InstanceResources(192, _gib(2048), 8),
    "ml.g4dn.xlarge": InstanceResources(4, _gib(16), 1),
    "ml.g4dn.2xlarge": InstanceResources(8, _gib(32), 1),
    "ml.g4dn.4xlarge": InstanceResources(16, _gib(64), 1),
    "ml.g4dn.8xlarge": InstanceResources(32, _gib(128), 1),
    "ml.g4dn.12xlarge": InstanceResources(48, _gib(192), 4),
    "ml.g4dn.16xlarge": InstanceResources(64, _gib(256), 1),
    "ml.g5.xlarge": InstanceResources(4, _gib(16), 1),
    "ml.g5.2xlarge": InstanceResources(8, _gib(32), 1),
    "ml.g5.4xlarge": InstanceResources(16, _gib(64), 1),
    "ml.g5.8xlarge": InstanceResources(32, _gib(128), 1),
    "ml.g5.12xlarge": InstanceResources(48, _gib(192), 4),
    "ml.g5.16xlarge": InstanceResources(64, _gib(256), 1),
    "ml.g5.24xlarge": InstanceResources(96, _gib(384), 4),
    "ml.g5.48xlarge": InstanceResources(192, _gib(768), 8),
}

#: GiB of memory per vCPU by family letter(s), for types not in the table.
_MEMORY_PER_VCPU = {"t": 4, "m": 4, "c": 2, "r": 8, "g": 4, "p": 8, "trn": 16, "inf": 4}
#: GPUs (or accelerators) of families not in the table: at least one per instance.
_ACCELERATED = ("g", "p", "trn", "inf")
_TYPE = re.compile(r"^ml\.(?P<family>[a-z]+)(?P<gen>\d+)[a-z-]*\d*[a-z]*\.(?P<size>\d*)(?P<unit>x?large|medium|small)$")


def instance_resources(instance_type: str) -> InstanceResources:
    """``(vcpus, memory_bytes, gpus)`` of one instance of ``instance_type``.

    Raises ValueError for a name that is not an ``ml.`` instance type at all; the request
    validation (botocore's enum) has normally refused those already.
    """
    known = _KNOWN.get(instance_type)
    if known is not None:
        return known
    match = _TYPE.match(instance_type)
    if match is None:
        raise ValueError(f"not a SageMaker instance type: {instance_type!r}")
    unit, size = match.group("unit"), match.group("size")
    if unit in ("small", "medium"):
        vcpus = 1 if unit == "small" else 2
    elif unit == "large":
        vcpus = 2
    else:
        vcpus = 4 * int(size or "1")
    family = match.group("family")
    per_vcpu = _MEMORY_PER_VCPU.get(family, _MEMORY_PER_VCPU.get(family[:1], 4))
    gpus = 0
    if family in _ACCELERATED or family[:1] in ("g", "p"):
        gpus = 8 if vcpus >= 96 else 4 if vcpus >= 48 else 1
    return InstanceResources(vcpus, vcpus * per_vcpu * GIB, gpus)
