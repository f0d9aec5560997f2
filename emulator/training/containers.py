"""What each host of a training job runs, in the runtime seam's terms (``ContainerSpec``).

* command: ``train`` (SageMaker's default argument); ``ContainerEntrypoint`` replaces the
  image's ENTRYPOINT and ``ContainerArguments`` replace ``train``;
* environment: the request's ``Environment`` plus ``TRAINING_JOB_NAME``, ``TRAINING_JOB_ARN``,
  ``AWS_REGION``, ``AWS_DEFAULT_REGION`` and whatever the platform adds (the role's
  credentials endpoint, the S3 endpoint); never credentials of this machine;
* folders: the host's ``/opt/ml/input`` (config files and Pipe FIFOs) and each File-mode
  channel read-only; ``/opt/ml/model``, ``/opt/ml/output``, ``/opt/ml/output/data`` and the
  checkpoint folder private to the container (see ``StagedFolder.private``);
* network: hostname ``algo-<n>`` on the job's network for multi-host jobs; no network at all
  for a single-host job with EnableNetworkIsolation (a multi-host one gets an internal
  network: peers only);
* limits: the instance type's memory (hard, no swap) and vCPUs; its GPUs, the device ids
  that ``emulator.gpus`` assigned to this host (runner.py; a job whose GPUs are not here
  never gets this far).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.instances import instance_resources
from emulator.runtime.spec import ContainerSpec, StagedFolder
from emulator.training.layout import (
    DATA_DIR,
    INPUT_DIR,
    MODEL_DIR,
    OUTPUT_DATA_DIR,
    OUTPUT_DIR,
    Host,
)

KIND = "training-job"


@dataclass(frozen=True)
class HostFolders:
    """Where one host's staged input lives on this machine."""

    input_dir: Path
    """Mounted read-only at /opt/ml/input: config/ and the data/ folder with Pipe FIFOs."""
    file_channels: dict[str, Path]
    """Channel name -> staged folder, mounted read-only at /opt/ml/input/data/<channel>."""
    checkpoint_seed: Path | None
    """Restored checkpoints to copy into the container's checkpoint folder (None: none)."""


def container_name(job_name: str, host: Host) -> str:
    """``smemu-train-<job>-algo-<n>``."""
    return f"smemu-train-{job_name}-{host.name}"


def network_name(job_name: str) -> str:
    """The per-job network of a multi-host job."""
    return f"smemu-train-{job_name}"


def labels(job_name: str, home_id: str) -> dict[str, str]:
    """Labels on everything a job makes, to find it after a restart and to prune it."""
    return {"smemu.kind": KIND, "smemu.name": job_name, "smemu.home": home_id}


def command_and_entrypoint(algorithm: dict[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """``(command, entrypoint)`` for the container from AlgorithmSpecification."""
    entrypoint = algorithm.get("ContainerEntrypoint") or None
    arguments = algorithm.get("ContainerArguments") or None
    if entrypoint:
        return arguments, list(entrypoint)
    return (list(arguments) if arguments else ["train"]), None


def environment(request: dict[str, Any], arn: str, region: str,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The container's environment: the platform's variables, then the user's on top."""
    env = {
        "TRAINING_JOB_NAME": request["TrainingJobName"],
        "TRAINING_JOB_ARN": arn,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **(extra or {}),
    }
    env.update({str(k): str(v) for k, v in (request.get("Environment") or {}).items()})
    return env


def host_spec(
    request: dict[str, Any],
    image: str,
    host: Host,
    hosts: list[Host],
    folders: HostFolders,
    *,
    arn: str,
    region: str,
    home_id: str,
    checkpoint_path: str | None,
    resource_limits: bool,
    gpu_device_ids: list[str] | None,
    memory_limit_mb: int | None = None,
    extra_environment: dict[str, str] | None = None,
) -> ContainerSpec:
    """The container of one host; ``memory_limit_mb`` (a knob) lowers the instance's memory."""
    command, entrypoint = command_and_entrypoint(request["AlgorithmSpecification"])
    staged = [StagedFolder(folders.input_dir, INPUT_DIR, read_only=True)]
    staged += [
        StagedFolder(path, f"{DATA_DIR}/{name}", read_only=True) for name, path in sorted(folders.file_channels.items())
    ]
    staged += [
        StagedFolder(None, MODEL_DIR, private=True),
        StagedFolder(None, OUTPUT_DIR, private=True),
        StagedFolder(None, OUTPUT_DATA_DIR, private=True),
    ]
    if checkpoint_path:
        staged.append(StagedFolder(folders.checkpoint_seed, checkpoint_path, private=True))
    isolated = bool(request.get("EnableNetworkIsolation"))
    multi_host = len(hosts) > 1
    vcpus, memory, gpus = instance_resources(host.instance_type)
    limit: int | None = memory if resource_limits else None
    if memory_limit_mb:
        limit = min(memory, memory_limit_mb * 1024**2)
    return ContainerSpec(
        name=container_name(request["TrainingJobName"], host),
        image=image,
        command=command,
        entrypoint=entrypoint,
        environment=environment(request, arn, region, extra_environment),
        hostname=host.name,
        network=network_name(request["TrainingJobName"]) if multi_host else None,
        network_isolated=isolated and not multi_host,
        folders=staged,
        memory_bytes=limit,
        cpus=float(vcpus) if resource_limits else None,
        gpu_device_ids=gpu_device_ids if gpus else None,
        labels={**labels(request["TrainingJobName"], home_id), "smemu.host": host.name},
        shm_size_bytes=min(limit // 2, 2 * 1024**3) if limit else None,
    )
