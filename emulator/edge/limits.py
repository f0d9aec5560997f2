"""The edge's transport limits, and the answers it gives a request that breaks one.

Every front applies them to every connection before any service sees a byte, so a slow or
oversized client costs a little memory in one event loop and never a worker thread:

* the request line and headers together at most ``max_header_bytes`` (431);
* the whole head within ``header_timeout`` seconds of its first byte, and no pause longer
  than ``body_timeout`` seconds while a body arrives (408, then the connection closes);
* the edge's request policy (``emulator/gateway/http_policy.py``: Host, Origin, ``/moto-api``
  and body sizes) applied as soon as the head is complete, so an oversized body is refused
  before it is sent, and a body without Content-Length is held to the same sizes as it arrives;
* an idle keep-alive connection closes after ``keepalive_timeout`` seconds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EdgeLimits:
    """Limits every front applies to every request (from :class:`~emulator.config.Settings`)."""

    max_header_bytes: int = 64 * 1024
    max_request_bytes: int = 32 * 1024 * 1024
    header_timeout: float = 30.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0

    @classmethod
    def from_settings(cls, settings: Any) -> EdgeLimits:
        """The limits a settings object asks for."""
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_request_bytes=settings.max_request_bytes,
            header_timeout=settings.request_header_timeout_seconds,
            body_timeout=settings.request_body_timeout_seconds,
            keepalive_timeout=settings.keepalive_timeout_seconds,
        )


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}


def edge_error(status: int, code: str, message: str) -> bytes:
    """A complete response (closing the connection) in AWS's JSON error shape."""
    body = json.dumps({"__type": code, "message": message}, separators=(",", ":")).encode()
    head = (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nx-amzn-ErrorType: %s\r\n"
        b"x-amzn-RequestId: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (status, _REASONS.get(status, b"Error"), code.encode(), str(uuid.uuid4()).encode(), len(body))
    )
    return head + body
