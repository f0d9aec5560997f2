"""AWS event streams (``application/vnd.amazon.eventstream``) as InvokeEndpointWithResponseStream sends them.

A wire format shared by the gateway and the hosting service, so it lives below both.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence

from emulator.errors import ServiceError

_JSON = "application/json"


def event_frame(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """One ``application/vnd.amazon.eventstream`` message with string headers.

    Layout (big-endian): total length, headers length, CRC32 of those 8 bytes, headers
    (name length u8, name, type 7, value length u16, value), payload, CRC32 of all before.
    """
    fields = []
    for name, value in headers:
        name_bytes, value_bytes = name.encode("utf-8"), value.encode("utf-8")
        fields.append(struct.pack(">B", len(name_bytes)) + name_bytes)
        fields.append(struct.pack(">BH", 7, len(value_bytes)) + value_bytes)
    encoded = b"".join(fields)
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def payload_part_frame(data: bytes) -> bytes:
    """A ``PayloadPart`` event carrying one chunk of the model's streamed answer."""
    return event_frame(
        [
            (":event-type", "PayloadPart"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        data,
    )


def stream_error_frame(err: ServiceError) -> bytes:
    """An exception event (``ModelStreamError``, ``InternalStreamFailure``) ending a stream."""
    return event_frame(
        [
            (":exception-type", err.code),
            (":content-type", _JSON),
            (":message-type", "exception"),
        ],
        json.dumps(err.members(), separators=(",", ":")).encode("utf-8"),
    )
