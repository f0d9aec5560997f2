"""Pipe input mode: named FIFOs ``/opt/ml/input/data/<channel>_<epoch>`` fed by the emulator.

The contract (research/training-contract.md §1.2): the container reads ``<channel>_0`` to
its end, closes it, then opens ``<channel>_1`` for the next pass over the data, and so on;
the next FIFO may appear a little after the previous one closed. A :class:`PipeFeeder` thread
per channel and host does exactly that: it makes FIFO ``n``, waits for the container to open
it, streams every object of the channel into it (gunzipped for CompressionType Gzip, each
object wrapped as one RecordIO record for RecordWrapperType RecordIO), closes it, and makes
FIFO ``n + 1``. Data is streamed from S3 on every pass, as SageMaker does, never staged.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from emulator.polling import poll_until
from emulator.s3 import S3Location
from emulator.jobs.channels import DataObject

log = logging.getLogger(__name__)

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_MAX_RECORD = (1 << 29) - 1
_CHUNK = 1 << 20
_OPEN_POLL_SECONDS = 0.02

S3Client = Any


def _lrec(cflag: int, length: int) -> bytes:
    return struct.pack("<I", (cflag << 29) | length)


def recordio_record(data: bytes) -> bytes:
    """``data`` as one RecordIO record, byte for byte what dmlc-core's RecordIOWriter writes.

    The magic number may not appear (4-byte aligned) inside a record, so the writer splits the
    record there into parts flagged start (1), middle (2) and end (3) and drops the magic;
    readers put it back. A whole record has flag 0. The end is padded to 4 bytes.
    """
    if len(data) > _MAX_RECORD:
        raise ValueError(f"a RecordIO record holds at most {_MAX_RECORD} bytes, this object has {len(data)}")
    parts: list[bytes] = []
    start = 0
    position = data.find(_MAGIC_BYTES)
    while position != -1:
        if position % 4 == 0:
            parts += [_MAGIC_BYTES, _lrec(1 if start == 0 else 2, position - start), data[start:position]]
            start = position + 4
            position = data.find(_MAGIC_BYTES, start)
        else:
            position = data.find(_MAGIC_BYTES, position + 1)
    parts += [_MAGIC_BYTES, _lrec(3 if start else 0, len(data) - start), data[start:]]
    parts.append(b"\0" * ((4 - len(data) % 4) % 4))
    return b"".join(parts)


def read_recordio(stream: bytes) -> list[bytes]:
    """Split a RecordIO byte string back into records (the reader's side; used by tests)."""
    records: list[bytes] = []
    offset, current = 0, b""
    while offset < len(stream):
        magic, lrec = struct.unpack_from("<II", stream, offset)
        if magic != RECORDIO_MAGIC:
            raise ValueError(f"bad RecordIO magic at byte {offset}")
        cflag, length = lrec >> 29, lrec & _MAX_RECORD
        offset += 8
        payload = stream[offset : offset + length]
        offset += length + ((4 - length % 4) % 4 if cflag in (0, 3) else 0)
        if cflag == 0:
            records.append(payload)
        elif cflag == 1:
            current = payload
        elif cflag == 2:
            current += _MAGIC_BYTES + payload
        else:
            records.append(current + _MAGIC_BYTES + payload)
    return records


class PipeFeeder:
    """Feeds one Pipe-mode channel of one host, one FIFO per pass, until stopped."""

    def __init__(
        self,
        fifo_dir: Path,
        channel: dict[str, Any],
        objects: list[DataObject],
        s3_client: Callable[[], S3Client],
    ) -> None:
        self.fifo_dir = fifo_dir
        self.name = str(channel["ChannelName"])
        self.objects = objects
        self.gzip = channel.get("CompressionType") == "Gzip"
        self.recordio = channel.get("RecordWrapperType") == "RecordIO"
        self.attributes = list((channel["DataSource"]["S3DataSource"]).get("AttributeNames") or [])
        self._s3 = s3_client
        self._stop = threading.Event()
        self.epochs_fed = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"smemu-pipe-{self.name}", daemon=True)
        self._make_fifo(0)  # the first FIFO exists before the container starts

    def start(self) -> None:
        """Begin feeding in a background thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop feeding (the container has exited) and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _fifo(self, epoch: int) -> Path:
        return self.fifo_dir / f"{self.name}_{epoch}"

    def _make_fifo(self, epoch: int) -> None:
        path = self._fifo(epoch)
        if not path.exists():
            os.mkfifo(path, 0o644)

    def _run(self) -> None:
        epoch = 0
        while not self._stop.is_set():
            self._make_fifo(epoch)
            fd = self._open_writer(self._fifo(epoch))
            if fd is None:
                return
            try:
                with os.fdopen(fd, "wb", buffering=_CHUNK) as pipe:
                    for chunk in self._epoch_bytes():
                        if self._stop.is_set():
                            return
                        pipe.write(chunk)
            except BrokenPipeError:
                log.debug("reader of %s closed it early", self._fifo(epoch))
            except (OSError, ValueError, zlib.error, BotoCoreError, ClientError) as exc:
                # an S3 or decompression error mid-stream: the container sees EOF, the log says why
                self.error = f"feeding {self._fifo(epoch).name} failed: {exc}"
                log.warning("%s", self.error)
            self.epochs_fed = epoch + 1
            epoch += 1

    def _open_writer(self, path: Path) -> int | None:
        """Open the FIFO for writing once a reader has it open; None when stopped first."""
        def opened() -> tuple[int] | None:
            try:
                return (os.open(path, os.O_WRONLY | os.O_NONBLOCK),)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                return None

        if self._stop.is_set():
            return None
        found = poll_until(opened, None, _OPEN_POLL_SECONDS, give_up=self._stop.is_set)
        if found is None:
            return None
        os.set_blocking(found[0], True)
        return found[0]

    def _epoch_bytes(self) -> Iterator[bytes]:
        """One full pass over the channel's data, framed as configured."""
        for item in self.objects:
            if item.line is not None:
                for value in self._attribute_values(item.line):
                    yield recordio_record(value) if self.recordio else value
                continue
            if self.recordio:
                yield recordio_record(b"".join(self._object_chunks(item)))
            else:
                yield from self._object_chunks(item)

    def _object_chunks(self, item: DataObject) -> Iterator[bytes]:
        with self._open(item) as raw:
            stream: BinaryIO = gzip.GzipFile(fileobj=raw) if self.gzip else raw  # type: ignore[assignment]
            while chunk := stream.read(_CHUNK):
                yield chunk

    def _open(self, item: DataObject) -> BinaryIO:
        if item.local is not None:
            return item.local.open("rb")
        assert item.s3 is not None
        body = self._s3().get_object(Bucket=item.s3.bucket, Key=item.s3.key)["Body"]
        return body  # type: ignore[no-any-return]

    def _attribute_values(self, line: dict[str, Any]) -> Iterator[bytes]:
        """Augmented manifest: each attribute of the line is one record; ``*-ref`` values are fetched."""
        for name in self.attributes:
            if name not in line:
                continue
            value = line[name]
            if name.endswith("-ref") and isinstance(value, str) and value.startswith("s3://"):
                location = S3Location.parse(value)
                with self._open(DataObject(location.key, s3=location)) as body:
                    yield body.read()
            else:
                yield (value if isinstance(value, str) else json.dumps(value)).encode("utf-8")
