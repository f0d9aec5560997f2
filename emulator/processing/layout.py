"""What each host of a processing job sees (research/training-contract.md §5).

* ``/opt/ml/config/processingjobconfig.json``: the job as DescribeProcessingJob shows it
  (unset optional members as ``null``, as in SageMaker's documentation), and
  ``resourceconfig.json``: ``current_host``, ``hosts`` and the instance type;
* every input's LocalPath (File mode: the downloaded objects, read-only) and every output's
  LocalPath (a folder private to the container, read back and uploaded by the platform);
* Pipe mode: FIFOs ``<LocalPath>_0``, ``<LocalPath>_1``, ... one per pass over the data,
  as training's ``/opt/ml/input/data/<channel>_<n>`` (where SageMaker puts the FIFOs of a
  processing job is not documented; this is the emulator's choice);
* ``/opt/ml/output``: ``message`` becomes ExitMessage, ``failure`` FailureReason;
* the image's own ENTRYPOINT unless ContainerEntrypoint replaces it, ContainerArguments as
  its arguments (never a ``train``/``process`` argument of the platform's);
* exactly the request's ``Environment``, plus the region and the role's credentials endpoint
  (nothing when network isolation is on); hosts ``algo-1..N`` on a job network.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from emulator.instances import instance_resources
from emulator.jobs.hosts import Host
from emulator.runtime.spec import ContainerSpec, StagedFolder

KIND = "processing-job"
CONFIG_DIR = "/opt/ml/config"
OUTPUT_DIR = "/opt/ml/output"


def labels(job_name: str, home_id: str) -> dict[str, str]:
    """Labels on everything a processing job makes."""
    return {"smemu.kind": KIND, "smemu.name": job_name, "smemu.home": home_id}


def network_name(job_name: str) -> str:
    """The per-job network of a multi-host job."""
    return f"smemu-proc-{job_name}"


def job_config(record: dict[str, Any]) -> dict[str, Any]:
    """``processingjobconfig.json``: the Describe record with SageMaker's nulls for unset members."""
    app = record["AppSpecification"]
    cluster = record["ProcessingResources"]["ClusterConfig"]
    output = record.get("ProcessingOutputConfig")
    return {
        "ProcessingJobArn": record["ProcessingJobArn"],
        "ProcessingJobName": record["ProcessingJobName"],
        "AppSpecification": {"ImageUri": app["ImageUri"], "ContainerEntrypoint": app.get("ContainerEntrypoint"),
                             "ContainerArguments": app.get("ContainerArguments")},
        "Environment": record.get("Environment") or {},
        "NetworkConfig": record.get("NetworkConfig"),
        "ProcessingInputs": record.get("ProcessingInputs") or [],
        "ProcessingOutputConfig": None if output is None else {"Outputs": output.get("Outputs") or [],
                                                               "KmsKeyId": output.get("KmsKeyId")},
        "ProcessingResources": {"ClusterConfig": {**cluster, "VolumeKmsKeyId": cluster.get("VolumeKmsKeyId")}},
        "RoleArn": record["RoleArn"],
        "StoppingCondition": record.get("StoppingCondition"),
    }


def write_config_files(config_dir: Path, record: dict[str, Any], host: Host, hosts: list[Host]) -> None:
    """The two files of /opt/ml/config for one host."""
    config_dir.mkdir(parents=True, exist_ok=True)
    resource = {"current_host": host.name, "current_instance_type": host.instance_type,
                "hosts": sorted(h.name for h in hosts), "network_interface_name": "eth0"}
    for name, content in (("processingjobconfig.json", job_config(record)), ("resourceconfig.json", resource)):
        (config_dir / name).write_text(json.dumps(content, indent=2) + "\n")


def prepare_mount_points(folders: list[StagedFolder]) -> None:
    """Create, inside each read-only folder, the mount points of folders nested below it.

    The engine cannot create a mount point inside a read-only mount, so the folder on this
    machine gets it beforehand (training does the same for /opt/ml/input/data/<channel>).
    """
    for outer in folders:
        if outer.source is None or outer.private:
            continue
        for inner in folders:
            if inner is outer:
                continue
            relative = PurePosixPath(inner.target).relative_to(outer.target) \
                if PurePosixPath(inner.target).is_relative_to(outer.target) else None
            if relative is not None and str(relative) != ".":
                (outer.source / relative).mkdir(parents=True, exist_ok=True)


def host_spec(record: dict[str, Any], image: str, host: Host, hosts: list[Host], folders: list[StagedFolder], *,
              region: str, home_id: str, resource_limits: bool, platform_env: dict[str, str]) -> ContainerSpec:
    """The container of one host of the job."""
    app = record["AppSpecification"]
    network = record.get("NetworkConfig") or {}
    isolated = bool(network.get("EnableNetworkIsolation"))
    environment = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, **({} if isolated else platform_env)}
    environment.update({str(k): str(v) for k, v in (record.get("Environment") or {}).items()})
    vcpus, memory, _gpus = instance_resources(host.instance_type)
    name = record["ProcessingJobName"]
    return ContainerSpec(
        name=f"smemu-proc-{name}-{host.name}",
        image=image,
        entrypoint=list(app["ContainerEntrypoint"]) if app.get("ContainerEntrypoint") else None,
        command=list(app["ContainerArguments"]) if app.get("ContainerArguments") else None,
        environment=environment,
        hostname=host.name,
        network=network_name(name) if len(hosts) > 1 else None,
        network_isolated=isolated and len(hosts) == 1,
        folders=folders,
        memory_bytes=memory if resource_limits else None,
        cpus=float(vcpus) if resource_limits else None,
        labels={**labels(name, home_id), "smemu.host": host.name},
    )
