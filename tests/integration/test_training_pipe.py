"""Pipe input mode: FIFOs <channel>_<epoch>, Gzip, RecordIO, augmented manifests, mixed modes."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import pytest

from emulator.training.pipe import recordio_record
from tests.conftest import unique_name
from tests.integration.test_training_helpers import (
    job_request,
    leftovers,
    model_report,
    s3_channel,
    wait_terminal,
)

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pipe_mode_feeds_every_epoch(sagemaker_client: Any, s3_client: Any, bucket: str, role_arn: str,
                                     training_image: str, docker_client: Any) -> None:
    objects = {f"pipe/part-{i}.csv": f"{i},{i * i}\n".encode() * (i + 1) for i in range(3)}
    for key, body in objects.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    s3_client.put_object(Bucket=bucket, Key="files/f.txt", Body=b"file\n")
    name = unique_name("train-pipe")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, HyperParameters={"pipe_epochs": "2"},
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "Pipe"},
        InputDataConfig=[s3_channel("train", f"s3://{bucket}/pipe/"),
                         s3_channel("files", f"s3://{bucket}/files/", InputMode="File")]))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    report = model_report(s3_client, bucket, name)
    train = report["channels"]["train"]
    assert train["config"]["TrainingInputMode"] == "Pipe"
    expected = b"".join(objects[k] for k in sorted(objects))
    assert [(e["path"], e["is_fifo"], e["sha256"]) for e in train["epochs"]] == [
        ("train_0", True, _sha(expected)), ("train_1", True, _sha(expected))]
    assert report["channels"]["files"]["mode"] == "File" and report["channels"]["files"]["file_count"] == 1
    assert leftovers(docker_client, name) == []


def test_pipe_gzip_recordio_and_augmented_manifest(sagemaker_client: Any, s3_client: Any, bucket: str,
                                                   role_arn: str, training_image: str) -> None:
    raw = {"gz/a.json": b'{"x": 1}\n', "gz/b.json": b'{"x": 2}\n' * 3}
    for key, body in raw.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body))
    s3_client.put_object(Bucket=bucket, Key="images/cat.bin", Body=b"\x00CAT\xff")
    manifest = [{"source-ref": f"s3://{bucket}/images/cat.bin", "label": 3, "ignored": "x"},
                {"source": "inline text", "label": {"cls": 1}}]
    s3_client.put_object(Bucket=bucket, Key="manifests/aug.jsonl",
                         Body="\n".join(json.dumps(line) for line in manifest).encode())
    name = unique_name("train-recordio")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket,
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "Pipe"},
        InputDataConfig=[
            s3_channel("train", f"s3://{bucket}/gz/", CompressionType="Gzip", RecordWrapperType="RecordIO"),
            s3_channel("aug", f"s3://{bucket}/manifests/aug.jsonl", RecordWrapperType="RecordIO",
                       source={"S3DataType": "AugmentedManifestFile",
                               "AttributeNames": ["source-ref", "source", "label"]}),
        ]))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    channels = model_report(s3_client, bucket, name)["channels"]
    wrapped = b"".join(recordio_record(raw[k]) for k in sorted(raw))
    assert channels["train"]["epochs"][0]["sha256"] == _sha(wrapped)
    assert channels["train"]["config"]["RecordWrapperType"] == "RecordIO"
    records = [b"\x00CAT\xff", b"3", b"inline text", b'{"cls": 1}']
    assert channels["aug"]["epochs"][0]["sha256"] == _sha(b"".join(recordio_record(r) for r in records))
