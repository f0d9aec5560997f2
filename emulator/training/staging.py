"""The Downloading phase: every host's /opt/ml/input prepared on this machine.

Per host, ``<work>/hosts/algo-<n>/input`` holds ``config/`` (the three JSON files) and
``data/`` (mount points of File channels and, later, the Pipe FIFOs); it is mounted read-only.
File and FastFile channels are downloaded once per shard: a FullyReplicated channel once for
all hosts (read-only mounts make sharing safe), a ShardedByS3Key channel once per host. A
``file://`` FullyReplicated channel is not copied at all but mounted as it is. Pipe channels
are only listed here; pipe.py streams them while the job runs. FastFile channels are staged
like File channels: the container sees the same read-only folder, it just appears sooner
on AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.jobs.channels import DataObject, download, list_objects, local_folder, shard
from emulator.training.layout import Host, channel_hosts, channel_input_mode, write_config_files

S3Client = Any

WORK_FOLDER = "training"
"""Training jobs stage their files under ``<SMEMU_HOME>/work/training/<job>``."""


def job_work_dir(work_dir: Path, job_name: str) -> Path:
    """A job's scratch folder under the emulator's ``work_dir`` (removed when the job ends)."""
    return work_dir / WORK_FOLDER / job_name


def host_input_dir(work: Path, host_name: str) -> Path:
    """The folder mounted read-only at /opt/ml/input for one host (config/ and data/)."""
    return work / "hosts" / host_name / "input"


def replicated_channel_dir(work: Path, channel_name: str) -> Path:
    """Where a FullyReplicated File channel is downloaded once for every host."""
    return work / "channels" / channel_name / "all"


@dataclass
class StagedInputs:
    """What the Downloading phase prepared for each host."""

    input_dirs: dict[str, Path] = field(default_factory=dict)
    """Host name -> the folder mounted at /opt/ml/input."""
    file_channels: dict[str, dict[str, Path]] = field(default_factory=dict)
    """Host name -> channel name -> folder mounted at /opt/ml/input/data/<channel>."""
    pipe_channels: dict[str, list[tuple[dict[str, Any], list[DataObject]]]] = field(default_factory=dict)
    """Host name -> [(channel, the objects it streams)] for Pipe-mode channels."""


def stage_inputs(
    request: dict[str, Any],
    hosts: list[Host],
    work: Path,
    client_for_thread: Callable[[], S3Client],
    region: str,
) -> StagedInputs:
    """Write config files and stage every channel; raises ChannelError with the FailureReason."""
    staged = StagedInputs()
    for host in hosts:
        input_dir = host_input_dir(work, host.name)
        write_config_files(input_dir / "config", request, host, hosts)
        (input_dir / "data").mkdir(parents=True, exist_ok=True)
        staged.input_dirs[host.name] = input_dir
        staged.file_channels[host.name] = {}
        staged.pipe_channels[host.name] = []
    algorithm = request.get("AlgorithmSpecification") or {}
    for channel in request.get("InputDataConfig") or []:
        _stage_channel(channel, channel_input_mode(channel, algorithm), request, hosts, work,
                       client_for_thread, region, staged)
    return staged


def _stage_channel(
    channel: dict[str, Any],
    mode: str,
    request: dict[str, Any],
    hosts: list[Host],
    work: Path,
    client_for_thread: Callable[[], S3Client],
    region: str,
    staged: StagedInputs,
) -> None:
    name = str(channel["ChannelName"])
    receivers = channel_hosts(channel, hosts)
    source = channel["DataSource"]["S3DataSource"]
    distribution = str(source.get("S3DataDistributionType", "FullyReplicated"))
    objects = list_objects(channel, client_for_thread(), region, str(request.get("RoleArn", "")))
    shards = shard(objects, receivers, distribution)
    if mode == "Pipe":
        for host in receivers:
            staged.pipe_channels[host.name].append((channel, shards[host.name]))
        return
    uri = str(source["S3Uri"])
    replicated = distribution != "ShardedByS3Key" or len(receivers) < 2
    if replicated and uri.startswith("file://") and local_folder(uri).is_dir():
        folders = {host.name: local_folder(uri) for host in receivers}
    elif replicated:
        shared = replicated_channel_dir(work, name)
        download(objects, shared, client_for_thread)
        folders = {host.name: shared for host in receivers}
    else:
        folders = {}
        for host in receivers:
            folder = work / "channels" / name / host.name
            folder.mkdir(parents=True, exist_ok=True)
            download(shards[host.name], folder, client_for_thread)
            folders[host.name] = folder
    for host_name, folder in folders.items():
        (staged.input_dirs[host_name] / "data" / name).mkdir(exist_ok=True)  # the mount point
        staged.file_channels[host_name][name] = folder
