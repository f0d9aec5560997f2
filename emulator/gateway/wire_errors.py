"""AWS error responses as bytes: the one rendering of a :class:`~emulator.errors.ServiceError`.

Kept apart from :mod:`.protocol` (which loads botocore's models) so that the data-plane front
processes render the runtime's errors exactly as the gateway does without importing botocore.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from emulator.errors import ServiceError

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
"""Content-Type of every AWS JSON 1.1 answer, errors included."""
REST_JSON_CONTENT_TYPE = "application/json"
"""Content-Type of rest-json error bodies and JSON payloads."""


def error_response(
    err: ServiceError, protocol: str, request_id: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` of an error in ``protocol`` (``"json"`` or ``"rest-json"``).

    Both carry ``x-amzn-RequestId`` (a fresh one when ``request_id`` is None) and
    ``x-amzn-ErrorType``, which botocore's rest-json parser reads before the body. JSON 1.1
    bodies are ``{"__type", "message"}``; rest-json bodies use the error shape's member names
    (``Message``, ``OriginalStatusCode``, ...) as AWS's runtime does, so botocore copies the
    modelled members of ModelError into ``e.response``.
    """
    if protocol == "json":
        body: dict[str, Any] = err.to_body()
        content_type = JSON_CONTENT_TYPE
    elif protocol == "rest-json":
        body = {"__type": err.code, **err.members()}
        content_type = REST_JSON_CONTENT_TYPE
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected 'json' or 'rest-json'")
    headers = [
        ("Content-Type", content_type),
        ("x-amzn-RequestId", request_id or str(uuid.uuid4())),
        ("x-amzn-ErrorType", err.code),
    ]
    return err.status, headers, json.dumps(body, separators=(",", ":")).encode("utf-8")
