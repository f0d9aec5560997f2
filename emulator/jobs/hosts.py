"""The hosts of a job: ``algo-1`` .. ``algo-N``, as SageMaker names a job's instances."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Host:
    """One instance of a job (training, processing)."""

    name: str
    """``algo-<n>``, as SageMaker names hosts (also the container's hostname)."""
    number: int
    """``n`` in ``algo-<n>``, from 1."""
    instance_type: str
    group: str
    """Instance group name; ``homogeneousCluster`` without InstanceGroups."""


def numbered_hosts(instance_type: str, count: int, group: str = "homogeneousCluster") -> list[Host]:
    """``count`` hosts ``algo-1..count`` of one instance type (processing jobs, simple training jobs)."""
    return [Host(f"algo-{n}", n, instance_type, group) for n in range(1, count + 1)]
