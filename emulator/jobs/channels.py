"""Input channels: which objects a channel holds, which host gets which, and File-mode staging.

Sources (``S3DataSource.S3DataType``):

* ``S3Prefix``: every object whose key starts with the prefix (a plain key prefix, as on AWS:
  ``s3://b/train`` also matches ``train2/x``), placed at its key minus the prefix.
* ``ManifestFile``: a JSON list ``[{"prefix": "s3://b/p/"}, "rel/a", "rel/b"]``; each entry is
  ``prefix + entry`` and is placed at ``entry``.
* ``AugmentedManifestFile``: JSON Lines, one record per line; Pipe mode only (see pipe.py).
* ``file:///abs/folder`` (emulator extension for fast local loops): the files under a folder
  on this machine. A FullyReplicated File-mode channel mounts the folder itself, read-only,
  without copying anything.

``ShardedByS3Key`` gives object ``i`` of the list (sorted by key for S3Prefix, in file order
for manifests) to the ``i mod n``-th of the ``n`` hosts that receive the channel. AWS only
documents "approximately 1/n of the objects" per host; round-robin over sorted keys is the
emulator's documented, deterministic choice. A host may get nothing when there are fewer
objects than hosts, as on AWS.

Every failure is a :class:`ChannelError` whose text is the job's FailureReason.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from emulator.host_paths import is_inside
from emulator.s3 import S3Location
from emulator.jobs.hosts import Host

S3Client = Any
_DOWNLOAD_WORKERS = 8
_TRANSFER = TransferConfig(max_concurrency=10, multipart_threshold=16 * 1024**2, multipart_chunksize=16 * 1024**2)


class ChannelError(Exception):
    """A channel cannot be read; the message is the job's FailureReason."""


@dataclass(frozen=True)
class DataObject:
    """One item of a channel: an S3 object, a local file, or an augmented-manifest line."""

    relative: str
    """Where it lands under /opt/ml/input/data/<channel>/ (File mode)."""
    s3: S3Location | None = None
    local: Path | None = None
    line: dict[str, Any] | None = None
    """The parsed JSON line of an augmented manifest."""


def local_folder(uri: str) -> Path:
    """The folder named by a ``file://`` URI (``file:///abs/path``; ``file://rel`` is cwd-relative)."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.netloc + parsed.path)).expanduser().resolve()


def list_objects(channel: dict[str, Any], s3: S3Client, region: str, role_arn: str) -> list[DataObject]:
    """Every item of the channel, in the order sharding uses."""
    source = channel["DataSource"]["S3DataSource"]
    uri = str(source["S3Uri"])
    data_type = source.get("S3DataType", "S3Prefix")
    if uri.startswith("file://"):
        return _list_local(uri)
    location = S3Location.parse(uri)
    if data_type == "ManifestFile":
        return _list_manifest(location, s3)
    if data_type == "AugmentedManifestFile":
        return _list_augmented(location, s3)
    return _list_prefix(location, s3, region, role_arn)


def _no_objects(uri: str, region: str, role_arn: str, bucket: str) -> ChannelError:
    """AWS's FailureReason for an empty or unreadable prefix, word for word."""
    return ChannelError(
        f'ClientError: Data download failed:No S3 objects found under S3 URL "{uri}" given in input data '
        f"source. Please ensure that the bucket exists in the selected region ({region}), that objects exist "
        f'under that S3 prefix, and that the role "{role_arn}" has "s3:ListBucket" permissions on bucket '
        f'"{bucket}".'
    )


def _list_prefix(location: S3Location, s3: S3Client, region: str, role_arn: str) -> list[DataObject]:
    found: list[DataObject] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue  # "folder" marker objects hold no data
                relative = key[len(location.key):].lstrip("/") or PurePosixPath(key).name
                found.append(DataObject(relative, s3=S3Location(location.bucket, key)))
    except (ClientError, BotoCoreError) as exc:
        raise _no_objects(location.uri, region, role_arn, location.bucket) from exc
    if not found:
        raise _no_objects(location.uri, region, role_arn, location.bucket)
    return sorted(found, key=lambda o: o.s3.key if o.s3 else o.relative)


def _read_object(location: S3Location, s3: S3Client, what: str) -> bytes:
    try:
        return bytes(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())
    except (ClientError, BotoCoreError) as exc:
        raise ChannelError(f"ClientError: Data download failed: cannot read the {what} {location.uri}: {exc}") from exc


def _list_manifest(location: S3Location, s3: S3Client) -> list[DataObject]:
    try:
        entries = json.loads(_read_object(location, s3, "manifest file"))
        prefix = S3Location.parse(entries[0]["prefix"])
        relatives = [str(e) for e in entries[1:]]
    except (ValueError, LookupError, TypeError) as exc:
        raise ChannelError(
            f"ClientError: The manifest file {location.uri} is not a JSON list starting with "
            f'{{"prefix": "s3://bucket/prefix/"}} followed by object keys relative to that prefix.'
        ) from exc
    if not relatives:
        raise ChannelError(f"ClientError: The manifest file {location.uri} lists no objects.")
    base = prefix.key if not prefix.key or prefix.key.endswith("/") else prefix.key + "/"
    return [DataObject(rel.lstrip("/"), s3=S3Location(prefix.bucket, base + rel.lstrip("/"))) for rel in relatives]


def _list_augmented(location: S3Location, s3: S3Client) -> list[DataObject]:
    lines: list[DataObject] = []
    for number, raw in enumerate(_read_object(location, s3, "augmented manifest file").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise ChannelError(
                f"ClientError: Line {number} of the augmented manifest {location.uri} is not valid JSON."
            ) from exc
        lines.append(DataObject(f"line-{number}", line=record))
    if not lines:
        raise ChannelError(f"ClientError: The augmented manifest file {location.uri} has no records.")
    return lines


def _list_local(uri: str) -> list[DataObject]:
    root = local_folder(uri)
    if root.is_file():
        return [DataObject(root.name, local=root)]
    # A link that leads out of the folder is not the folder's data (emulator/host_paths.py).
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_inside(p, root)) if root.is_dir() else []
    if not files:
        raise ChannelError(f'ClientError: Data download failed: no files found under "{uri}" given in input data source.')
    return [DataObject(p.relative_to(root).as_posix(), local=p) for p in files]


def shard(objects: list[DataObject], hosts: list[Host], distribution: str) -> dict[str, list[DataObject]]:
    """Which objects each host gets: all of them, or round-robin for ShardedByS3Key."""
    if distribution != "ShardedByS3Key" or len(hosts) < 2:
        return {h.name: objects for h in hosts}
    return {h.name: objects[i :: len(hosts)] for i, h in enumerate(hosts)}


def download(objects: list[DataObject], dest: Path, client_for_thread: Callable[[], S3Client]) -> None:
    """Stage objects into ``dest`` keeping their relative paths, several at a time.

    Big objects go through s3transfer's multipart download; local files are hard-linked when
    the file system allows it (no copy at all), else copied.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()

    def fetch(item: DataObject) -> None:
        target = (dest / item.relative).resolve()
        if root not in target.parents:
            raise ChannelError(f"ClientError: Data download failed: object {item.relative!r} escapes its channel.")
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.local is not None:
            _link_or_copy(item.local, target)
            return
        assert item.s3 is not None
        try:
            client_for_thread().download_file(item.s3.bucket, item.s3.key, str(target), Config=_TRANSFER)
        except (ClientError, BotoCoreError) as exc:
            raise ChannelError(f"ClientError: Data download failed: cannot download {item.s3.uri}: {exc}") from exc

    if len(objects) == 1:
        fetch(objects[0])
        return
    with ThreadPoolExecutor(max_workers=_DOWNLOAD_WORKERS, thread_name_prefix="smemu-stage") as pool:
        for future in [pool.submit(fetch, item) for item in objects]:
            future.result()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
