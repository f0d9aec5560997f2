"""What a training job leaves in S3: model.tar.gz, output.tar.gz and checkpoints.

* ``/opt/ml/model`` of every host, merged in host order (a later host's file of the same
  name wins, as on AWS), becomes ``<S3OutputPath>/<job>/output/model.tar.gz`` with members
  relative to the folder. ``OutputDataConfig.CompressionType=NONE`` uploads the files as
  they are under ``.../output/model/`` instead.
* ``/opt/ml/output/data`` of every host becomes ``.../output/output.tar.gz``.
* ``/opt/ml/output/failure`` (the first host that wrote one) becomes FailureReason.
* Checkpoints: ``CheckpointConfig.S3Uri`` is downloaded before each start and given to
  every host's checkpoint folder; while the job runs and after its containers stop, new or
  changed files are uploaded as they are (no tar), all hosts to the same prefix.

Folders read back from containers arrive through ``RuntimeBackend.copy_out`` and so belong
to the emulator's user; the job's scratch folder is removed when the job ends.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from emulator.s3 import S3Location

S3Client = Any
FAILURE_REASON_LIMIT = 1024
_TRANSFER = TransferConfig(max_concurrency=10, multipart_threshold=16 * 1024**2, multipart_chunksize=16 * 1024**2)


def output_prefix(request: dict[str, Any]) -> S3Location:
    """``<S3OutputPath>/<job>/output``."""
    return S3Location.parse(request["OutputDataConfig"]["S3OutputPath"]).join(request["TrainingJobName"], "output")


def model_artifacts_uri(request: dict[str, Any]) -> str:
    """ModelArtifacts.S3ModelArtifacts: where the model is (or will be) uploaded."""
    base = output_prefix(request)
    if (request.get("OutputDataConfig") or {}).get("CompressionType") == "NONE":
        return base.join("model").uri + "/"
    return base.join("model.tar.gz").uri


def pack(folder: Path, archive: Path) -> Path:
    """A gzip tar of ``folder``'s contents, members relative to it (no leading folder)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                tar.add(str(path), arcname=path.name)
    return archive


def upload_model_and_output(request: dict[str, Any], model_dir: Path, output_data_dir: Path,
                            scratch: Path, s3: S3Client) -> str:
    """Upload the merged model and output data; returns S3ModelArtifacts.

    The output data is packed and uploaded on a thread of its own while the model goes up:
    two small PUTs in parallel instead of one after the other is most of a no-op job's
    Uploading phase. botocore clients are thread-safe.
    """
    base = output_prefix(request)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="output-upload") as pool:
        output = pool.submit(lambda: _upload(pack(output_data_dir, scratch / "output.tar.gz"),
                                             base.join("output.tar.gz"), s3))
        if (request.get("OutputDataConfig") or {}).get("CompressionType") == "NONE":
            upload_folder(model_dir, base.join("model"), s3)
        else:
            _upload(pack(model_dir, scratch / "model.tar.gz"), base.join("model.tar.gz"), s3)
        output.result()
    return model_artifacts_uri(request)


def _upload(path: Path, target: S3Location, s3: S3Client) -> None:
    """One PutObject for a file under the multipart threshold (s3transfer would start a pool of
    threads for it), s3transfer's parallel multipart upload above it."""
    if path.stat().st_size < _TRANSFER.multipart_threshold:
        try:
            s3.put_object(Bucket=target.bucket, Key=target.key, Body=path.read_bytes())
        except ClientError as exc:  # worded as s3transfer words it: the failure names the bucket
            raise S3UploadFailedError(f"Failed to upload {path} to {target.bucket}/{target.key}: {exc}") from exc
        return
    s3.upload_file(str(path), target.bucket, target.key, Config=_TRANSFER)


def upload_folder(folder: Path, prefix: S3Location, s3: S3Client) -> int:
    """Upload every file under ``folder`` to ``prefix`` keeping relative paths; returns the count."""
    count = 0
    if not folder.is_dir():
        return 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        _upload(path, prefix.join(path.relative_to(folder).as_posix()), s3)
        count += 1
    return count


def merge_folders(sources: list[Path], dest: Path) -> Path:
    """Move every file of ``sources`` into ``dest`` in order: a later source's file of the same name wins."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if not source.is_dir():
            continue
        for path in sorted(source.rglob("*")):
            target = dest / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif path.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
    return dest


def failure_reason(output_dirs: list[Path]) -> str | None:
    """The first host's ``failure`` file, as FailureReason (``AlgorithmError: <text>``, ≤1024 chars)."""
    for folder in output_dirs:
        failure = folder / "failure"
        if failure.is_file():
            text = failure.read_bytes()[: FAILURE_REASON_LIMIT * 4].decode("utf-8", errors="replace").strip()
            if text:
                return f"AlgorithmError: {text}"[:FAILURE_REASON_LIMIT]
    return None


class CheckpointSync:
    """Mirrors a job's checkpoint folders to ``CheckpointConfig.S3Uri``, uploading only changes."""

    def __init__(self, s3_uri: str, client_for_thread: Callable[[], S3Client]) -> None:
        self.prefix = S3Location.parse(s3_uri)
        self._s3 = client_for_thread
        self._uploaded: dict[str, tuple[int, int]] = {}

    def restore(self, dest: Path) -> int:
        """Download every checkpoint object into ``dest``; returns how many there were."""
        dest.mkdir(parents=True, exist_ok=True)
        client = self._s3()
        prefix = self.prefix.key.rstrip("/") + "/" if self.prefix.key else ""
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.prefix.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix):]
                if not relative or relative.endswith("/"):
                    continue
                target = dest / relative
                if dest.resolve() not in target.resolve().parents:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(self.prefix.bucket, item["Key"], str(target), Config=_TRANSFER)
                count += 1
        return count

    def upload_changes(self, folder: Path, scope: str = "") -> int:
        """Upload files of ``folder`` that are new or changed since the last sync.

        ``scope`` (the host) keeps hosts that write files of the same name from re-uploading
        each other's version on every sync.
        """
        if not folder.is_dir():
            return 0
        client = self._s3()
        count = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(folder).as_posix()
            stat = path.stat()
            signature = (stat.st_size, int(stat.st_mtime_ns))
            if self._uploaded.get(f"{scope}/{relative}") == signature:
                continue
            target = self.prefix.join(relative)
            client.upload_file(str(path), target.bucket, target.key, Config=_TRANSFER)
            self._uploaded[f"{scope}/{relative}"] = signature
            count += 1
        return count
