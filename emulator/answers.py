"""Plain answers the platform gives the edge, which alone turns them into HTTP.

The platform's services never build a web framework's response: an operation whose answer
streams (InvokeEndpointWithResponseStream) returns a :class:`StreamedAnswer`, a status, its
headers and an iterator of body chunks; the edge (emulator/gateway/app.py) writes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamedAnswer:
    """A status, headers and a body sent chunk by chunk as it is produced.

    ``body`` is a generator: the edge closes it when the client is gone or the answer ends, so
    its ``finally`` releases what the answer holds (a container connection, a routing lease).
    """

    status: int
    headers: Mapping[str, str]
    body: Iterator[bytes]
