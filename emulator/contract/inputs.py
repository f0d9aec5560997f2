"""What a check feeds the container: options, channels, model artifacts, request payloads.

Local paths are uploaded to the check's bucket in the emulator's S3, so the container gets
them the way SageMaker delivers them (downloaded from S3, untarred into /opt/ml/model, ...);
``s3://`` URIs are used as they are (they must exist in the emulator's S3).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONTENT_TYPE = "application/json"
SAMPLE_PAYLOADS = {
    "application/json": b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}',
    "application/jsonlines": b'{"features": [1.0, 2.0, 3.0, 4.0]}\n',
    "text/csv": b"1.0,2.0,3.0,4.0\n",
    "text/plain": b"hello from smemu check\n",
}
"""Payloads used for a content type given without ``--payload``."""
CORRUPT_BYTES = b"\x00\xff\xfe smemu check: deliberately malformed input \xc3\x28 {[<\n"
"""What the error run puts in every channel file by default, and the malformed request's body."""
MAX_PAYLOAD = 6 * 1024 * 1024
"""InvokeEndpoint's Body limit (6 MiB)."""


class CheckInputError(ValueError):
    """An option that cannot work (a missing file, a malformed KEY=VALUE); the message says which."""


@dataclass(frozen=True)
class CheckOptions:
    """Everything ``smemu check`` takes besides the image and the kind."""

    channels: dict[str, str] = field(default_factory=dict)
    """Channel name -> local file or folder, or s3:// prefix."""
    hyperparameters: dict[str, str] = field(default_factory=dict)
    error_hyperparameters: dict[str, str] = field(default_factory=dict)
    """Added for the error run: values that make the algorithm fail."""
    error_channels: dict[str, str] = field(default_factory=dict)
    """Channels replaced for the error run by data the algorithm must reject. Without these and
    without error_hyperparameters the error run gets every channel's files as malformed bytes."""
    stop_hyperparameters: dict[str, str] = field(default_factory=dict)
    """Added for the stop run: values that keep the algorithm running long enough to be stopped."""
    environment: dict[str, str] = field(default_factory=dict)
    arguments: tuple[str, ...] = ()
    """A processing job's ContainerArguments."""
    error_arguments: tuple[str, ...] = ()
    """ContainerArguments of the processing error run: arguments that make the job fail."""
    stop_arguments: tuple[str, ...] = ()
    """ContainerArguments of the processing stop run: arguments that keep it running."""
    outputs: dict[str, str] = field(default_factory=dict)
    """A processing job's outputs: name -> LocalPath (default /opt/ml/processing/output/<name>)."""
    model: str | None = None
    """Model artifacts: a model.tar.gz, a folder (packed into one), or an s3:// URI."""
    content_types: tuple[str, ...] = ()
    payloads: tuple[str, ...] = ()
    """Files with request bodies, one per content type in order (or one for all)."""
    instance_type: str = "ml.m5.large"
    stop_after: float = 3.0
    """Seconds after the stop run's container starts (time to install a SIGTERM handler) before it is stopped."""
    concurrency: int = 8
    """Concurrent clients of the load test; each sends ``requests_per_client`` requests."""
    requests_per_client: int = 4
    job_timeout: float = 1800.0
    """How long a check waits for a job or an endpoint before giving up on it."""

    def requests(self) -> list[tuple[str, bytes]]:
        """(content type, body) for every declared content type."""
        types = self.content_types or (DEFAULT_CONTENT_TYPE,)
        if self.payloads and len(self.payloads) not in (1, len(types)):
            raise CheckInputError(f"give one --payload for all content types or one per --content-type "
                                  f"({len(types)} content types, {len(self.payloads)} payloads)")
        pairs = []
        for index, content_type in enumerate(types):
            if self.payloads:
                path = Path(self.payloads[index if len(self.payloads) > 1 else 0])
                try:
                    body = path.read_bytes()
                except OSError as exc:
                    raise CheckInputError(f"--payload {path}: {exc.strerror}") from exc
            elif content_type in SAMPLE_PAYLOADS:
                body = SAMPLE_PAYLOADS[content_type]
            else:
                raise CheckInputError(f"no sample payload for {content_type}: give --payload FILE with a valid request")
            pairs.append((content_type, body))
        return pairs


def parse_pairs(values: Iterable[str] | None, option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict; a value may contain '='."""
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise CheckInputError(f"{option} wants KEY=VALUE, got {value!r}")
        pairs[key] = rest
    return pairs


def local_files(path: Path) -> list[tuple[Path, str]]:
    """(file, relative key) for a file (its name) or every file under a folder."""
    if path.is_file():
        return [(path, path.name)]
    if path.is_dir():
        return [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*")) if p.is_file()]
    raise CheckInputError(f"{path} does not exist")


@dataclass(frozen=True)
class StagedChannel:
    """A channel in the emulator's S3: its URI and the files in it (relative keys)."""

    name: str
    uri: str
    files: tuple[str, ...]


def stage_channel(s3: Any, bucket: str, prefix: str, name: str, source: str,
                  corrupt: bool = False) -> StagedChannel:
    """Upload a local channel under ``s3://bucket/prefix/name/``, or list an s3:// one.

    ``corrupt`` uploads the same file names holding :data:`CORRUPT_BYTES` instead (the
    default error run); an s3:// channel is read from S3 for that.
    """
    if source.startswith("s3://"):
        src_bucket, _, src_prefix = source[5:].partition("/")
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=src_bucket, Prefix=src_prefix)
                for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        if not keys:
            raise CheckInputError(f"--channel {name}={source}: no objects under that prefix in the emulator's S3")
        relative = [k[len(src_prefix):].lstrip("/") or k.rsplit("/", 1)[-1] for k in keys]
        if not corrupt:
            return StagedChannel(name, source, tuple(relative))
        for rel in relative:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}/{rel}", Body=CORRUPT_BYTES)
        return StagedChannel(name, f"s3://{bucket}/{prefix}/{name}/", tuple(relative))
    files = local_files(Path(source).expanduser())
    if not files:
        raise CheckInputError(f"--channel {name}={source}: the folder holds no files")
    for path, rel in files:
        body = CORRUPT_BYTES if corrupt else path.read_bytes()
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}/{rel}", Body=body)
    return StagedChannel(name, f"s3://{bucket}/{prefix}/{name}/", tuple(rel for _p, rel in files))


def model_archive(source: Path) -> bytes:
    """A model.tar.gz as bytes: the file itself, or a folder packed with members relative to it."""
    if source.is_file():
        return source.read_bytes()
    if not source.is_dir():
        raise CheckInputError(f"--model {source} does not exist")
    return pack_folder(source)


def pack_folder(folder: Path) -> bytes:
    """A gzip tar of ``folder``'s files, members relative to it (as SageMaker packs /opt/ml/model)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, rel in local_files(folder):
            tar.add(str(path), arcname=rel)
    return buffer.getvalue()


def tiny_model_archive(name: str) -> bytes:
    """A model.tar.gz with one small JSON file, for checks given no --model."""
    data = json.dumps({"name": name, "made_by": "smemu check"}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_model(s3: Any, bucket: str, key: str, source: str | None, name: str) -> str:
    """The model's S3 URI: ``source`` as is when it is s3://, else uploaded to ``key``."""
    if source and source.startswith("s3://"):
        return source
    body = model_archive(Path(source).expanduser()) if source else tiny_model_archive(name)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def archive_members(data: bytes) -> tuple[str, ...]:
    """The regular files in a gzip tar (empty for an empty archive)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return tuple(sorted(m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()))


def max_payload(content_type: str, body: bytes, size: int = MAX_PAYLOAD) -> bytes | None:
    """A valid request of exactly ``size`` bytes built from ``body``, or None when none can be made.

    JSON is padded with trailing whitespace (still one valid document); line formats (CSV,
    JSON Lines, text) repeat their lines. Other types cannot be grown safely.
    """
    base = content_type.split(";")[0].strip().lower()
    if base == "application/json":
        core = body.rstrip()
        if len(core) > size:
            return None
        return core + b" " * (size - len(core) - 1) + b"\n"
    if base in ("text/csv", "application/jsonlines", "application/x-jsonlines", "text/plain"):
        lines = body if body.endswith(b"\n") else body + b"\n"
        if not lines.strip():
            return None
        grown = lines * (size // len(lines))
        rest = size - len(grown)
        return grown + b"\n" * rest
    return None
