"""A processing job's inputs and outputs on this machine, per host.

Inputs go through the shared S3 input machinery (emulator.jobs.channels): ``S3Prefix`` or
``ManifestFile``, ``FullyReplicated`` (downloaded once, mounted read-only on every host) or
``ShardedByS3Key`` (object ``i`` to host ``i mod n``); Pipe mode streams the host's objects
into FIFOs (emulator.jobs.pipe), gunzipped for ``S3CompressionType=Gzip``. AppManaged inputs
are the container's own business and are not staged.

Outputs are folders private to each container. ``EndOfJob`` outputs are read back and
uploaded when the job completes; ``Continuous`` ones also every few seconds while it runs,
new and changed files only, so they appear in S3 before the job ends. Every host uploads
into the same prefix, keeping relative paths (no tar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from emulator.jobs.channels import DataObject, download, list_objects, shard
from emulator.jobs.hosts import Host
from emulator.jobs.pipe import PipeFeeder
from emulator.runtime.spec import StagedFolder
from emulator.training.artifacts import CheckpointSync

S3Client = Any
CONTINUOUS_UPLOAD_SECONDS = 2.0
"""How often Continuous outputs are synced to S3 while the job runs (and once more at its end)."""
WORK_FOLDER = "processing"
"""Processing jobs stage their files under ``<SMEMU_HOME>/work/processing/<job>``."""


def replicated_input_dir(work: Path, number: int) -> Path:
    """Where the ``number``-th input (from 0) is downloaded once for every host (read-only mounts)."""
    return work / "inputs" / str(number) / "all"


@dataclass
class HostInputs:
    """What one host gets: read-only folders and the Pipe inputs to feed."""

    folders: list[StagedFolder] = field(default_factory=list)
    pipes: list[tuple[Path, dict[str, Any], list[DataObject]]] = field(default_factory=list)
    """(FIFO folder on this machine, pseudo-channel, objects) per Pipe input."""


def _as_channel(item: dict[str, Any]) -> dict[str, Any]:
    """A processing input in the shape the shared input machinery reads (a training channel)."""
    source = item["S3Input"]
    return {
        "ChannelName": PurePosixPath(source["LocalPath"]).name,
        "CompressionType": source.get("S3CompressionType", "None"),
        "DataSource": {"S3DataSource": {"S3Uri": source["S3Uri"], "S3DataType": source.get("S3DataType", "S3Prefix"),
                                        "S3DataDistributionType": source.get("S3DataDistributionType",
                                                                             "FullyReplicated")}},
    }


def stage_inputs(record: dict[str, Any], hosts: list[Host], work: Path, client: Callable[[], S3Client],
                 region: str) -> dict[str, HostInputs]:
    """Download File inputs and plan Pipe inputs; raises ChannelError with the FailureReason."""
    staged = {h.name: HostInputs() for h in hosts}
    for number, item in enumerate(record.get("ProcessingInputs") or []):
        if item.get("AppManaged") or not item.get("S3Input"):
            continue
        source = item["S3Input"]
        channel = _as_channel(item)
        objects = list_objects(channel, client(), region, str(record.get("RoleArn", "")))
        shards = shard(objects, hosts, source.get("S3DataDistributionType", "FullyReplicated"))
        local_path = str(source["LocalPath"]).rstrip("/")
        if source.get("S3InputMode", "File") == "Pipe":
            parent = str(PurePosixPath(local_path).parent)
            for host in hosts:  # one FIFO folder per parent folder: inputs may share one
                fifo_dir = work / "pipes" / host.name / (parent.strip("/").replace("/", "_") or "root")
                if not fifo_dir.exists():
                    fifo_dir.mkdir(parents=True)
                    staged[host.name].folders.append(StagedFolder(fifo_dir, parent, read_only=True))
                staged[host.name].pipes.append((fifo_dir, channel, shards[host.name]))
            continue
        if len(hosts) < 2 or source.get("S3DataDistributionType") != "ShardedByS3Key":
            folder = replicated_input_dir(work, number)
            download(objects, folder, client)
            for host in hosts:
                staged[host.name].folders.append(StagedFolder(folder, local_path, read_only=True))
            continue
        for host in hosts:
            folder = work / "inputs" / str(number) / host.name
            download(shards[host.name], folder, client)  # an empty shard is an empty folder, as on AWS
            staged[host.name].folders.append(StagedFolder(folder, local_path, read_only=True))
    return staged


def pipe_feeders(inputs: HostInputs, client: Callable[[], S3Client]) -> list[PipeFeeder]:
    """One feeder per Pipe input of a host (each makes its first FIFO now)."""
    return [PipeFeeder(fifo_dir, channel, objects, client) for fifo_dir, channel, objects in inputs.pipes]


def output_folders(record: dict[str, Any]) -> list[StagedFolder]:
    """Every non-AppManaged output's LocalPath, private to the container."""
    return [StagedFolder(None, str(o["S3Output"]["LocalPath"]).rstrip("/"), private=True)
            for o in (record.get("ProcessingOutputConfig") or {}).get("Outputs") or []
            if o.get("S3Output") and not o.get("AppManaged")]


class OutputUploader:
    """Uploads output folders read back from the containers, only what changed since last time."""

    def __init__(self, record: dict[str, Any], client: Callable[[], S3Client]) -> None:
        self.outputs = [o for o in (record.get("ProcessingOutputConfig") or {}).get("Outputs") or []
                        if o.get("S3Output") and not o.get("AppManaged")]
        self._syncs = {o["OutputName"]: CheckpointSync(o["S3Output"]["S3Uri"], client) for o in self.outputs}

    @property
    def continuous(self) -> bool:
        """Whether any output uploads while the job runs."""
        return any(o["S3Output"].get("S3UploadMode") == "Continuous" for o in self.outputs)

    def upload(self, copy_out: Callable[[str, str, Path], bool], hosts: list[str], scratch: Path,
               only_continuous: bool) -> int:
        """Read each output of each host with ``copy_out(host, path, dest)`` and upload changes."""
        count = 0
        for output in self.outputs:
            if only_continuous and output["S3Output"].get("S3UploadMode") != "Continuous":
                continue
            path = str(output["S3Output"]["LocalPath"]).rstrip("/")
            for host in hosts:
                local = scratch / output["OutputName"] / host
                if copy_out(host, path, local):
                    count += self._syncs[output["OutputName"]].upload_changes(local, scope=host)
        return count
