"""Model data: download from S3 and safe extraction into the folder seen as /opt/ml/model.

A model archive comes from users and from training jobs, so it is untrusted input: an
archive member with an absolute path, a ``..`` component, a link that points outside the
model folder, or a device file makes the whole archive refused (the endpoint fails, naming
the member), rather than being silently skipped. Extraction then also runs with tarfile's
``data`` filter as a second line of defence.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from emulator.archives import extract_all
from emulator.hosting.plan import ModelData
from emulator.s3 import S3Location

_CHUNK = 1 << 20


class ModelDataError(Exception):
    """Model data could not be staged; the message is the endpoint's FailureReason."""


class UnsafeArchive(ModelDataError):
    """An archive member would land outside the model folder, or is a device file."""


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why an archive member is unsafe to extract, or None when it is fine."""
    name = member.name
    if name.startswith("/") or posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "has a '..' path component"
    if member.ischr() or member.isblk() or member.isfifo():
        return "is a device or FIFO file"
    if member.issym():
        target = member.linkname
        if posixpath.isabs(target):
            return f"is a symbolic link to an absolute path ({target})"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            return f"is a symbolic link pointing outside the model folder ({target})"
    if member.islnk():
        target = member.linkname
        resolved = posixpath.normpath(target)
        if posixpath.isabs(target) or resolved == ".." or resolved.startswith("../"):
            return f"is a hard link pointing outside the model folder ({target})"
    return None


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a (gzipped) tar archive into ``target``, refusing it whole if any member is unsafe."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                problem = member_problem(member)
                if problem is not None:
                    raise UnsafeArchive(f'archive member "{member.name}" {problem}')
            extract_all(tar, members, target)
    except tarfile.TarError as exc:
        raise ModelDataError(f"the model data is not a valid tar archive ({exc})") from exc


def _download_failed(label: str, uri: str) -> ModelDataError:
    """SageMaker's own FailureReason for model data it cannot read (research §1.5)."""
    return ModelDataError(
        f'Failed to download model data for container "{label}" from URL: "{uri}". Please ensure '
        "that there is an object located at the URL and that the role passed to CreateModel has "
        "permissions to download the object."
    )


class _Deadline:
    def __init__(self, seconds: float, label: str, uri: str) -> None:
        self.end = time.monotonic() + seconds
        self.seconds = seconds
        self.label = label
        self.uri = uri

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise ModelDataError(
                f'Failed to download model data for container "{self.label}" from URL: "{self.uri}" '
                f"within ModelDataDownloadTimeoutInSeconds ({self.seconds:g} s)."
            )


def _fetch_object(s3: Any, location: S3Location, dest: Path, deadline: _Deadline) -> None:
    """Stream one object to a file, checking the download deadline between chunks."""
    response = s3.get_object(Bucket=location.bucket, Key=location.key)
    body = response["Body"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with dest.open("wb") as handle:
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                handle.write(chunk)
                deadline.check()
    finally:
        body.close()


def stage_model_data(s3: Any, data: ModelData, target: Path, label: str, timeout: float) -> None:
    """Put a container's model data into ``target`` (the folder mounted at /opt/ml/model).

    ``label`` names the container in failure messages (``container_1``); ``timeout`` is the
    variant's ModelDataDownloadTimeoutInSeconds. Raises :class:`ModelDataError`.
    """
    deadline = _Deadline(timeout, label, data.uri)
    target.mkdir(parents=True, exist_ok=True)
    try:
        location = S3Location.parse(data.uri)
    except ValueError as exc:
        raise _download_failed(label, data.uri) from exc
    try:
        if data.kind == "prefix":
            _stage_prefix(s3, location, target, deadline)
        elif data.kind == "object":
            name = posixpath.basename(location.key) or "model"
            _fetch_object(s3, location, target / name, deadline)
        else:
            _stage_archive(s3, location, target, deadline)
    except ClientError as exc:
        raise _download_failed(label, data.uri) from exc
    except UnsafeArchive as exc:
        raise UnsafeArchive(
            f'Failed to extract model data for container "{label}" from URL: "{data.uri}": {exc}; '
            "the archive was refused."
        ) from exc
    except ModelDataError as exc:
        if str(exc).startswith("Failed to"):
            raise
        raise ModelDataError(
            f'Failed to extract model data for container "{label}" from URL: "{data.uri}": {exc}.'
        ) from exc


def _stage_archive(s3: Any, location: S3Location, target: Path, deadline: _Deadline) -> None:
    with tempfile.TemporaryDirectory(prefix="smemu-model-") as scratch:
        archive = Path(scratch) / "model.tar.gz"
        _fetch_object(s3, location, archive, deadline)
        safe_extract(archive, target)


def prefix_key_problem(relative: str) -> str | None:
    """Why an object key (relative to the prefix) cannot become a file path, or None."""
    if relative.endswith("/"):
        return "is a 0-byte folder object"
    for part in relative.split("/"):
        if part in ("", ".", "..") or "\x00" in part or len(part.encode()) > 255:
            return f"has an invalid path component {part!r}"
    return None


def _stage_prefix(s3: Any, location: S3Location, target: Path, deadline: _Deadline) -> None:
    """Copy every object under an uncompressed S3 prefix, keeping the key layout."""
    prefix = location.key
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    if not keys:
        raise ModelDataError(f"Could not find model data at {location.uri}.")
    files: set[str] = set()
    folders: set[str] = set()
    for key in keys:
        relative = key[len(prefix) :]
        problem = prefix_key_problem(relative)
        if problem is not None:
            raise ModelDataError(f"the object s3://{location.bucket}/{key} {problem}")
        parts = relative.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        files.add(relative)
    clashes = sorted(files & folders)
    if clashes:
        raise ModelDataError(f"the key {prefix}{clashes[0]} is both a file and a folder")
    for key in keys:
        _fetch_object(s3, S3Location(location.bucket, key), target / key[len(prefix) :], deadline)


def prefix_exists(s3: Any, uri: str) -> bool:
    """Whether an uncompressed model prefix holds any object (CreateModel checks it on AWS)."""
    location = S3Location.parse(uri)
    try:
        found = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    except ClientError:
        return False
    return bool(found.get("KeyCount") or found.get("Contents"))


def remove_tree(path: Path) -> None:
    """Remove a staged model folder; files extracted read-only are made writable first."""
    if not path.exists():
        return

    def _make_writable(func: Any, failed: str, _exc: Any) -> None:
        os.chmod(failed, 0o700)
        func(failed)

    shutil.rmtree(path, onerror=_make_writable)
