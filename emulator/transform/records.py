"""Splitting an input object into records and packing records into mini-batches (pure).

SageMaker's rules (CreateTransformJob's SplitType, BatchStrategy and MaxPayloadInMB):

* ``None``: the whole object is one record (one request). ``Line``: one record per line (blank
  lines are skipped). ``RecordIO`` (MXNet) and ``TFRecord``: one record per framed record.
* ``SingleRecord`` sends one record per request; ``MultiRecord`` as many whole records as fit
  in MaxPayloadInMB (0: no limit). A record bigger than the limit fails its object. Batches
  never span objects.
* Binary formats lose their framing ("padding") with SingleRecord, the payload being the
  record's data; with MultiRecord the records are sent framed, one after the other. Line
  records are sent newline-terminated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from emulator.jobs.pipe import RECORDIO_MAGIC

MIB = 1024 * 1024


class RecordError(Exception):
    """The object cannot be split or batched; the message names the problem."""


@dataclass(frozen=True)
class Record:
    """One record: the bytes sent for it alone (``data``) and inside a MultiRecord batch (``framed``)."""

    data: bytes
    framed: bytes


def split(body: bytes, split_type: str) -> list[Record]:
    """The records of an object."""
    if split_type == "Line":
        return [Record(line, line + b"\n") for line in body.split(b"\n") if line.strip()]
    if split_type == "RecordIO":
        return _recordio(body)
    if split_type == "TFRecord":
        return _tfrecord(body)
    return [Record(body, body)]


def _recordio(body: bytes) -> list[Record]:
    records: list[Record] = []
    offset = 0
    current = b""
    start = 0
    while offset < len(body):
        if len(body) - offset < 8:
            raise RecordError(f"truncated RecordIO header at byte {offset}")
        magic, lrec = struct.unpack_from("<II", body, offset)
        if magic != RECORDIO_MAGIC:
            raise RecordError(f"bad RecordIO magic number at byte {offset}")
        flag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        payload = body[offset + 8: offset + 8 + length]
        end = offset + 8 + length
        if flag in (0, 3):
            end += (4 - length % 4) % 4
        if flag in (0, 1):
            current, start = payload, offset
        else:
            current += struct.pack("<I", RECORDIO_MAGIC) + payload
        if flag in (0, 3):
            records.append(Record(current, body[start:end]))
        offset = end
    return records


def _tfrecord(body: bytes) -> list[Record]:
    records: list[Record] = []
    offset = 0
    while offset < len(body):
        if len(body) - offset < 12:
            raise RecordError(f"truncated TFRecord header at byte {offset}")
        (length,) = struct.unpack_from("<Q", body, offset)
        end = offset + 12 + length + 4
        if end > len(body):
            raise RecordError(f"truncated TFRecord at byte {offset}")
        records.append(Record(body[offset + 12: offset + 12 + length], body[offset:end]))
        offset = end
    return records


def batches(records: list[Record], strategy: str, max_payload_mb: int) -> list[list[Record]]:
    """Records grouped into mini-batches; raises RecordError for a record over the limit."""
    limit = max_payload_mb * MIB if max_payload_mb > 0 else None
    if strategy == "SingleRecord":
        for number, record in enumerate(records, 1):
            if limit is not None and len(record.data) > limit:
                raise RecordError(f"record {number} is {len(record.data)} bytes, more than MaxPayloadInMB "
                                  f"({max_payload_mb} MB)")
        return [[r] for r in records]
    grouped: list[list[Record]] = []
    size = 0
    for number, record in enumerate(records, 1):
        if limit is not None and len(record.framed) > limit:
            raise RecordError(f"record {number} is {len(record.framed)} bytes, more than MaxPayloadInMB "
                              f"({max_payload_mb} MB)")
        if grouped and (limit is None or size + len(record.framed) <= limit):
            grouped[-1].append(record)
            size += len(record.framed)
        else:
            grouped.append([record])
            size = len(record.framed)
    return grouped


def payload(batch: list[Record], strategy: str) -> bytes:
    """The request body of a mini-batch."""
    if strategy == "SingleRecord":
        return batch[0].data
    return b"".join(r.framed for r in batch)


def response_records(body: bytes, expected: int) -> list[bytes] | None:
    """A response split into one output per input record (by lines), or None if the counts differ."""
    if expected == 1:
        return [body.rstrip(b"\n")]
    lines = body.rstrip(b"\n").split(b"\n")
    return lines if len(lines) == expected else None
