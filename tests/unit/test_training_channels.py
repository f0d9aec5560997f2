"""Channel listing, sharding and staging, against a dict-backed S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.training.channels import ChannelError, DataObject, download, list_objects, local_folder, shard
from emulator.training.layout import plan_hosts
from emulator.training.staging import stage_inputs
from tests.unit.test_training_fakes import FakeS3


def _channel(uri: str, data_type: str = "S3Prefix", **source: object) -> dict:
    return {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": uri, **source}}}


@pytest.fixture()
def s3() -> FakeS3:
    fake = FakeS3()
    for key in ["train/b.csv", "train/a.csv", "train/sub/c.csv", "train/", "train2/x.csv", "other/y.csv"]:
        fake.put_object(Bucket="bkt", Key=key, Body=key.encode())
    return fake


def test_s3_prefix_is_a_plain_key_prefix(s3: FakeS3) -> None:
    found = list_objects(_channel("s3://bkt/train"), s3, "us-east-1", "role")
    assert [o.relative for o in found] == ["a.csv", "b.csv", "sub/c.csv", "2/x.csv"]
    assert [o.s3.key for o in found if o.s3] == ["train/a.csv", "train/b.csv", "train/sub/c.csv", "train2/x.csv"]
    assert [o.relative for o in list_objects(_channel("s3://bkt/train/"), s3, "r", "role")] == [
        "a.csv", "b.csv", "sub/c.csv"]


def test_empty_prefix_gives_the_aws_failure_reason(s3: FakeS3) -> None:
    with pytest.raises(ChannelError) as raised:
        list_objects(_channel("s3://bkt/none/"), s3, "eu-west-1", "arn:aws:iam::1:role/R")
    assert str(raised.value) == (
        'ClientError: Data download failed:No S3 objects found under S3 URL "s3://bkt/none/" given in input data '
        "source. Please ensure that the bucket exists in the selected region (eu-west-1), that objects exist under "
        'that S3 prefix, and that the role "arn:aws:iam::1:role/R" has "s3:ListBucket" permissions on bucket "bkt".')


def test_manifests(s3: FakeS3) -> None:
    s3.put_object(Bucket="bkt", Key="m.json", Body=json.dumps([{"prefix": "s3://bkt/train/"}, "b.csv", "sub/c.csv"]).encode())
    found = list_objects(_channel("s3://bkt/m.json", "ManifestFile"), s3, "r", "role")
    assert [(o.relative, o.s3.key) for o in found if o.s3] == [("b.csv", "train/b.csv"), ("sub/c.csv", "train/sub/c.csv")]
    s3.put_object(Bucket="bkt", Key="bad.json", Body=b"{}")
    with pytest.raises(ChannelError, match="not a JSON list"):
        list_objects(_channel("s3://bkt/bad.json", "ManifestFile"), s3, "r", "role")
    s3.put_object(Bucket="bkt", Key="aug.jsonl", Body=b'{"a": 1}\n\n{"a": 2}\n')
    lines = list_objects(_channel("s3://bkt/aug.jsonl", "AugmentedManifestFile"), s3, "r", "role")
    assert [o.line for o in lines] == [{"a": 1}, {"a": 2}]
    with pytest.raises(ChannelError, match="cannot read the manifest file"):
        list_objects(_channel("s3://bkt/missing.json", "ManifestFile"), s3, "r", "role")


def test_sharding_is_round_robin_over_sorted_keys() -> None:
    hosts = plan_hosts({"InstanceType": "ml.m5.large", "InstanceCount": 3})
    objects = [DataObject(str(i)) for i in range(7)]
    shards = shard(objects, hosts, "ShardedByS3Key")
    assert {h: [o.relative for o in objs] for h, objs in shards.items()} == {
        "algo-1": ["0", "3", "6"], "algo-2": ["1", "4"], "algo-3": ["2", "5"]}
    assert all(v == objects for v in shard(objects, hosts, "FullyReplicated").values())
    assert shard(objects[:1], hosts, "ShardedByS3Key")["algo-3"] == [], "fewer objects than hosts"


def test_local_folders_and_download(tmp_path: Path, s3: FakeS3) -> None:
    source = tmp_path / "src"
    (source / "d").mkdir(parents=True)
    (source / "d" / "f.txt").write_text("x")
    assert local_folder(f"file://{source}") == source.resolve()
    found = list_objects(_channel(f"file://{source}"), s3, "r", "role")
    assert [(o.relative, o.local) for o in found] == [("d/f.txt", source / "d" / "f.txt")]
    with pytest.raises(ChannelError, match="no files found"):
        list_objects(_channel(f"file://{tmp_path / 'empty'}"), s3, "r", "role")
    dest = tmp_path / "dest"
    download(found + list_objects(_channel("s3://bkt/train/"), s3, "r", "role"), dest, lambda: s3)
    assert (dest / "d" / "f.txt").read_text() == "x" and (dest / "sub" / "c.csv").read_bytes() == b"train/sub/c.csv"
    with pytest.raises(ChannelError, match="escapes"):
        download([DataObject("../evil", local=source / "d" / "f.txt")], dest, lambda: s3)


def test_stage_inputs_shares_replicated_channels_and_mounts_local_folders(tmp_path: Path, s3: FakeS3) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "l.txt").write_text("l")
    request = {
        "RoleArn": "role", "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "InputDataConfig": [
            {**_channel("s3://bkt/train/"), "ChannelName": "rep"},
            {**_channel("s3://bkt/train/", S3DataDistributionType="ShardedByS3Key"), "ChannelName": "shard"},
            {**_channel(f"file://{local}"), "ChannelName": "loc"},
            {**_channel("s3://bkt/other/"), "ChannelName": "pipe", "InputMode": "Pipe"},
        ],
    }
    hosts = plan_hosts({"InstanceType": "ml.m5.large", "InstanceCount": 2})
    staged = stage_inputs(request, hosts, tmp_path / "work", lambda: s3, "us-east-1")
    one, two = staged.file_channels["algo-1"], staged.file_channels["algo-2"]
    assert one["rep"] == two["rep"], "a replicated channel is downloaded once"
    assert one["loc"] == local.resolve(), "a local folder is mounted as it is"
    assert sorted(p.name for p in one["shard"].rglob("*") if p.is_file()) == ["a.csv", "c.csv"]
    assert sorted(p.name for p in two["shard"].rglob("*") if p.is_file()) == ["b.csv"]
    assert [o.relative for _, objs in staged.pipe_channels["algo-1"] for o in objs] == ["y.csv"]
    assert (staged.input_dirs["algo-1"] / "data" / "rep").is_dir(), "mount points exist before the container"
    assert (staged.input_dirs["algo-2"] / "config" / "resourceconfig.json").is_file()
