"""The /opt/ml contract of a training container: hosts, paths and the config files.

Pure functions from the CreateTrainingJob request to what each host sees
(research/training-contract.md §1-3): ``algo-1..N`` host names numbered across instance
groups, ``hyperparameters.json`` (string values), ``resourceconfig.json`` (one per host),
``inputdataconfig.json`` (the four documented keys per channel).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulator.jobs.hosts import Host

OPT_ML = "/opt/ml"
INPUT_DIR = f"{OPT_ML}/input"
CONFIG_DIR = f"{INPUT_DIR}/config"
DATA_DIR = f"{INPUT_DIR}/data"
MODEL_DIR = f"{OPT_ML}/model"
OUTPUT_DIR = f"{OPT_ML}/output"
OUTPUT_DATA_DIR = f"{OUTPUT_DIR}/data"
DEFAULT_CHECKPOINT_DIR = f"{OPT_ML}/checkpoints"
FAILURE_FILE = "failure"

HOMOGENEOUS_GROUP = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"


def plan_hosts(resource_config: dict[str, Any]) -> list[Host]:
    """The job's hosts: ``InstanceCount`` of ``InstanceType``, or each InstanceGroup in order."""
    groups = resource_config.get("InstanceGroups")
    if groups:
        layout = [(g["InstanceGroupName"], g["InstanceType"], int(g["InstanceCount"])) for g in groups]
    else:
        layout = [(HOMOGENEOUS_GROUP, resource_config["InstanceType"], int(resource_config.get("InstanceCount", 1)))]
    hosts: list[Host] = []
    for group, instance_type, count in layout:
        for _ in range(count):
            number = len(hosts) + 1
            hosts.append(Host(f"algo-{number}", number, instance_type, group))
    return hosts


def instance_count(resource_config: dict[str, Any]) -> int:
    """How many hosts the job has (the SDK's log tailer computes the same sum)."""
    groups = resource_config.get("InstanceGroups")
    if groups:
        return sum(int(g["InstanceCount"]) for g in groups)
    return int(resource_config.get("InstanceCount", 1))


def resource_config_json(host: Host, hosts: list[Host]) -> dict[str, Any]:
    """``resourceconfig.json`` of one host; ``hosts`` sorted as text, as SageMaker sorts them."""
    groups: dict[str, dict[str, Any]] = {}
    for other in hosts:
        entry = groups.setdefault(
            other.group,
            {"instance_group_name": other.group, "instance_type": other.instance_type, "hosts": []},
        )
        entry["hosts"].append(other.name)
    return {
        "current_host": host.name,
        "current_instance_type": host.instance_type,
        "current_group_name": host.group,
        "hosts": sorted(h.name for h in hosts),
        "instance_groups": list(groups.values()),
        "network_interface_name": NETWORK_INTERFACE,
    }


def channel_input_mode(channel: dict[str, Any], algorithm: dict[str, Any]) -> str:
    """The channel's InputMode, defaulting to the job's TrainingInputMode."""
    return str(channel.get("InputMode") or algorithm.get("TrainingInputMode") or "File")


def channel_hosts(channel: dict[str, Any], hosts: list[Host]) -> list[Host]:
    """The hosts that receive a channel (``S3DataSource.InstanceGroupNames`` restricts it)."""
    names = (channel.get("DataSource", {}).get("S3DataSource") or {}).get("InstanceGroupNames")
    if not names:
        return list(hosts)
    return [h for h in hosts if h.group in names]


def input_data_config_json(
    channels: list[dict[str, Any]], algorithm: dict[str, Any], host: Host, hosts: list[Host]
) -> dict[str, Any]:
    """``inputdataconfig.json`` for one host: the channels it receives, four keys each.

    FastFile channels read as ``File``: to the container they are ordinary folders.
    """
    config: dict[str, Any] = {}
    for channel in channels:
        if host not in channel_hosts(channel, hosts):
            continue
        source = channel.get("DataSource", {}).get("S3DataSource") or {}
        mode = channel_input_mode(channel, algorithm)
        entry: dict[str, Any] = {}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        entry["TrainingInputMode"] = "File" if mode == "FastFile" else mode
        entry["S3DistributionType"] = source.get("S3DataDistributionType", "FullyReplicated")
        entry["RecordWrapperType"] = channel.get("RecordWrapperType", "None")
        config[channel["ChannelName"]] = entry
    return config


def write_config_files(config_dir: Path, request: dict[str, Any], host: Host, hosts: list[Host]) -> None:
    """Write the three config files a training container reads at start."""
    config_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "hyperparameters.json": {str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()},
        "resourceconfig.json": resource_config_json(host, hosts),
        "inputdataconfig.json": input_data_config_json(
            request.get("InputDataConfig") or [], request.get("AlgorithmSpecification") or {}, host, hosts
        ),
    }
    for name, content in files.items():
        (config_dir / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")


def checkpoint_dir(request: dict[str, Any]) -> str | None:
    """The container path synced with CheckpointConfig.S3Uri, or None without CheckpointConfig."""
    config = request.get("CheckpointConfig")
    if not config:
        return None
    return str(config.get("LocalPath") or DEFAULT_CHECKPOINT_DIR).rstrip("/") or DEFAULT_CHECKPOINT_DIR
