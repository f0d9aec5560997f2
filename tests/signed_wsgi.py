"""A botocore-signed request as the WSGI environ a server would hand the container gateway.

Shared by the gateway's unit tests and benchmarks/trust_boundary.py.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit


def environ_of(request: Any, peer: str = "169.254.170.7") -> dict[str, Any]:
    """``request`` (a botocore ``AWSRequest``, signed or not) as a WSGI environ from ``peer``."""
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    body = body if isinstance(body, bytes) else body.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": prepared.method, "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
        "REQUEST_URI": parts.path + (f"?{parts.query}" if parts.query else ""), "REMOTE_ADDR": peer,
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": parts.netloc,
    }
    for name, value in prepared.headers.items():
        key = name.upper().replace("-", "_")
        environ["CONTENT_TYPE" if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ
