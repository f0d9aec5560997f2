"""model.tar.gz / output.tar.gz packing, FailureReason from the failure file, checkpoint sync."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from emulator.training.artifacts import (
    CheckpointSync,
    failure_reason,
    merge_folders,
    model_artifacts_uri,
    pack,
    upload_model_and_output,
)
from tests.unit.test_training_fakes import FakeS3

REQUEST = {"TrainingJobName": "job", "OutputDataConfig": {"S3OutputPath": "s3://b/out/"}}


def test_model_tar_members_are_relative(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "w.bin").write_bytes(b"w")
    (model / "sub" / "cfg.json").write_text("{}")
    s3 = FakeS3()
    uri = upload_model_and_output(REQUEST, model, tmp_path / "no-data", tmp_path / "scratch", s3)
    assert uri == model_artifacts_uri(REQUEST) == "s3://b/out/job/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(s3.objects[("b", "out/job/output/model.tar.gz")])) as archive:
        assert sorted(archive.getnames()) == ["sub", "sub/cfg.json", "w.bin"]
    with tarfile.open(fileobj=io.BytesIO(s3.objects[("b", "out/job/output/output.tar.gz")])) as archive:
        assert archive.getnames() == [], "an empty output.tar.gz is still written, as on AWS"

    uncompressed = {**REQUEST, "OutputDataConfig": {"S3OutputPath": "s3://b/out", "CompressionType": "NONE"}}
    assert upload_model_and_output(uncompressed, model, tmp_path, tmp_path / "s2", s3) == "s3://b/out/job/output/model/"
    assert s3.objects[("b", "out/job/output/model/sub/cfg.json")] == b"{}"
    assert pack(tmp_path / "absent", tmp_path / "x.tar.gz").is_file()


def test_failure_reason(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "failure").write_text("  boom \n")
    assert failure_reason([first, second]) == "AlgorithmError: boom"
    (first / "failure").write_bytes(b"x" * 5000)
    reason = failure_reason([first, second])
    assert reason is not None and len(reason) == 1024 and reason.startswith("AlgorithmError: xxx")
    assert failure_reason([tmp_path / "none"]) is None


def test_checkpoint_sync_uploads_only_changes_and_restores(tmp_path: Path) -> None:
    s3 = FakeS3()
    sync = CheckpointSync("s3://b/ckpt", lambda: s3)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "e1.pt").write_bytes(b"1")
    assert sync.upload_changes(folder, "algo-1") == 1
    assert sync.upload_changes(folder, "algo-1") == 0
    (folder / "e1.pt").write_bytes(b"11")
    os.utime(folder / "e1.pt", ns=(1, 1))
    (folder / "e2.pt").write_bytes(b"2")
    assert sync.upload_changes(folder, "algo-1") == 2
    assert s3.objects[("b", "ckpt/e1.pt")] == b"11"
    s3.put_object(Bucket="b", Key="ckpt-other/x", Body=b"not ours")
    restored = tmp_path / "restored"
    assert CheckpointSync("s3://b/ckpt/", lambda: s3).restore(restored) == 2
    assert sorted(p.name for p in restored.iterdir()) == ["e1.pt", "e2.pt"]


def test_merge_folders_later_host_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "algo-1", tmp_path / "algo-2"
    (first / "d").mkdir(parents=True)
    second.mkdir()
    (first / "d" / "shared.txt").write_text("one")
    (first / "only1.txt").write_text("1")
    (second / "d").mkdir()
    (second / "d" / "shared.txt").write_text("two")
    merged = merge_folders([first, second, tmp_path / "absent"], tmp_path / "merged")
    assert {p.relative_to(merged).as_posix(): p.read_text() for p in merged.rglob("*") if p.is_file()} == {
        "d/shared.txt": "two", "only1.txt": "1"}
