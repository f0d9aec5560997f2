"""The channel between the control process and a front: framed messages over a pipe pair.

The control process writes to a front's stdin and reads its stdout. Each message is a
4-byte big-endian length and a pickle of a tuple whose first item names it. Pickle, not
JSON, because both ends are the same program (the front is the control process's child,
started from the same interpreter and package) and the settings object travels as it is.

Control -> front:

* ``("hello", settings, control_socket_path, front_index)``: first message, before serving;
* ``("routes", version, {endpoint key: route data})``: a new version of the routing table
  (``emulator/hosting/publication.py``); the front answers ``("applied", version)``;
* ``("placement", container_id, target, model, loaded)``: a multi-model placement changed;
* ``("drain", token, route_id)``: answer ``("drained", token)`` once no request is in flight
  on that route here;
* ``("flush", token)``: report the multi-model hits not reported yet, then ``("flushed", token)``.

Front -> control: ``("ready", pid)`` once it accepts connections, ``("applied", version)``,
``("drained", token)``, ``("flushed", token)``, ``("hits", [(container_id, target, count,
last_used), ...])`` (multi-model cache hits it served) and ``("invocations", [(region, endpoint,
variant, invocations, successes, latency sum, min, max, 4xx, 5xx), ...])`` (what hosting's
invocation metrics count), both batched for at most 0.2 s, and, about once a second when they
changed, ``("counts", served, forwarded)``.

End of file on a front's stdin means the control process is gone: the front stops, so it
never outlives the emulator, even after kill -9.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 256 * 1024 * 1024


def encode(message: tuple[Any, ...]) -> bytes:
    """One framed message."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


class FrameReader:
    """Turns a byte stream back into messages, whatever the chunks it arrives in."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        """The messages completed by ``data``."""
        buffer = self._buffer
        buffer += data
        messages = []
        while len(buffer) >= 4:
            (length,) = _LENGTH.unpack_from(buffer)
            if length > MAX_MESSAGE:
                raise ValueError(f"a channel message of {length} bytes: the stream is corrupt")
            if len(buffer) < 4 + length:
                break
            messages.append(pickle.loads(bytes(buffer[4 : 4 + length])))
            del buffer[: 4 + length]
        return messages
