"""Pipe mode without Docker: RecordIO framing and a feeder writing real FIFOs."""

from __future__ import annotations

import gzip
import json
import struct
import threading
from pathlib import Path

import pytest

from emulator.training.channels import DataObject
from emulator.training.pipe import RECORDIO_MAGIC, PipeFeeder, read_recordio, recordio_record
from tests.unit.test_training_fakes import FakeS3, wait_for

MAGIC = struct.pack("<I", RECORDIO_MAGIC)


@pytest.mark.parametrize("data", [b"", b"abc", b"abcd", b"x" * 1001, MAGIC, b"abcd" + MAGIC + b"ef" + MAGIC,
                                  b"ab" + MAGIC + b"cd", MAGIC + MAGIC])
def test_recordio_round_trip(data: bytes) -> None:
    framed = recordio_record(data)
    assert len(framed) % 4 == 0
    assert read_recordio(framed) == [data]


def test_recordio_matches_dmlc_layout() -> None:
    assert recordio_record(b"abc") == MAGIC + struct.pack("<I", 3) + b"abc\0"
    split = recordio_record(b"abcd" + MAGIC + b"ef")  # the magic at an aligned offset splits the record
    assert split == MAGIC + struct.pack("<I", (1 << 29) | 4) + b"abcd" + MAGIC + struct.pack("<I", (3 << 29) | 2) + b"ef\0\0"
    unaligned = recordio_record(b"ab" + MAGIC)
    assert unaligned[4:8] == struct.pack("<I", 6), "an unaligned magic does not split"


def _read_epochs(folder: Path, name: str, epochs: int, out: list[bytes]) -> None:
    for epoch in range(epochs):
        fifo = folder / f"{name}_{epoch}"
        wait_for(fifo.exists)
        with fifo.open("rb") as handle:
            out.append(handle.read())


def test_feeder_streams_each_epoch_into_its_own_fifo(tmp_path: Path) -> None:
    s3 = FakeS3()
    s3.put_object(Bucket="b", Key="k1", Body=gzip.compress(b"one\n"))
    s3.put_object(Bucket="b", Key="k2", Body=gzip.compress(b"two\n"))
    s3.put_object(Bucket="b", Key="img", Body=b"\x01\x02")
    local = tmp_path / "local.bin"
    local.write_bytes(b"LOCAL")
    from emulator.s3 import S3Location

    channel = {"ChannelName": "train", "CompressionType": "Gzip", "DataSource": {"S3DataSource": {}}}
    objects = [DataObject("k1", s3=S3Location("b", "k1")), DataObject("k2", s3=S3Location("b", "k2"))]
    feeder = PipeFeeder(tmp_path, channel, objects, lambda: s3)
    assert (tmp_path / "train_0").exists(), "the first FIFO exists before the container starts"
    received: list[bytes] = []
    reader = threading.Thread(target=_read_epochs, args=(tmp_path, "train", 3, received))
    reader.start()
    feeder.start()
    reader.join(10)
    feeder.stop()
    assert received == [b"one\ntwo\n"] * 3 and feeder.error is None

    augmented = {"ChannelName": "aug", "RecordWrapperType": "RecordIO",
                 "DataSource": {"S3DataSource": {"AttributeNames": ["source-ref", "label"]}}}
    lines = [DataObject("l1", line={"source-ref": "s3://b/img", "label": {"c": 1}}), DataObject("l2", line={"label": 7})]
    feeder = PipeFeeder(tmp_path, augmented, lines + [DataObject("f", local=local)], lambda: s3)
    received.clear()
    reader = threading.Thread(target=_read_epochs, args=(tmp_path, "aug", 1, received))
    reader.start()
    feeder.start()
    reader.join(10)
    feeder.stop()
    assert read_recordio(received[0]) == [b"\x01\x02", json.dumps({"c": 1}).encode(), b"7", b"LOCAL"]


def test_feeder_stops_while_nobody_reads(tmp_path: Path) -> None:
    feeder = PipeFeeder(tmp_path, {"ChannelName": "idle", "DataSource": {"S3DataSource": {}}}, [], lambda: None)
    feeder.start()
    feeder.stop(timeout=2)
    assert not feeder._thread.is_alive() and feeder.epochs_fed == 0
